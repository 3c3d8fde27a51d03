package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cleanups run at exit (normal, error or signal), newest first, once.
var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

func addCleanup(f func()) {
	cleanupMu.Lock()
	cleanups = append(cleanups, f)
	cleanupMu.Unlock()
}

func runCleanups() {
	cleanupMu.Lock()
	fs := cleanups
	cleanups = nil
	cleanupMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// proc is one process mnbench started. One goroutine owns Wait and closes
// done; everyone else selects on done.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
}

// baseEnv is mnbench's environment without anything that would configure a
// node behind our back (RON_*, MACRO_*, MACRONODE_*, NOTIFY_SOCKET).
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "RON_") || strings.HasPrefix(k, "MACRO_") || strings.HasPrefix(k, "MACRONODE_") ||
			k == "NOTIFY_SOCKET" || k == "WATCHDOG_USEC" || k == envRole {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// startProc starts argv with env appended to baseEnv, stdout and stderr to
// logPath ("" or "/dev/null" discards). The process gets SIGKILL if mnbench
// dies, and is stopped by the cleanups if still running at exit.
func startProc(name string, argv, env []string, logPath string) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(baseEnv(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	var out *os.File
	if logPath != "" && logPath != os.DevNull {
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open log of %s: %w", name, err)
		}
		out = f
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		if out != nil {
			_ = out.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if out != nil {
		_ = out.Close() // the child holds its own copy
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	addCleanup(func() { _ = p.stop(5 * time.Second) })
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs the process group.
// Only the first call acts; an error says the process had to be killed.
func (p *proc) stop(grace time.Duration) error {
	var err error
	p.once.Do(func() {
		if p.exited() {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
			err = fmt.Errorf("%s (pid %d) ignored SIGTERM for %s: killed", p.name, p.pid(), grace)
		case <-time.After(5 * time.Second):
			err = fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.pid())
		}
	})
	return err
}

// freeAddrs returns n distinct free 127.0.0.1 addresses (listeners are held
// until all are chosen, then closed).
func freeAddrs(n int) ([]string, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	out := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// pollClient opens a new connection per request (no keep-alive), so a poll
// never reuses a connection to a process that was just killed.
var pollClient = &http.Client{
	Timeout:   200 * time.Millisecond,
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
}

// apiClient is for ordinary calls (status, metrics).
var apiClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}

// getCode GETs url and returns the status code (0 on a transport error).
func getCode(ctx context.Context, c *http.Client, url string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	return resp.StatusCode
}

// waitCode polls url every interval until it answers want; it returns the
// time at which it first did.
func waitCode(ctx context.Context, url string, want int, interval, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	last := 0
	for {
		if code := getCode(ctx, pollClient, url); code == want {
			return time.Now(), nil
		} else {
			last = code
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("GET %s: no %d within %s (last status %d)", url, want, timeout, last)
		}
		if err := sleepCtx(ctx, interval); err != nil {
			return time.Time{}, err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// eventually polls cond every 20ms until it holds or timeout passes.
func eventually(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			if lastErr != nil {
				return fmt.Errorf("%s: not within %s: %w", what, timeout, lastErr)
			}
			return fmt.Errorf("%s: not within %s", what, timeout)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

// procStat is what /proc tells about one process.
type procStat struct {
	rssKiB int64 // VmRSS
	hwmKiB int64 // VmHWM (peak RSS)
	cpu    time.Duration
}

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc/<pid>/stat.
const clockTicks = 100

func readProcStat(pid int) (procStat, error) {
	var s procStat
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return s, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fs[0], 10, 64)
		switch k {
		case "VmRSS":
			s.rssKiB = n
		case "VmHWM":
			s.hwmKiB = n
		}
	}
	_ = f.Close()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return s, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	// The command name may hold spaces and parens: fields start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return s, fmt.Errorf("parse stat of pid %d: no ')'", pid)
	}
	fs := strings.Fields(string(b[i+1:]))
	// After ')': state(3) ppid(4) ... utime(14) stime(15): indexes 11 and 12 here.
	if len(fs) < 13 {
		return s, fmt.Errorf("parse stat of pid %d: %d fields", pid, len(fs))
	}
	ut, err1 := strconv.ParseInt(fs[11], 10, 64)
	st, err2 := strconv.ParseInt(fs[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return s, fmt.Errorf("parse stat of pid %d: %w", pid, err)
	}
	s.cpu = time.Duration(ut+st) * time.Second / clockTicks
	return s, nil
}

// needBins checks that every named binary exists in dir, naming the missing.
func needBins(dir string, names ...string) error {
	var missing []string
	for _, n := range names {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, filepath.Join(dir, n))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not built: %s (run make build)", strings.Join(missing, ", "))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
