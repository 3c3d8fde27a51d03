package svcrt

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/macronode/macronode/pkg/buildinfo"
)

// --help and --version answer on stdout and exit 0; errors stay on stderr.
func TestHelpAndVersionOnStdout(t *testing.T) {
	t.Parallel()
	p := testPlane(nil, nil)
	p.Routes = []Route{{"GET /widgets/{id}", "one widget"}, {"/proxy/", "anything under it"}}
	private := p
	private.PrivateOps = true
	tests := []struct {
		name     string
		plane    Plane
		args     []string
		code     int
		stdout   []string
		noStdout []string
		stderr   string
	}{
		{"help", p, []string{"--help"}, ExitOK, []string{
			"svc-test - a plane for tests", "HTTP routes on --listen:\n",
			"  GET /widgets/{id}  one widget\n", "  /proxy/            anything under it\n",
			"  GET /healthz", "  GET /readyz", "  GET /metrics", "  GET /version", "--widgets n",
		}, []string{"ops listener"}, ""},
		{"-h", p, []string{"-h"}, ExitOK, []string{"HTTP routes on --listen:"}, nil, ""},
		{"help, private ops", private, []string{"--help"}, ExitOK, []string{
			"HTTP routes on the ops listener (--internal-listen):\n  GET /metrics",
		}, nil, ""},
		{"version", p, []string{"--version"}, ExitOK, []string{"svc-test " + buildinfo.Version + " (git "}, nil, ""},
		{"bad flag", p, []string{"--bogus"}, ExitUsage, nil, nil, "flag provided but not defined: -bogus\nRun 'svc-test --help' for usage."},
		{"help after a bad flag", p, []string{"--bogus", "--help"}, ExitUsage, nil, nil, "-bogus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr syncBuffer
			code := ExitCode(runIO(context.Background(), tc.plane, tc.args, &stdout, &stderr, envMap(nil)))
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tc.noStdout {
				if strings.Contains(stdout.String(), w) {
					t.Errorf("stdout has %q:\n%s", w, stdout.String())
				}
			}
			if len(tc.stdout) == 0 && stdout.String() != "" {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) || (tc.stderr == "" && stderr.String() != "") {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.stderr)
			}
		})
	}
}

// The plane's flags are registered and parsed once: a repeatable flag
// (the overlay's --p2p-listen) must not collect its values twice.
func TestPlaneFlagsParsedOnce(t *testing.T) {
	t.Parallel()
	var values []string
	registered := 0
	p := testPlane(nil, nil)
	p.Flags = func(fs *flag.FlagSet) {
		registered++
		fs.Func("addr", "repeatable `addr`", func(v string) error { values = append(values, v); return nil })
	}
	errBuild := errors.New("stop here")
	p.Build = func(context.Context, Env) (Service, error) { return nil, errBuild }
	var stdout, stderr syncBuffer
	err := runIO(context.Background(), p, []string{"--listen", "127.0.0.1:0", "--amnesia", "--addr", "a", "--addr", "b"}, &stdout, &stderr, envMap(nil))
	if !errors.Is(err, errBuild) {
		t.Fatalf("run: %v; stderr %s", err, stderr.String())
	}
	if registered != 1 || strings.Join(values, ",") != "a,b" {
		t.Errorf("flags registered %d times, values %v; want once, [a b]", registered, values)
	}
}
