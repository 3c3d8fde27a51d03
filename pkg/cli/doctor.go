package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/macronode/macronode/pkg/config"
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
		UsageText: "macronode doctor [--config PATH]",
		Description: "Real checks, one line each (ok, warn or fail): every enabled plane's binary is\n" +
			"found (beside macronode, then $PATH), every listen port is free (bound and\n" +
			"released), data_dir and run_dir are writable, the control socket path fits in\n" +
			"107 bytes, and the open-file limit is at least 1024 (4096 recommended).\n" +
			"Exit 1 if any check fails, 2 if the configuration is invalid.\n\n" +
			"Example:\n   sudo -u macronode RON_CONFIG=/etc/macronode/config.yaml macronode doctor",
		Flags: []ucli.Flag{configFlag()},
		Action: func(c *ucli.Context) error {
			cfg, err := loadConfig(c, env, c.String("config"), nil)
			if err != nil {
				return err
			}
			results := doctor(cfg)
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
func doctor(cfg *config.Config) []checkResult {
	var out []checkResult
	enabled := cfg.Enabled()
	for _, p := range enabled {
		name := "binary " + p
		if path, err := config.ResolveBinary(p, cfg.Services[p].Binary); err != nil {
			out = append(out, checkResult{checkFail, name, err.Error()})
		} else {
			out = append(out, checkResult{checkOK, name, path})
		}
	}
	out = append(out, checkPort("port admin", cfg.HTTPAddr))
	if cfg.MetricsAddr != "" {
		out = append(out, checkPort("port metrics", cfg.MetricsAddr))
	}
	for _, p := range enabled {
		out = append(out, checkPort("port "+p, cfg.Services[p].Listen))
	}
	if cfg.Amnesia {
		out = append(out, checkResult{checkOK, "data_dir", "not used (amnesia: nothing is written to disk)"})
	} else {
		out = append(out, checkDir("data_dir", cfg.DataDir))
	}
	runDir := cfg.RunDir
	if runDir == "" {
		// The daemon makes a private directory under the temp dir: check
		// there, with a directory named the way such directories are.
		dir, err := os.MkdirTemp("", "macronode-")
		if err != nil {
			out = append(out, checkResult{checkFail, "run_dir", fmt.Sprintf("cannot create a private dir in %s: %v", os.TempDir(), err)})
		} else {
			_ = os.Remove(dir)
			out = append(out, checkResult{checkOK, "run_dir", fmt.Sprintf("unset: a private dir under %s is made at start", os.TempDir())})
			out = append(out, checkSocket(dir))
		}
	} else {
		out = append(out, checkDir("run_dir", runDir), checkSocket(runDir))
	}
	return append(out, checkNoFile())
}

func checkPort(name, addr string) checkResult {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		detail := fmt.Sprintf("%s: %v", addr, err)
		if errors.Is(err, unix.EADDRINUSE) {
			detail = addr + " is in use (is a node already running?)"
		}
		return checkResult{checkFail, name, detail}
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
	f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return checkResult{checkWarn, name, fmt.Sprintf("%s: wrote a test file but could not remove it: %v", dir, err)}
	}
	return checkResult{checkOK, name, dir + " is writable"}
}

func checkSocket(runDir string) checkResult {
	sock := filepath.Join(runDir, config.ControlSocketName)
	if n := len(sock); n > config.MaxSocketPath {
		return checkResult{checkFail, "control socket", fmt.Sprintf("%s is %d bytes, over the %d-byte limit; use a shorter run_dir", sock, n, config.MaxSocketPath)}
	}
	return checkResult{checkOK, "control socket", fmt.Sprintf("%s (%d bytes, limit %d)", sock, len(sock), config.MaxSocketPath)}
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
