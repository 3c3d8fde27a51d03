package admin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/buildinfo"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/supervisor"
)

func TestVersion(t *testing.T) {
	n := start(t, Options{})
	r := n.get(t, "/version")
	var got buildinfo.Info
	r.json(t, &got)
	if r.code != 200 || got.Service != "macronode" || got.Version != buildinfo.Version || got.Go == "" || got.API["http"] != "v1" {
		t.Fatalf("got %d %+v", r.code, got)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestHealthz(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  Services
	}{{"no supervisor", nil}, {"supervisor", &fakeServices{}}} {
		t.Run(tc.name, func(t *testing.T) {
			n := start(t, Options{Services: tc.svc})
			r := n.get(t, "/healthz")
			var got HealthResponse
			r.json(t, &got)
			want := map[string]string{"event_loop": "ok", "clock": "ok", "supervisor": "ok"}
			if r.code != 200 || !got.OK || fmt.Sprint(got.Checks) != fmt.Sprint(want) {
				t.Fatalf("got %d %s", r.code, r.body)
			}
		})
	}
}

// stuckServices never answers Snapshot until released.
type stuckServices struct {
	fakeServices
	release chan struct{}
	calls   atomic.Int32
}

func (s *stuckServices) Snapshot() []supervisor.Status {
	s.calls.Add(1)
	<-s.release
	return nil
}

func TestHealthzSupervisorStuck(t *testing.T) {
	svc := &stuckServices{release: make(chan struct{})}
	cfg := testConfig()
	s, err := New(Options{Config: func() *config.Config { return cfg }, Services: svc, Getenv: env()})
	if err != nil {
		t.Fatal(err)
	}
	defer close(svc.release)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if got := s.checkSupervisor(ctx); got != "unresponsive" {
		t.Fatalf("check = %q", got)
	}
	testutil.Eventually(t, 5*time.Second, "one supervisor call", func() bool { return svc.calls.Load() == 1 })
	// The first probe is still outstanding: the second joins it, no second
	// goroutine piles up.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if got := s.checkSupervisor(ctx2); got != "unresponsive" {
		t.Fatalf("second check = %q", got)
	}
	if got := svc.calls.Load(); got != 1 {
		t.Fatalf("Snapshot called %d times", got)
	}
}

func TestCheckClock(t *testing.T) {
	s := &Server{started: time.Now()}
	if got := s.checkClock(time.Now()); got != "ok" {
		t.Errorf("now: %q", got)
	}
	if got := s.checkClock(time.Unix(0, 0)); got == "ok" {
		t.Error("1970 accepted")
	}
	if got := s.checkClock(s.started.Add(-time.Hour)); got == "ok" {
		t.Error("clock an hour before start accepted")
	}
}

func TestStatus(t *testing.T) {
	svc := &fakeServices{}
	storage := running("storage")
	storage.Listen, storage.Restarts, storage.LastExit = "127.0.0.1:9300", 2, "signal: killed"
	svc.set(storage) // the other enabled planes are unknown to the supervisor
	cfg := testConfig()
	cfg.MetricsAddr = "127.0.0.1:9091"
	n := start(t, Options{Services: svc, Config: func() *config.Config { return cfg }, Started: time.Now().Add(-time.Minute)})
	r := n.get(t, "/api/v1/status")
	var got StatusResponse
	r.json(t, &got)
	if r.code != 200 || got.Profile != "macronode" || got.HTTPAddr != cfg.HTTPAddr || got.MetricsAddr != "127.0.0.1:9091" ||
		got.LogLevel != "info" || got.Ready || got.UptimeSeconds < 60 {
		t.Fatalf("got %d %s", r.code, r.body)
	}
	if len(got.Services) != len(config.Planes) {
		t.Fatalf("services = %v", got.Services)
	}
	st := got.Services["storage"]
	if st.State != string(supervisor.StateRunning) || st.PID != 4242 || st.Restarts != 2 || st.LastExit != "signal: killed" || !st.Ready || st.Listen != "127.0.0.1:9300" {
		t.Errorf("storage = %+v", st)
	}
	gw := got.Services["gateway"]
	if gw.State != string(supervisor.StateStopped) || gw.PID != 0 || gw.Listen != cfg.Services["gateway"].Listen {
		t.Errorf("gateway = %+v", gw)
	}
	if !strings.Contains(string(r.body), `"exits":[]`) {
		t.Errorf("exits should be an empty list: %s", r.body)
	}
}

