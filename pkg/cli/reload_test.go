package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/config"
)

func TestReload(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) (admin.ReloadResult, error) {
		return admin.ReloadResult{Changed: []string{"log_level", "services.index.listen"}, Applied: []string{"log_level"},
			RestartRequired: []string{"services.index.listen"}}, nil
	}
	refused := func(context.Context) (admin.ReloadResult, error) {
		return admin.ReloadResult{}, &config.ValidationError{Errs: []config.FieldError{
			{Field: "http_addr", Source: "file /etc/m.yaml", Msg: `"x" is an address without a port`},
			{Field: "log_level", Source: "env RON_LOG", Msg: `"loud" is not one of trace, debug, info, warn, error`},
		}}
	}
	nothing := func(context.Context) (admin.ReloadResult, error) { return admin.ReloadResult{}, nil }
	tests := []struct {
		name           string
		reload         func(context.Context) (admin.ReloadResult, error)
		code           int
		stdout, stderr string
	}{
		{"applied", ok, ExitOK, "reloaded\n" +
			"changed:          log_level, services.index.listen\n" +
			"applied:          log_level\n" +
			"restart_required: services.index.listen\n", ""},
		{"nothing changed", nothing, ExitOK, "reloaded\nchanged:          -\napplied:          -\nrestart_required: -\n", ""},
		{"refused", refused, ExitFailure, "", "macronode: reload refused: config is invalid; the old config stays in force\n" +
			"  http_addr (file /etc/m.yaml): \"x\" is an address without a port\n" +
			"  log_level (env RON_LOG): \"loud\" is not one of trace, debug, info, warn, error\n"},
		{"not wired", nil, ExitFailure, "", "macronode: reload: reload is not available on this node (unavailable, HTTP 503)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bus, l := newBusAndAudit(t, "f00d")
			addr := serveAdmin(t, admin.Options{Events: bus, Audit: l, Reload: tc.reload})
			r := run(t, []string{"RON_HTTP_ADDR=" + addr}, "reload")
			if r.code != tc.code || r.stdout != tc.stdout || r.stderr != tc.stderr {
				t.Errorf("exit %d (want %d)\nstdout %q\nwant   %q\nstderr %q\nwant   %q", r.code, tc.code, r.stdout, tc.stdout, r.stderr, tc.stderr)
			}
		})
	}
}

// Fields the node adds to its answer are printed too.
func TestReloadPrintsExtraFields(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/reload" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"reloaded","changed":["services.index.listen"],"applied":[],` +
			`"restart_required":["services.index.listen"],"hints":{"services.index.listen": "macronode restart index"}}`))
	}))
	defer srv.Close()
	r := run(t, []string{"RON_HTTP_ADDR=" + strings.TrimPrefix(srv.URL, "http://")}, "reload")
	want := "reloaded\nchanged:          services.index.listen\napplied:          -\nrestart_required: services.index.listen\n" +
		`hints:            {"services.index.listen":"macronode restart index"}` + "\n"
	if r.code != ExitOK || r.stdout != want {
		t.Errorf("exit %d\nstdout %q\nwant   %q\nstderr %q", r.code, r.stdout, want, r.stderr)
	}
}
