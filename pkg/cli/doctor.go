package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/control"
)

// Check outcomes of `macronode doctor`.
const (
	checkOK   = "ok"
	checkWarn = "warn"
	checkFail = "fail"
)

// File-descriptor limits below which doctor fails or warns.
const (
	minNoFile  = 1024
	warnNoFile = 4096
)

type checkResult struct {
	status, name, detail string
}

func doctorCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "doctor",
		Usage:     "check that this host can run the node",
		UsageText: "macronode doctor " + runUsage,
		Description: "Real checks, one line each (ok, warn or fail): every enabled plane's binary is\n" +
			"found (beside macronode, then $PATH), every listen port is free (bound and\n" +
			"released), data_dir and run_dir are writable, the control socket path fits in\n" +
			"107 bytes, and the open-file limit is at least 1024 (4096 recommended).\n" +
			"If a macronode already answers on http_addr (GET /version), the ports its\n" +
			"status (GET /api/v1/status) lists as its own are reported as held by it, not\n" +
			"as failures. Takes the same flags as `run`. Exit 1 if any check fails, 2 if\n" +
			"the configuration is invalid.\n\n" +
			"Example:\n   sudo -u macronode RON_CONFIG=/etc/macronode/macronode.yaml macronode doctor",
		Flags: runFlags(),
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErr("doctor takes no arguments, got %q", c.Args().Slice())
			}
			cfg, err := loadConfig(c, env, c.String("config"), overrides(c, runFlagFields))
			if err != nil {
				return err
			}
			results := doctor(c.Context, cfg)
			tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
			failed := 0
			for _, r := range results {
				fmt.Fprintf(tw, "%-4s\t%s\t%s\n", r.status, r.name, r.detail) // status padded: stable columns
				if r.status == checkFail {
					failed++
				}
			}
			if err := tw.Flush(); err != nil {
				return failure(err)
			}
			if failed > 0 {
				return failure(fmt.Errorf("doctor: %d check(s) failed", failed))
			}
			return nil
		},
	}
}

// doctor runs every check against cfg.
func doctor(ctx context.Context, cfg *config.Config) []checkResult {
	var out []checkResult
	running, probe := probeNode(ctx, cfg)
	if probe != nil {
		out = append(out, *probe)
	}
	enabled := cfg.Enabled()
	for _, p := range enabled {
		name := "binary " + p
		if path, err := config.ResolveBinary(p, cfg.Services[p].Binary); err != nil {
			out = append(out, checkResult{checkFail, name, err.Error()})
		} else {
			out = append(out, checkResult{checkOK, name, path})
		}
	}
	out = append(out, checkPort("port admin", cfg.HTTPAddr, running))
	if cfg.MetricsAddr != "" {
		out = append(out, checkPort("port metrics", cfg.MetricsAddr, running))
	}
	for _, p := range enabled {
		out = append(out, checkPort("port "+p, cfg.Services[p].Listen, running))
	}
	if cfg.Amnesia {
		out = append(out, checkResult{checkOK, "data_dir", "not used (amnesia: nothing is written to disk)"})
	} else {
		out = append(out, checkDir("data_dir", cfg.DataDir))
	}
	if cfg.RunDir == "" {
		out = append(out, checkTempRunDir(os.TempDir()))
	} else {
		out = append(out, checkDir("run_dir", cfg.RunDir), checkSocket(cfg.RunDir))
	}
	return append(out, checkNoFile())
}

// tempRunDirPattern is the os.MkdirTemp pattern of the private run dir the
// node makes when run_dir is unset (pkg/node prepareRunDir).
const tempRunDirPattern = "macronode-"

// maxTempSuffix is the longest random suffix os.MkdirTemp appends (a
// decimal uint32).
const maxTempSuffix = 10

