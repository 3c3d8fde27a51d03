package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/node"

	"github.com/macronode/macronode/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer = testutil.SyncBuffer

type result struct {
	code           int
	stdout, stderr string
}

// run runs the CLI in-process with exactly the given environment.
func run(t *testing.T, environ []string, args ...string) result {
	t.Helper()
	return runCtx(t, context.Background(), Env{}, environ, args...)
}

func runCtx(t *testing.T, ctx context.Context, env Env, environ []string, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	env.Stdout, env.Stderr = &stdout, &stderr
	env.Environ = func() []string { return environ }
	code := Run(ctx, append([]string{"macronode"}, args...), env)
	return result{code, stdout.String(), stderr.String()}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	unknownKey := writeFile(t, "a.yaml", "log_level: info\nhtp_addr: 127.0.0.1:8080\n")
	parsecs := writeFile(t, "b.yaml", "read_timeout: 5 parsecs\n")
	portRange := writeFile(t, "c.yaml", "http_addr: 127.0.0.1:65536\n")
	noPort := writeFile(t, "d.yaml", "services:\n  storage:\n    listen: localhost\n")
	good := writeFile(t, "e.yaml", "http_addr: 127.0.0.1:18080\n")
	goodJSON := writeFile(t, "f.json", `{"log_level": "debug"}`)
	badExt := writeFile(t, "g.toml", "x = 1\n")

	tests := []struct {
		name    string
		environ []string
		args    []string
		code    int
		stdout  string
		stderr  string
	}{
		{"check ok", nil, []string{"check", "--config", good}, ExitOK, "config ok", ""},
		{"check json", nil, []string{"check", "-c", goodJSON}, ExitOK, "config ok", ""},
		{"unknown key", nil, []string{"check", "--config", unknownKey}, ExitUsage, "", unknownKey + `: line 2: unknown field "htp_addr"`},
		{"parsecs", nil, []string{"check", "--config", parsecs}, ExitUsage, "", `line 1: read_timeout: invalid duration "5 parsecs"`},
		{"port out of range", nil, []string{"check", "--config", portRange}, ExitUsage, "", "http_addr (file " + portRange + `): "127.0.0.1:65536": port out of range`},
		{"no port", nil, []string{"check", "--config", noPort}, ExitUsage, "", "services.storage.listen (file " + noPort + `): "localhost" is an address without a port`},
		{"bad extension", nil, []string{"check", "--config", badExt}, ExitUsage, "", `unsupported extension ".toml"`},
		{"RON_CONFIG", []string{"RON_CONFIG=" + unknownKey}, []string{"check"}, ExitUsage, "", `unknown field "htp_addr"`},
		{"env parse error", []string{"RON_READ_TIMEOUT=abc"}, []string{"check"}, ExitUsage, "", `env RON_READ_TIMEOUT: read_timeout: invalid duration "abc"`},
		{"run bad config", nil, []string{"run", "--config", parsecs}, ExitUsage, "", "read_timeout"},
		{"run bad flag value", []string{"RON_LOG=debug"}, []string{"run", "--log-level", "verbose"}, ExitUsage, "", `log_level (flag --log-level): "verbose" is not one of`},
		{"run bad duration flag", nil, []string{"run", "--graceful-timeout", "soon"}, ExitUsage, "", `flag --graceful-timeout: shutdown_timeout: invalid duration "soon"`},
		{"run stray argument", nil, []string{"run", "now"}, ExitUsage, "", "run takes no arguments"},
		{"unknown command", nil, []string{"frobnicate"}, ExitUsage, "", `unknown command "frobnicate"`},
		{"unknown flag", nil, []string{"check", "--bogus"}, ExitUsage, "", "flag provided but not defined: -bogus"},
		{"no command", nil, nil, ExitUsage, "USAGE:", ""},
		{"unknown config subcommand", nil, []string{"config", "show"}, ExitUsage, "", `unknown command "show" (commands: print, validate); see 'macronode config --help'`},
		{"restart needs a service", nil, []string{"restart"}, ExitUsage, "", "restart needs SERVICE... or all"},
		{"logs bad -n", nil, []string{"logs", "storage", "-n", "0"}, ExitUsage, "", "-n must be at least 1"},
		{"validate file ok", []string{"RON_READ_TIMEOUT=abc"}, []string{"config", "validate", good}, ExitOK, good + ": ok", ""},
		{"validate file bad", nil, []string{"config", "validate", portRange}, ExitUsage, "", "port out of range"},
		{"validate layered", []string{"RON_HTTP_ADDR=nope"}, []string{"config", "validate"}, ExitUsage, "", "http_addr (env RON_HTTP_ADDR)"},
		{"help", nil, []string{"run", "--help"}, ExitOK, "Example", ""},
		{"macro warning", []string{"MACRO_LOG=debug"}, []string{"check"}, ExitOK, "config ok", "warning: MACRO_LOG is deprecated; use RON_LOG"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tc.environ, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.stdout) {
				t.Errorf("stdout %q does not contain %q", r.stdout, tc.stdout)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tc.stderr)
			}
		})
	}
}

