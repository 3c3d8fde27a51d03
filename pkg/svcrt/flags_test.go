package svcrt

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/httpx"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(o options) error
		wantErr string // substring; "help" means flag.ErrHelp
		usage   bool   // the error is a *UsageError
	}{
		{name: "defaults", want: func(o options) error {
			if o.listen != "127.0.0.1:0" || o.dataDir != "./data/test" || o.logLevel != hclog.Info ||
				o.logFormat != "auto" || o.amnesia || o.shutdownTimeout != DefaultShutdownTimeout || o.version {
				return fmt.Errorf("%+v", o)
			}
			return nil
		}},
		{name: "all common flags", args: []string{"--listen", "0.0.0.0:1", "--data-dir=/d", "--log-level", "debug",
			"--log-format", "text", "--amnesia", "--shutdown-timeout", "3s"}, want: func(o options) error {
			if o.listen != "0.0.0.0:1" || o.dataDir != "/d" || o.logLevel != hclog.Debug || o.logFormat != "text" ||
				!o.amnesia || o.shutdownTimeout != 3*time.Second {
				return fmt.Errorf("%+v", o)
			}
			return nil
		}},
		{name: "single dash works too", args: []string{"-listen", "127.0.0.1:5"}, want: func(o options) error {
			if o.listen != "127.0.0.1:5" {
				return fmt.Errorf("%+v", o)
			}
			return nil
		}},
		{name: "env amnesia 1", env: map[string]string{EnvAmnesia: "1"}, want: amnesia(true)},
		{name: "env amnesia true", env: map[string]string{EnvAmnesia: "true"}, want: amnesia(true)},
		{name: "flag beats env", args: []string{"--amnesia=false"}, env: map[string]string{EnvAmnesia: "1"}, want: amnesia(false)},
		{name: "env amnesia garbage", env: map[string]string{EnvAmnesia: "maybe"}, wantErr: EnvAmnesia, usage: true},
		{name: "plane flag", args: []string{"--widgets", "9"}},
		{name: "version", args: []string{"--version"}, want: func(o options) error {
			if !o.version {
				return errors.New("version not set")
			}
			return nil
		}},
		{name: "help", args: []string{"--help"}, wantErr: "help"},
		{name: "h", args: []string{"-h"}, wantErr: "help"},
		{name: "unknown flag", args: []string{"--bogus"}, wantErr: "bogus", usage: true},
		{name: "bad plane flag value", args: []string{"--widgets", "many"}, wantErr: "widgets", usage: true},
		{name: "positional arg", args: []string{"serve"}, wantErr: `unexpected argument "serve"`, usage: true},
		{name: "bad level", args: []string{"--log-level", "loud"}, wantErr: "--log-level", usage: true},
		{name: "level off", args: []string{"--log-level", "off"}, wantErr: "--log-level", usage: true},
		{name: "bad format", args: []string{"--log-format", "xml"}, wantErr: "--log-format", usage: true},
		{name: "empty listen", args: []string{"--listen", ""}, wantErr: "--listen", usage: true},
		{name: "zero grace", args: []string{"--shutdown-timeout", "0s"}, wantErr: "--shutdown-timeout", usage: true},
		{name: "bad duration", args: []string{"--shutdown-timeout", "soon"}, wantErr: "shutdown-timeout", usage: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			o, err := parseFlags(testPlane(nil, nil), tc.args, &out, envMap(tc.env))
			switch {
			case tc.wantErr == "help":
				if !errors.Is(err, flag.ErrHelp) || ExitCode(err) != ExitOK {
					t.Fatalf("err = %v, want flag.ErrHelp", err)
				}
				help := out.String()
				for _, want := range []string{"svc-test - a plane for tests", "--listen address", "--data-dir",
					"--log-level", "--log-format", "--amnesia", "--shutdown-timeout", "--version",
					"test flags:", "--widgets n", "svc-test --listen 127.0.0.1:0 --data-dir /tmp/test",
					"MACRONODE_CONTROL_SOCKET", "Exit codes"} {
					if !strings.Contains(help, want) {
						t.Errorf("help lacks %q:\n%s", want, help)
					}
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				var ue *UsageError
				if tc.usage != errors.As(err, &ue) {
					t.Fatalf("usage error = %v, want %v", !tc.usage, tc.usage)
				}
				if tc.usage && (ExitCode(err) != ExitUsage || !strings.Contains(out.String(), "--help")) {
					t.Fatalf("exit %d, output %q", ExitCode(err), out.String())
				}
			default:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if tc.want != nil {
					if err := tc.want(o); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

func amnesia(want bool) func(options) error {
	return func(o options) error {
		if o.amnesia != want {
			return fmt.Errorf("amnesia = %v, want %v", o.amnesia, want)
		}
		return nil
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{fmt.Errorf("svc-x: %w", flag.ErrHelp), ExitOK},
		{&UsageError{Err: errors.New("bad")}, ExitUsage},
		{fmt.Errorf("wrapped: %w", &UsageError{Err: errors.New("bad")}), ExitUsage},
		{errors.New("listen: in use"), ExitFailure},
		{fmt.Errorf("%w: EOF", ErrLostControl), ExitFailure},
	}
	for _, tc := range tests {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestRouteAndMethodLabels(t *testing.T) {
	routes := map[string]string{
		"":                 "unmatched",
		"/":                "/",
		"GET /healthz":     "/healthz",
		"POST /o":          "/o",
		"GET /o/{addr}":    "/o/{addr}",
		"example.com/x":    "example.com/x",
		"GET example.com/": "example.com/",
	}
	for in, want := range routes {
		if got := routeLabel(in); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", in, got, want)
		}
	}
	methods := map[string]string{"GET": "GET", "DELETE": "DELETE", "BREW": "other", "get": "other"}
	for in, want := range methods {
		if got := httpx.MethodLabel(in); got != want {
			t.Errorf("httpx.MethodLabel(%q) = %q, want %q", in, got, want)
		}
	}
	if got := metricName("my-plane.v2"); got != "my_plane_v2" {
		t.Errorf("metricName = %q", got)
	}
}

func TestPlaneValidate(t *testing.T) {
	bad := []Plane{
		{},
		{Name: "x", DefaultAddr: "127.0.0.1:0"},
		{Name: "x", Build: testPlane(nil, nil).Build},
	}
	for i, p := range bad {
		var out syncBuffer
		err := run(t.Context(), p, nil, &out, envMap(nil))
		if err == nil || ExitCode(err) != ExitFailure {
			t.Errorf("plane %d: run = %v", i, err)
		}
	}
}