// checkTempRunDir judges an unset run_dir: the node will make a private
// dir under tmp, so tmp must be writable and the longest control socket
// path such a dir can give must fit.
func checkTempRunDir(tmp string) checkResult {
	longest := len(filepath.Join(tmp, tempRunDirPattern+strings.Repeat("9", maxTempSuffix), control.SocketName))
	if longest > control.MaxSocketPath {
		return checkResult{checkFail, "run_dir", fmt.Sprintf("unset: the private temp dir made under %s at start gives a control socket path of up to %d bytes, over the %d-byte limit; set run_dir (RON_RUN_DIR) to a short path", tmp, longest, control.MaxSocketPath)}
	}
	dir, err := os.MkdirTemp(tmp, tempRunDirPattern)
	if err != nil {
		return checkResult{checkFail, "run_dir", fmt.Sprintf("unset, and a private temp dir cannot be made under %s: %v", tmp, err)}
	}
	if err := os.Remove(dir); err != nil {
		return checkResult{checkWarn, "run_dir", fmt.Sprintf("unset; made a test dir %s but could not remove it: %v", dir, err)}
	}
	return checkResult{checkOK, "run_dir", fmt.Sprintf("unset: a private temp dir is made at start under %s (socket path length fine: at most %d of %d bytes)", tmp, longest, control.MaxSocketPath)}
}

// checkPort binds and releases addr. A busy address that the running node
// (if any) says is its own is fine.
func checkPort(name, addr string, running *runningNode) checkResult {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if !errors.Is(err, unix.EADDRINUSE) {
			return checkResult{checkFail, name, fmt.Sprintf("%s: %v", addr, err)}
		}
		if holder, ok := running.holder(addr); ok {
			return checkResult{checkOK, name, addr + " held by the running node (" + holder + ")"}
		}
		return checkResult{checkFail, name, addr + " is in use (is a node already running?)"}
	}
	if err := ln.Close(); err != nil {
		return checkResult{checkWarn, name, fmt.Sprintf("%s: bound, but close failed: %v", addr, err)}
	}
	return checkResult{checkOK, name, addr + " is free"}
}

// checkDir proves dir writable by creating and removing a file in it; a
// missing dir must be creatable under its nearest existing ancestor.
func checkDir(name, dir string) checkResult {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return checkResult{checkFail, name, dir + " exists and is not a directory"}
	case errors.Is(err, os.ErrNotExist):
		parent := filepath.Dir(filepath.Clean(dir))
		for {
			if _, err := os.Stat(parent); err == nil || parent == filepath.Dir(parent) {
				break
			}
			parent = filepath.Dir(parent)
		}
		if err := unix.Access(parent, unix.W_OK|unix.X_OK); err != nil {
			return checkResult{checkFail, name, fmt.Sprintf("%s does not exist and %s is not writable: %v", dir, parent, err)}
		}
		return checkResult{checkOK, name, fmt.Sprintf("%s does not exist yet; it will be created under %s", dir, parent)}
	case err != nil:
		return checkResult{checkFail, name, err.Error()}
	}
	f, err := os.CreateTemp(dir, ".doctor-")
	if err != nil {
		return checkResult{checkFail, name, fmt.Sprintf("%s is not writable: %v", dir, err)}
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(f.Name())
		return checkResult{checkFail, name, fmt.Sprintf("%s: closing a test file failed: %v", dir, err)}
	}
	if err := os.Remove(f.Name()); err != nil {
		return checkResult{checkWarn, name, fmt.Sprintf("%s: wrote a test file but could not remove it: %v", dir, err)}
	}
	return checkResult{checkOK, name, dir + " is writable"}
}

func checkSocket(runDir string) checkResult {
	sock := filepath.Join(runDir, control.SocketName)
	if n := len(sock); n > control.MaxSocketPath {
		return checkResult{checkFail, "control socket", fmt.Sprintf("%s is %d bytes, over the %d-byte limit; use a shorter run_dir", sock, n, control.MaxSocketPath)}
	}
	return checkResult{checkOK, "control socket", fmt.Sprintf("%s (%d bytes, limit %d)", sock, len(sock), control.MaxSocketPath)}
}

func checkNoFile() checkResult {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return checkResult{checkFail, "open files", fmt.Sprintf("getrlimit: %v", err)}
	}
	detail := fmt.Sprintf("RLIMIT_NOFILE soft %d, hard %d", lim.Cur, lim.Max)
	switch {
	case lim.Cur < minNoFile:
		return checkResult{checkFail, "open files", detail + fmt.Sprintf(" (need at least %d)", minNoFile)}
	case lim.Cur < warnNoFile:
		return checkResult{checkWarn, "open files", detail + fmt.Sprintf(" (%d or more recommended; LimitNOFILE= in the unit)", warnNoFile)}
	}
	return checkResult{checkOK, "open files", detail}
}
