package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runsvKills runs the same svc-storage binary under runit's runsv and kills
// it runs times. why is non-empty when the comparison cannot run at all.
func runsvKills(ctx context.Context, o *opts, runs int) (out []float64, why string, err error) {
	sv, why, err := startRunsvStorage(o)
	if why != "" || err != nil {
		return nil, why, err
	}
	defer sv.stop()
	p, dir, addrs := sv.p, sv.dir, []string{sv.addr}

	readyURL := "http://" + addrs[0] + "/readyz"
	wait, _ := stableWait(o)
	prev := 0
	for i := range runs {
		var pid int
		werr := eventually(ctx, 20*time.Second, "runsv: svc-storage up", func() (bool, error) {
			if p.exited() {
				return false, fmt.Errorf("runsv exited: %v", p.err)
			}
			pid = runsvPID(dir)
			return pid > 0 && pid != prev && isBinary(pid, "svc-storage") &&
				getCode(ctx, pollClient, readyURL) == 200, fmt.Errorf("pid %d", pid)
		})
		if werr != nil {
			return out, "", fmt.Errorf("run %d: %w", i+1, werr)
		}
		// The same wait as under macronode; runsv also spaces starts by 1s.
		if err := sleepCtx(ctx, wait); err != nil {
			return out, "", err
		}
		kt, err := measureKill(ctx, pid, readyURL, "", false, 30*time.Second)
		if err != nil {
			return out, "", fmt.Errorf("run %d: %w", i+1, err)
		}
		out = append(out, ms(kt.child200))
		prev = pid
		progress("  run %d/%d: child ready %.2fms", i+1, runs, ms(kt.child200))
	}
	return out, "", nil
}

// runsvStorage is svc-storage run by runsv, bound to addr by itself.
type runsvStorage struct {
	p    *proc
	dir  string // the service dir
	addr string
	stop func() // takes the service down and stops runsv; idempotent enough to run twice
}

// startRunsvStorage starts runsv on a service dir running svc-storage on a
// fresh port. why is non-empty when runsv or the binary is missing.
func startRunsvStorage(o *opts) (sv runsvStorage, why string, err error) {
	runsv, lerr := exec.LookPath("runsv")
	if lerr != nil {
		return sv, "runsv not found (install runit)", nil
	}
	if err := needBins(o.binDir, "svc-storage"); err != nil {
		return sv, err.Error(), nil
	}
	bin, err := filepath.Abs(filepath.Join(o.binDir, "svc-storage"))
	if err != nil {
		return sv, "", fmt.Errorf("resolve svc-storage: %w", err)
	}
	sv.dir = filepath.Join(o.tmp, "sv", "storage")
	data := filepath.Join(o.tmp, "sv-data")
	if err := os.MkdirAll(sv.dir, 0o755); err != nil {
		return sv, "", fmt.Errorf("make service dir: %w", err)
	}
	addrs, err := freeAddrs(1)
	if err != nil {
		return sv, "", err
	}
	sv.addr = addrs[0]
	script := "#!/bin/sh\nexec " + shQuote(bin) + " --listen " + sv.addr + " --data-dir " + shQuote(data) + "\n"
	if err := os.WriteFile(filepath.Join(sv.dir, "run"), []byte(script), 0o755); err != nil {
		return sv, "", fmt.Errorf("write run script: %w", err)
	}
	sv.p, err = startProc("runsv", []string{runsv, sv.dir}, nil, filepath.Join(o.tmp, "runsv.log"))
	if err != nil {
		return sv, "", err
	}
	// Registered after startProc, so it runs before its SIGTERM: take the
	// service down, tell runsv to exit, and kill whatever is left.
	p, dir := sv.p, sv.dir
	sv.stop = func() { stopRunsv(p, dir) }
	addCleanup(sv.stop)
	return sv, "", nil
}

// runsvPID reads supervise/pid (empty or missing: 0).
func runsvPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "supervise", "pid"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// isBinary reports whether pid runs an executable named name (guards a kill
// against a recycled pid).
func isBinary(pid int, name string) bool {
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	return err == nil && filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == name
}

// stopRunsv asks runsv to take the service down and exit ("d", "x" on its
// control fifo), then kills the service and runsv if they are still there.
func stopRunsv(p *proc, dir string) {
	if p.exited() {
		return
	}
	pid := runsvPID(dir)
	runsvControl(dir, "dx")
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	if pid > 0 && isBinary(pid, "svc-storage") {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = p.stop(2 * time.Second)
}

// runsvControl writes cmds to the supervise/control fifo of runsv's
// service dir (nothing when runsv is not reading it).
func runsvControl(dir, cmds string) {
	if f, err := os.OpenFile(filepath.Join(dir, "supervise", "control"), os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		_, _ = f.WriteString(cmds)
		_ = f.Close()
	}
}

// shQuote quotes s for /bin/sh.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