func TestConfigPrintSources(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "c.yaml", "log_level: warn\nadmin_token: hunter2\nservices:\n  storage:\n    listen: 127.0.0.1:19300\n")
	r := run(t, []string{"RON_LOG=debug", "RON_CONFIG=" + file}, "config", "print")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		`log_level = "debug"  # env RON_LOG`,
		`services.storage.listen = "127.0.0.1:19300"  # file ` + file,
		`admin_token = (set)  # file ` + file,
		`http_addr = "127.0.0.1:8080"  # default`,
	} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("config print lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "hunter2") {
		t.Error("config print revealed the admin token")
	}

	// An invalid config is still printed, then reported with exit 2.
	r = run(t, []string{"RON_HTTP_ADDR=127.0.0.1:0"}, "config", "print")
	if r.code != ExitUsage || !strings.Contains(r.stdout, `http_addr = "127.0.0.1:0"  # env RON_HTTP_ADDR`) || !strings.Contains(r.stderr, "port out of range") {
		t.Errorf("invalid print: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "version", "--json")
	var info map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || r.code != ExitOK {
		t.Fatalf("version --json: exit %d, %q: %v", r.code, r.stdout, err)
	}
	if info["service"] != "macronode" || info["go"] == "" || info["api"].(map[string]any)["http"] != "v1" {
		t.Errorf("version = %v", info)
	}
	r = run(t, nil, "version")
	if !strings.HasPrefix(r.stdout, "macronode ") || !strings.Contains(r.stdout, "git sha:") {
		t.Errorf("version = %q", r.stdout)
	}
}

func TestRunHandsConfigAndReloadToNode(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "c.yaml", "log_level: warn\nread_timeout: 3s\n")
	var mu sync.Mutex
	environ := []string{"RON_LOG=debug", "RON_WRITE_TIMEOUT=4s"}
	var got, reloaded *config.Config
	var reloadErr error
	env := Env{runNode: func(ctx context.Context, opts node.Options) error {
		got = opts.Config
		if opts.Logger == nil || opts.Logger.Name() != "macronode" || !opts.Logger.IsTrace() {
			return fmt.Errorf("logger not built from the config: %v", opts.Logger)
		}
		mu.Lock()
		environ = []string{"RON_LOG=info", "RON_WRITE_TIMEOUT=9s"} // the environment changes before a reload
		mu.Unlock()
		reloaded, reloadErr = opts.Reload()
		mu.Lock()
		environ = []string{"RON_READ_TIMEOUT=never"}
		mu.Unlock()
		if _, err := opts.Reload(); err == nil {
			return errors.New("reload accepted a bad value")
		}
		return errors.New("boom")
	}}
	var stdout, stderr syncBuffer
	env.Stdout, env.Stderr = &stdout, &stderr
	env.Environ = func() []string { mu.Lock(); defer mu.Unlock(); return environ }
	code := Run(context.Background(), []string{"macronode", "run", "--config", file, "--log-level", "trace", "--amnesia"}, env)
	if code != ExitFailure {
		t.Fatalf("node error should exit 1, got %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "boom") {
		t.Errorf("the node's error is not logged: %q", stderr.String())
	}
	if got.LogLevel != "trace" || got.Source("log_level") != "flag --log-level" || !got.Amnesia || got.ReadTimeout.D() != 3*time.Second || got.WriteTimeout.D() != 4*time.Second {
		t.Errorf("config = level %s (%s), amnesia %v, read %s, write %s", got.LogLevel, got.Source("log_level"), got.Amnesia, got.ReadTimeout, got.WriteTimeout)
	}
	if reloadErr != nil {
		t.Fatal(reloadErr)
	}
	if reloaded.LogLevel != "trace" || reloaded.WriteTimeout.D() != 9*time.Second || reloaded.ReadTimeout.D() != 3*time.Second {
		t.Errorf("reload = level %s, write %s, read %s", reloaded.LogLevel, reloaded.WriteTimeout, reloaded.ReadTimeout)
	}
}
