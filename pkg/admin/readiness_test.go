package admin

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/supervisor"
)

func TestDepState(t *testing.T) {
	exit := []supervisor.Exit{{PID: 7, Description: "signal: killed"}}
	tests := []struct {
		name string
		st   supervisor.Status
		want string
	}{
		{"running ready", supervisor.Status{State: supervisor.StateRunning, PID: 9, Ready: true}, DepOK},
		{"running not ready", supervisor.Status{State: supervisor.StateRunning, PID: 9}, DepDown},
		{"starting", supervisor.Status{State: supervisor.StateStarting, PID: 9}, DepPending},
		{"never started", supervisor.Status{State: supervisor.StateStopped}, DepPending},
		{"stopped after running", supervisor.Status{State: supervisor.StateStopped, Exits: exit}, DepDown},
		{"stopped after restarts", supervisor.Status{State: supervisor.StateStopped, Restarts: 2}, DepDown},
		{"stopped with pid", supervisor.Status{State: supervisor.StateStopped, PID: 9}, DepDown},
		{"backoff", supervisor.Status{State: supervisor.StateBackoff, Exits: exit}, DepDown},
		{"unhealthy", supervisor.Status{State: supervisor.StateUnhealthy, PID: 9, Ready: true}, DepDown},
		{"stopping", supervisor.Status{State: supervisor.StateStopping, PID: 9, Ready: true}, DepDown},
		{"failed", supervisor.Status{State: supervisor.StateFailed, Exits: exit}, DepFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DepState(tc.st); got != tc.want {
				t.Errorf("DepState = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadinessOf(t *testing.T) {
	withStorage := func(st supervisor.Status) []supervisor.Status {
		out := allRunning()
		st.Name = "storage"
		out[0] = st
		return out
	}
	base := map[string]string{"config": "loaded", "network": "ok", "storage": "ok", "index": "ok",
		"mailbox": "ok", "overlay": "ok", "dht": "ok", "gateway": "ok"}
	with := func(kv ...string) map[string]string {
		m := maps.Clone(base)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name    string
		cfg     func(*config.Config)
		snap    []supervisor.Status
		nilSvc  bool
		network bool
		ready   bool
		deps    map[string]string
	}{
		{name: "all ok", snap: allRunning(), network: true, ready: true, deps: base},
		{name: "network down", snap: allRunning(), network: false, ready: false, deps: with("network", "down")},
		{name: "storage killed: backoff", snap: withStorage(supervisor.Status{State: supervisor.StateBackoff, Restarts: 1}),
			network: true, ready: false, deps: with("storage", "down")},
		{name: "storage failed", snap: withStorage(supervisor.Status{State: supervisor.StateFailed}),
			network: true, ready: false, deps: with("storage", "failed")},
		{name: "storage starting", snap: withStorage(supervisor.Status{State: supervisor.StateStarting, PID: 3}),
			network: true, ready: false, deps: with("storage", "pending")},
		{name: "storage missing from snapshot", snap: allRunning()[1:], network: true, ready: false,
			deps: with("storage", "pending")},
		{name: "no supervisor", nilSvc: true, network: true, ready: false,
			deps: with("storage", "pending", "index", "pending", "mailbox", "pending", "overlay", "pending", "dht", "pending", "gateway", "pending")},
		{name: "non-critical down does not gate",
			cfg:  func(c *config.Config) { c.Services["storage"].Critical = false },
			snap: withStorage(supervisor.Status{State: supervisor.StateFailed}), network: true, ready: true,
			deps: with("storage", "failed")},
		{name: "disabled plane not listed",
			cfg:  func(c *config.Config) { c.Services["dht"].Enabled = false },
			snap: allRunning(), network: true, ready: true, deps: with("dht", "")},
		{name: "parent alone",
			cfg: func(c *config.Config) {
				for _, s := range c.Services {
					s.Enabled = false
				}
			},
			nilSvc: true, network: true, ready: true, deps: map[string]string{"config": "loaded", "network": "ok"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			snap := tc.snap
			if tc.nilSvc {
				snap = nil
			}
			got := readinessOf(cfg, snap, tc.network)
			if got.Ready != tc.ready || got.Mode != ModeTruthful || !maps.Equal(got.Deps, tc.deps) {
				t.Errorf("readiness = %+v, want ready=%v deps=%v", got, tc.ready, tc.deps)
			}
		})
	}
}

func TestReadyzEndpoint(t *testing.T) {
	tests := []struct {
		name     string
		snap     []supervisor.Status
		env      []string
		draining bool
		code     int
		mode     string
		ready    bool
		storage  string
	}{
		{name: "ready", snap: allRunning(), code: 200, mode: ModeTruthful, ready: true, storage: "ok"},
		{name: "storage down", snap: append([]supervisor.Status{{Name: "storage", State: supervisor.StateBackoff, Restarts: 1}}, allRunning()[1:]...),
			code: 503, mode: ModeTruthful, storage: "down"},
		{name: "dev-forced keeps deps truthful", env: []string{EnvDevReady, "1"},
			snap: append([]supervisor.Status{{Name: "storage", State: supervisor.StateFailed}}, allRunning()[1:]...),
			code: 200, mode: ModeDevForced, ready: true, storage: "failed"},
		{name: "draining", snap: allRunning(), draining: true, code: 503, mode: ModeTruthful, storage: "ok"},
		{name: "dev-ready other value is truthful", env: []string{EnvDevReady, "true"},
			snap: append([]supervisor.Status{{Name: "storage", State: supervisor.StateFailed}}, allRunning()[1:]...),
			code: 503, mode: ModeTruthful, storage: "failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := &fakeServices{}
			svc.set(tc.snap...)
			n := start(t, Options{Services: svc, Getenv: env(tc.env...)})
			if tc.draining {
				n.SetDraining()
			}
			r := n.get(t, "/readyz")
			if r.code != tc.code {
				t.Fatalf("code = %d, want %d: %s", r.code, tc.code, r.body)
			}
			if got := r.header.Get("Retry-After"); (tc.code == 503) != (got == "5") {
				t.Errorf("Retry-After = %q with code %d", got, r.code)
			}
			var body ReadyResponse
			r.json(t, &body)
			if body.Mode != tc.mode || body.Ready != tc.ready || body.Deps["storage"] != tc.storage || body.Deps["config"] != "loaded" {
				t.Errorf("body = %+v", body)
			}
			wantNet := "ok"
			if tc.draining {
				wantNet = "down"
			}
			if body.Deps["network"] != wantNet {
				t.Errorf("network = %q, want %q", body.Deps["network"], wantNet)
			}
			if n.Ready() != (tc.ready && tc.mode == ModeTruthful) {
				t.Errorf("Ready() = %v", n.Ready())
			}
		})
	}
}

// Before Serve the listener is not bound: not ready, network down.
func TestReadyzBeforeServe(t *testing.T) {
	svc := &fakeServices{}
	svc.set(allRunning()...)
	cfg := testConfig()
	s, err := New(Options{Config: func() *config.Config { return cfg }, Services: svc, Getenv: env()})
	if err != nil {
		t.Fatal(err)
	}
	if s.Ready() {
		t.Fatal("ready before Serve")
	}
	rr := httptest.NewRecorder()
	s.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/readyz", nil))
	if rr.Code != http.StatusServiceUnavailable {
		t.Fatalf("code = %d", rr.Code)
	}
}

// A kill -9 turns readiness 503 naming the plane, and the restart turns it back.
func TestReadyzFollowsSupervisor(t *testing.T) {
	svc := &fakeServices{}
	svc.set(allRunning()...)
	n := start(t, Options{Services: svc})
	if r := n.get(t, "/readyz"); r.code != 200 {
		t.Fatalf("code = %d: %s", r.code, r.body)
	}
	killed := allRunning()
	killed[0] = supervisor.Status{Name: "storage", State: supervisor.StateBackoff, Restarts: 1, LastExit: "signal: killed"}
	svc.set(killed...)
	r := n.get(t, "/readyz")
	var body ReadyResponse
	r.json(t, &body)
	if r.code != 503 || body.Deps["storage"] != DepDown {
		t.Fatalf("after kill: code %d body %s", r.code, r.body)
	}
	svc.set(allRunning()...)
	if r := n.get(t, "/readyz"); r.code != 200 {
		t.Fatalf("after restart: code %d", r.code)
	}
}