func TestShutdownRoute(t *testing.T) {
	svc := &fakeServices{}
	svc.set(allRunning()...)
	n := start(t, Options{Services: svc})
	for i := 0; i < 2; i++ {
		r := n.post(t, "/api/v1/shutdown")
		if r.code != http.StatusAccepted || strings.TrimSpace(string(r.body)) != `{"status":"shutdown scheduled"}` {
			t.Fatalf("got %d %s", r.code, r.body)
		}
	}
	testutil.Eventually(t, 5*time.Second, "the shutdown callback", func() bool { return n.shutdown.Load() == 1 })
	if r := n.get(t, "/readyz"); r.code != 503 {
		t.Errorf("readyz after shutdown = %d", r.code)
	}
	if got := n.shutdown.Load(); got != 1 {
		t.Errorf("Shutdown called %d times", got)
	}
}

func TestReloadRoute(t *testing.T) {
	tests := []struct {
		name   string
		reload func(context.Context) (ReloadResult, error)
		code   int
		want   string
	}{
		{"ok", func(context.Context) (ReloadResult, error) {
			return ReloadResult{Changed: []string{"log_level", "services.storage.args"}, Applied: []string{"log_level"},
				RestartRequired: []string{"storage"}}, nil
		}, 200, `{"status":"reloaded","changed":["log_level","services.storage.args"],"applied":["log_level"],"restart_required":["storage"]}`},
		{"nothing changed", func(context.Context) (ReloadResult, error) { return ReloadResult{}, nil },
			200, `{"status":"reloaded","changed":[],"applied":[],"restart_required":[]}`},
		{"invalid", func(context.Context) (ReloadResult, error) {
			return ReloadResult{}, fmt.Errorf("reload: %w", &config.ValidationError{Errs: []config.FieldError{
				{Field: "log_level", Source: "file /etc/macronode.yaml", Msg: `must be one of trace, debug, info, warn, error, got "loud"`},
				{Field: "services.storage.listen", Source: "env RON_STORAGE_ADDR", Msg: "invalid address"},
			}})
		}, 422, `{"error":"config is invalid; the old config stays in force","code":"invalid","errors":[` +
			`{"field":"log_level","source":"file /etc/macronode.yaml","message":"must be one of trace, debug, info, warn, error, got \"loud\""},` +
			`{"field":"services.storage.listen","source":"env RON_STORAGE_ADDR","message":"invalid address"}]}`},
		{"unparsable file", func(context.Context) (ReloadResult, error) {
			return ReloadResult{}, fmt.Errorf("%w: %w", ErrInvalidConfig, errors.New("config file /x.yaml: line 3: unknown field \"nope\""))
		}, 422, `{"error":"reload: invalid configuration: config file /x.yaml: line 3: unknown field \"nope\"; the old config stays in force","code":"invalid","errors":[` +
			`{"field":"","source":"file","message":"invalid configuration: config file /x.yaml: line 3: unknown field \"nope\""}]}`},
		{"unreadable file", func(context.Context) (ReloadResult, error) {
			return ReloadResult{}, fmt.Errorf("%w: %w", ErrInvalidConfig,
				fmt.Errorf("config file: %w", &fs.PathError{Op: "open", Path: "/etc/macronode.yaml", Err: fs.ErrNotExist}))
		}, 422, `{"error":"reload: invalid configuration: config file: open /etc/macronode.yaml: file does not exist; the old config stays in force","code":"invalid","errors":[` +
			`{"field":"/etc/macronode.yaml","source":"file","message":"invalid configuration: config file: open /etc/macronode.yaml: file does not exist"}]}`},
		{"internal", func(context.Context) (ReloadResult, error) { return ReloadResult{}, errors.New("disk on fire") },
			500, `{"error":"reload: disk on fire","code":"internal"}`},
		{"not wired", nil, 503, `{"error":"reload is not available on this node","code":"unavailable"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			n := start(t, Options{Reload: tc.reload, Config: func() *config.Config { return cfg }})
			r := n.post(t, "/api/v1/reload")
			if r.code != tc.code || strings.TrimSpace(string(r.body)) != tc.want {
				t.Fatalf("got %d %s\nwant %d %s", r.code, r.body, tc.code, tc.want)
			}
			if n.config() != cfg {
				t.Error("config in force changed")
			}
		})
	}
}

func TestServiceActions(t *testing.T) {
	tests := []struct {
		name   string
		svc    bool
		fail   error
		path   string
		code   int
		want   string
		called string
	}{
		{"restart", true, nil, "/api/v1/services/storage/restart", 202, `{"status":"restart scheduled","service":"storage"}`, "restart storage"},
		{"stop", true, nil, "/api/v1/services/gateway/stop", 202, `{"status":"stop scheduled","service":"gateway"}`, "stop gateway"},
		{"start", true, nil, "/api/v1/services/dht/start", 202, `{"status":"start scheduled","service":"dht"}`, "start dht"},
		{"unknown", true, nil, "/api/v1/services/nope/restart", 404, `{"error":"unknown service \"nope\"","code":"unknown_service"}`, ""},
		{"refused", true, errors.New("already stopping"), "/api/v1/services/storage/stop", 409,
			`{"error":"stop storage: already stopping","code":"conflict"}`, ""},
		{"shutting down", true, fmt.Errorf("restart: %w", supervisor.ErrShuttingDown), "/api/v1/services/storage/restart", 503,
			`{"error":"restart storage: restart: supervisor is shutting down","code":"unavailable"}`, ""},
		{"no supervisor", false, nil, "/api/v1/services/storage/restart", 503,
			`{"error":"no supervisor is running on this node","code":"unavailable"}`, ""},
		{"unknown action", true, nil, "/api/v1/services/storage/explode", 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := &fakeServices{fail: tc.fail}
			fs.set(allRunning()...)
			opts := Options{}
			if tc.svc {
				opts.Services = fs
			}
			n := start(t, opts)
			r := n.post(t, tc.path)
			if r.code != tc.code || (tc.want != "" && strings.TrimSpace(string(r.body)) != tc.want) {
				t.Fatalf("got %d %s", r.code, r.body)
			}
			calls := fs.Calls()
			if (tc.called == "") != (len(calls) == 0) || (tc.called != "" && calls[0] != tc.called) {
				t.Errorf("calls = %v, want %q", calls, tc.called)
			}
		})
	}
}

func TestLogsRoute(t *testing.T) {
	fs := &fakeServices{logs: map[string][]supervisor.LogLine{}}
	fs.set(allRunning()...)
	for i := range 1500 {
		fs.logs["storage"] = append(fs.logs["storage"], supervisor.LogLine{Stream: "stderr", Text: fmt.Sprintf("line %d", i)})
	}
	n := start(t, Options{Services: fs})
	tests := []struct {
		query string
		code  int
		lines int
		call  string
	}{
		{"", 200, 100, "logs storage 100"},
		{"?lines=5", 200, 5, "logs storage 5"},
		{"?lines=5000", 200, 1000, "logs storage 1000"},
		{"?lines=0", 400, 0, ""},
		{"?lines=-3", 400, 0, ""},
		{"?lines=ten", 400, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			before := len(fs.Calls())
			r := n.get(t, "/api/v1/services/storage/logs"+tc.query)
			if r.code != tc.code {
				t.Fatalf("got %d %s", r.code, r.body)
			}
			if tc.code != 200 {
				var e httpx.ErrorBody
				r.json(t, &e)
				if e.Code != "bad_request" {
					t.Errorf("error body %s", r.body)
				}
				return
			}
			var got LogsResponse
			r.json(t, &got)
			if got.Service != "storage" || len(got.Lines) != tc.lines || got.Lines[len(got.Lines)-1].Text != "line 1499" {
				t.Errorf("got service %q, %d lines", got.Service, len(got.Lines))
			}
			if calls := fs.Calls(); len(calls) != before+1 || calls[before] != tc.call {
				t.Errorf("calls = %v", calls[before:])
			}
		})
	}
	t.Run("empty is a list", func(t *testing.T) {
		r := n.get(t, "/api/v1/services/index/logs")
		if r.code != 200 || strings.TrimSpace(string(r.body)) != `{"service":"index","lines":[]}` {
			t.Fatalf("got %d %s", r.code, r.body)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if r := n.get(t, "/api/v1/services/nope/logs"); r.code != 404 {
			t.Fatalf("got %d %s", r.code, r.body)
		}
	})
}

func TestNotFoundAndMethodNotAllowedAreJSON(t *testing.T) {
	n := start(t, Options{})
	tests := []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/nope", 404, ""},
		{"GET", "/api/v1/shutdown", 405, "POST"},
		{"POST", "/readyz", 405, "GET, HEAD"},
		{"DELETE", "/api/v1/services/storage/restart", 405, "POST"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := n.do(t, tc.method, tc.path, nil, "")
			var e httpx.ErrorBody
			r.json(t, &e)
			if r.code != tc.code || e.Code != httpx.CodeFor(tc.code) || e.Error == "" {
				t.Fatalf("got %d %s", r.code, r.body)
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	n := start(t, Options{})
	r := n.do(t, "GET", "/healthz", map[string]string{httpx.HeaderRequestID: "abc-123"}, "")
	if got := r.header.Get(httpx.HeaderRequestID); got != "abc-123" {
		t.Errorf("echoed id = %q", got)
	}
	r1, r2 := n.get(t, "/nope"), n.get(t, "/nope")
	id1, id2 := r1.header.Get(httpx.HeaderRequestID), r2.header.Get(httpx.HeaderRequestID)
	if len(id1) != 32 || id1 == id2 {
		t.Errorf("generated ids %q %q", id1, id2)
	}
}

func TestBodyTooLarge(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 16
	n := start(t, Options{Config: func() *config.Config { return cfg },
		Reload: func(context.Context) (ReloadResult, error) { return ReloadResult{}, nil }})
	r := n.do(t, "POST", "/api/v1/reload", nil, strings.Repeat("x", 17))
	var e httpx.ErrorBody
	r.json(t, &e)
	if r.code != http.StatusRequestEntityTooLarge || e.Code != "too_large" {
		t.Fatalf("got %d %s", r.code, r.body)
	}
	if r := n.do(t, "POST", "/api/v1/reload", nil, "{}"); r.code != 200 {
		t.Fatalf("small body: %d %s", r.code, r.body)
	}
}

func TestPanicIsJSON500(t *testing.T) {
	n := start(t, Options{Services: &panicServices{}})
	r := n.get(t, "/api/v1/status")
	var e httpx.ErrorBody
	r.json(t, &e)
	if r.code != 500 || e.Code != "internal" || r.header.Get(httpx.HeaderRequestID) == "" {
		t.Fatalf("got %d %s", r.code, r.body)
	}
}

type panicServices struct{ fakeServices }

func (*panicServices) Snapshot() []supervisor.Status { panic("boom") }

func TestNewRequiresConfig(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without Config succeeded")
	}
	if _, err := New(Options{Config: func() *config.Config { return nil }}); err == nil {
		t.Fatal("New with nil config succeeded")
	}
}
