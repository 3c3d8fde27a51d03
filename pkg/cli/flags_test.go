package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/macronode/macronode/pkg/node"
)

// TestRunFlagsOnCheckAndPrint: `check` and `config print` take run's
// override flags, so they judge and show exactly what `run` would run.
func TestRunFlagsOnCheckAndPrint(t *testing.T) {
	t.Parallel()
	r := run(t, []string{"RON_LOG=debug"}, "config", "print", "--log-level", "WARN", "--http-addr", "127.0.0.1:18080",
		"--metrics-addr", "127.0.0.1:18081", "--log-format", "text", "--data-dir", "/srv/mn", "--graceful-timeout", "30s", "--amnesia",
		"--bootstrap", "/ip4/127.0.0.1/tcp/9101/p2p/A", "--bootstrap", "/ip4/127.0.0.1/tcp/9102/p2p/B,/ip4/127.0.0.1/tcp/9103/p2p/C")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		`log_level = "warn"  # flag --log-level`,
		`http_addr = "127.0.0.1:18080"  # flag --http-addr`,
		`metrics_addr = "127.0.0.1:18081"  # flag --metrics-addr`,
		`log_format = "text"  # flag --log-format`,
		`data_dir = "/srv/mn"  # flag --data-dir`,
		`shutdown_timeout = 30s  # flag --graceful-timeout`,
		`amnesia = true  # flag --amnesia`,
		`network.bootstrap = ["/ip4/127.0.0.1/tcp/9101/p2p/A", "/ip4/127.0.0.1/tcp/9102/p2p/B", "/ip4/127.0.0.1/tcp/9103/p2p/C"]  # flag --bootstrap`,
	} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("config print lacks %q:\n%s", want, r.stdout)
		}
	}
	tests := []struct {
		name    string
		environ []string
		args    []string
		code    int
		stderr  string
	}{
		{"check flag ok", nil, []string{"check", "--http-addr", "127.0.0.1:18080", "--amnesia"}, ExitOK, ""},
		{"check bad flag value", nil, []string{"check", "--http-addr", "127.0.0.1:0"}, ExitUsage, `http_addr (flag --http-addr): "127.0.0.1:0": port out of range`},
		{"check flag beats env", []string{"RON_HTTP_ADDR=nope"}, []string{"check", "--http-addr", "127.0.0.1:18080"}, ExitOK, ""},
		{"check bad duration flag", nil, []string{"check", "--graceful-timeout", "soon"}, ExitUsage, `flag --graceful-timeout: shutdown_timeout: invalid duration "soon"`},
		{"check stray argument", nil, []string{"check", "x.yaml"}, ExitUsage, "check takes no arguments"},
		{"print bad flag value", nil, []string{"config", "print", "--log-format", "xml"}, ExitUsage, `log_format (flag --log-format): "xml" is not one of auto, json, text`},
		{"upper-case env level", []string{"RON_LOG=INFO", "RON_LOG_FORMAT=JSON"}, []string{"check"}, ExitOK, ""},
		{"check bad bootstrap", nil, []string{"check", "--bootstrap", "/ip4/127.0.0.1/tcp/9101"}, ExitUsage, `network.bootstrap (flag --bootstrap): entry 1: "/ip4/127.0.0.1/tcp/9101" does not end in /p2p/<node id>`},
		{"doctor takes run flags", nil, []string{"doctor", "--log-level", "nope"}, ExitUsage, `log_level (flag --log-level): "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tc.environ, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", r.code, tc.code, r.stderr, tc.stderr)
			}
		})
	}
}

// TestHelpText: the help names real files and the flags it talks about.
func TestHelpText(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "config", "validate", "--help")
	if !strings.Contains(r.stdout, "deploy/macronode.example.yaml") || strings.Contains(r.stdout, "config.example.yaml") {
		t.Errorf("validate help:\n%s", r.stdout)
	}
	example := filepath.Join("..", "..", "deploy", "macronode.example.yaml")
	if _, err := os.Stat(example); err != nil {
		t.Fatalf("the file the help names: %v", err)
	}
	if r := run(t, nil, "config", "validate", example); r.code != ExitOK {
		t.Errorf("%s does not validate: %s", example, r.stderr)
	}
	for _, cmd := range [][]string{{"config", "print"}, {"check"}, {"doctor"}, {"run"}} {
		r := run(t, nil, append(cmd, "--help")...)
		for _, flag := range []string{"--http-addr", "--metrics-addr", "--log-level", "--log-format", "--data-dir", "--graceful-timeout", "--amnesia", "--bootstrap", "--config"} {
			if !strings.Contains(r.stdout, flag) {
				t.Errorf("%v --help lacks %s", cmd, flag)
			}
		}
	}
	if r := run(t, nil, "config", "print", "--help"); !strings.Contains(r.stdout, "flag --<name>") {
		t.Errorf("print help:\n%s", r.stdout)
	}
}

// TestConfigFileErrors: a file that cannot be read says who named it, and
// no message repeats its prefix ("config: config file").
func TestConfigFileErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "absent.yaml")
	mixed := writeFile(t, "m.yaml", "read_timeout: 10\nhtp_addr: x\n")
	tests := []struct {
		name    string
		environ []string
		args    []string
		want    string
	}{
		{"RON_CONFIG", []string{"RON_CONFIG=" + missing}, []string{"check"},
			"macronode: config file " + missing + " (from RON_CONFIG): open " + missing + ": no such file or directory\n"},
		{"--config", nil, []string{"check", "--config", missing},
			"macronode: config file " + missing + " (from --config): open " + missing + ": no such file or directory\n"},
		{"validate PATH", nil, []string{"config", "validate", missing},
			"macronode: config file " + missing + " (from the PATH argument): open " + missing + ": no such file or directory\n"},
		{"print", []string{"RON_CONFIG=" + missing}, []string{"config", "print"},
			"macronode: config file " + missing + " (from RON_CONFIG): open " + missing + ": no such file or directory\n"},
		{"several problems", []string{"RON_IDLE_TIMEOUT=x"}, []string{"check", "-c", mixed},
			"macronode: config errors:\n  " + mixed + ": line 1: read_timeout: invalid duration 10 (write it as a string with a unit: \"500ms\", \"10s\", \"1m\")\n  " +
				mixed + ": line 2: unknown field \"htp_addr\"\n  env RON_IDLE_TIMEOUT: idle_timeout: invalid duration \"x\" (use a number with a unit: 500ms, 10s, 1m)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tc.environ, tc.args...)
			if r.code != ExitUsage || r.stderr != tc.want {
				t.Errorf("exit %d, stderr:\n%q\nwant:\n%q", r.code, r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, "config: config") {
				t.Errorf("doubled prefix: %q", r.stderr)
			}
		})
	}
}

// TestCheckAndRunRefuse: check and run refuse, with exit 2 naming the field
// and its source, a blank admin token and an admin plane reachable beyond
// this host with no credential (unless MACRONODE_DEV_INSECURE=1); a file
// with several problems shows all of them.
func TestCheckAndRunRefuse(t *testing.T) {
	t.Parallel()
	blankFile := writeFile(t, "token", " \n")
	several := writeFile(t, "several.yaml", "read_timeout: 10\nhttp_addr: 127.0.0.1\nlog_level: verbose\n")
	tests := []struct {
		name    string
		environ []string
		args    []string
		code    int
		stderr  []string
	}{
		{"blank token", []string{"RON_ADMIN_TOKEN= "}, nil, ExitUsage, []string{"admin_token (env RON_ADMIN_TOKEN): is blank"}},
		{"blank token file", []string{"RON_ADMIN_TOKEN_FILE=" + blankFile}, nil, ExitUsage, []string{"admin_token_file (env RON_ADMIN_TOKEN_FILE): " + blankFile + " is blank"}},
		{"exposed admin", nil, []string{"--http-addr", "0.0.0.0:18080"}, ExitUsage, []string{"http_addr (flag --http-addr): 0.0.0.0:18080 is not a loopback address"}},
		{"exposed admin with token", []string{"RON_ADMIN_TOKEN=t"}, []string{"--http-addr", "0.0.0.0:18080"}, ExitOK, nil},
		{"exposed admin, dev insecure", []string{"MACRONODE_DEV_INSECURE=1"}, []string{"--http-addr", "0.0.0.0:18080"}, ExitOK, []string{"warning: INSECURE: MACRONODE_DEV_INSECURE=1"}},
		{"several problems", nil, []string{"--config", several}, ExitUsage, []string{
			"config errors:\n", several + ": line 1: read_timeout: invalid duration 10",
			`http_addr (file ` + several + `): "127.0.0.1" is an address without a port`,
			`log_level (file ` + several + `): "verbose" is not one of`,
		}},
	}
	for _, tc := range tests {
		for _, cmd := range []string{"check", "run"} {
			if cmd == "run" && tc.code == ExitOK {
				continue // a valid config would start a node
			}
			t.Run(cmd+" "+tc.name, func(t *testing.T) {
				t.Parallel()
				env := Env{runNode: func(context.Context, node.Options) error {
					return errors.New("the node must not start on a refused config")
				}}
				r := runCtx(t, context.Background(), env, tc.environ, append([]string{cmd}, tc.args...)...)
				if r.code != tc.code {
					t.Errorf("exit %d, want %d; stderr %q", r.code, tc.code, r.stderr)
				}
				for _, w := range tc.stderr {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("stderr %q lacks %q", r.stderr, w)
					}
				}
			})
		}
	}
}
