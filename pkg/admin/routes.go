package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/macronode/macronode/pkg/buildinfo"
	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/supervisor"
)

// Limits of GET /api/v1/services/{name}/logs?lines=N.
const (
	DefaultLogLines = 100
	MaxLogLines     = 1000
)

func (s *Server) routes() {
	m := &routeMux{Mux: httpx.NewMux()}
	m.HandleFunc("GET /version", s.handleVersion)
	m.HandleFunc("GET /healthz", s.handleHealth)
	m.HandleFunc("GET /readyz", s.handleReady)
	m.Handle("GET /metrics", s.metricsAuth(s.metrics.handler))
	m.Handle("GET /api/v1/status", s.requireTokenIfSet(http.HandlerFunc(s.handleStatus)))
	m.Handle("GET /api/v1/peers", s.requireTokenIfSet(http.HandlerFunc(s.handlePeers)))
	m.Handle("POST /api/v1/shutdown", s.audited(s.requireAuth(http.HandlerFunc(s.handleShutdown))))
	m.Handle("POST /api/v1/reload", s.audited(s.requireAuth(http.HandlerFunc(s.handleReload))))
	for _, a := range []string{"restart", "stop", "start"} {
		m.Handle("POST /api/v1/services/{name}/"+a, s.audited(s.requireAuth(s.handleAction(a))))
	}
	m.Handle("POST /api/v1/services/{name}/fault", s.audited(s.requireAuth(http.HandlerFunc(s.handleFault))))
	m.Handle("GET /api/v1/services/{name}/logs", s.requireTokenIfSet(http.HandlerFunc(s.handleLogs)))
	m.Handle("GET "+EventsPath, s.requireTokenIfSet(http.HandlerFunc(s.handleEvents)))
	m.Handle("GET /api/v1/audit", s.requireAuth(http.HandlerFunc(s.handleAudit)))
	m.HandleFunc("GET /{$}", s.handlePage)
	m.Handle("GET /ui/", uiHandler())
	m.Handle("POST "+LoginPath, s.audited(http.HandlerFunc(s.handleLogin)))
	m.HandleFunc("POST "+LogoutPath, s.handleLogout)
	s.mux, s.patterns = m.Mux, m.patterns
}

func (s *Server) handleVersion(w http.ResponseWriter, _ *http.Request) {
	httpx.JSON(w, http.StatusOK, buildinfo.Get("macronode"))
}

// saneEpoch is a floor for the wall clock: a host clock before it is broken
// (an unset RTC boots at 1970).
var saneEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// handleHealth is liveness: the parent's own machinery works. Checks:
//   - event_loop: the Go scheduler runs a fresh goroutine within a second;
//   - clock: the wall clock is past a sane floor and not behind the node's start;
//   - supervisor: a Services that can Probe (the supervisor sends a probe
//     through every service goroutine's queue) answers without error,
//     within its own timeout; otherwise Snapshot answers within two
//     seconds. "ok" when no supervisor runs.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{
		"event_loop": s.checkScheduler(r.Context()),
		"clock":      s.checkClock(time.Now()),
		"supervisor": s.checkSupervisor(r.Context()),
	}
	ok := true
	for _, v := range checks {
		if v != "ok" {
			ok = false
		}
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	httpx.JSON(w, code, HealthResponse{OK: ok, Checks: checks})
}

func (s *Server) checkScheduler(ctx context.Context) string {
	done := make(chan struct{}, 1)
	go func() { done <- struct{}{} }()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-done:
		return "ok"
	case <-t.C:
		return "stalled"
	case <-ctx.Done():
		return "stalled"
	}
}

func (s *Server) checkClock(now time.Time) string {
	if now.Before(saneEpoch) {
		return "wall clock before " + saneEpoch.Format("2006-01-02")
	}
	// Round(0) strips the monotonic reading: compare wall clocks.
	if now.Round(0).Before(s.started.Round(0).Add(-time.Minute)) {
		return "wall clock went back before node start"
	}
	return "ok"
}

// supervisorProbeTimeout is how long Snapshot may take before the
// supervisor counts as unresponsive.
const supervisorProbeTimeout = 2 * time.Second

// prober is implemented by a Services with a liveness probe of its own
// (supervisor.Supervisor.Probe), bounded by its own timeout.
type prober interface {
	Probe(ctx context.Context) error
}

// supervisorProbe is one outstanding probe (or Snapshot call) that
// concurrent /healthz requests share: a flood of probes starts one
// goroutine, not one each, and none of them reads another's probe as a
// failure.
type supervisorProbe struct {
	done     chan struct{}
	deadline time.Time // zero: the Services' Probe bounds itself
	err      error     // set before done is closed
}

func (s *Server) checkSupervisor(ctx context.Context) string {
	if s.opts.Services == nil {
		return "ok"
	}
	s.healthMu.Lock()
	p := s.healthProbe
	if p == nil {
		p = &supervisorProbe{done: make(chan struct{})}
		pr, canProbe := s.opts.Services.(prober)
		if !canProbe {
			p.deadline = time.Now().Add(supervisorProbeTimeout)
		}
		s.healthProbe = p
		go func() {
			if canProbe {
				p.err = pr.Probe(context.Background())
			} else {
				_ = s.opts.Services.Snapshot()
			}
			s.healthMu.Lock()
			s.healthProbe = nil
			s.healthMu.Unlock()
			close(p.done)
		}()
	}
	s.healthMu.Unlock()
	// A probe still outstanding past its deadline answers at once.
	var expired <-chan time.Time
	if !p.deadline.IsZero() {
		t := time.NewTimer(time.Until(p.deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-p.done:
		if p.err != nil {
			return "unresponsive"
		}
		return "ok"
	case <-expired:
		return "unresponsive"
	case <-ctx.Done():
		return "unresponsive"
	}
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	r := s.readiness()
	code := http.StatusOK
	if s.devReady {
		r.Mode = ModeDevForced
		r.Ready = true
	}
	if !r.Ready {
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "5")
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, code, r)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	resp, _ := s.statusView(r.Context())
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, resp)
}

// statusView is the body of GET /api/v1/status (also rendered by the status
// page) and the service names in display order.
func (s *Server) statusView(ctx context.Context) (StatusResponse, []string) {
	cfg := s.config()
	snap := s.snapshot()
	order, svcs := servicesView(cfg, snap)
	resp := StatusResponse{
		UptimeSeconds: time.Since(s.started).Seconds(),
		Profile:       "macronode",
		Ready:         readinessOf(cfg, snap, s.network()).Ready,
		Services:      make(map[string]ServiceStatus, len(svcs)),
		Node:          s.nodeStatus(ctx, svcs),
	}
	for name, st := range svcs {
		resp.Services[name] = serviceStatusOf(st)
	}
	if cfg != nil {
		resp.HTTPAddr, resp.MetricsAddr, resp.LogLevel = cfg.HTTPAddr, cfg.MetricsAddr, cfg.LogLevel
	}
	return resp, order
}

func (s *Server) handleShutdown(w http.ResponseWriter, r *http.Request) {
	if s.opts.Shutdown == nil {
		httpx.Error(w, http.StatusServiceUnavailable, "", "shutdown is not available on this node")
		return
	}
	s.log.Info("shutdown requested over the admin API", "remote", r.RemoteAddr, "request_id", httpx.RequestIDFrom(r.Context()))
	s.SetDraining()
	httpx.JSON(w, http.StatusAccepted, ActionResponse{Status: "shutdown scheduled"})
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	// Outside the handler: the drain ends by shutting this server down,
	// which waits for this very handler to return.
	s.shutdownOnce.Do(func() { go s.opts.Shutdown() })
}

func (s *Server) handleAction(action string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if s.opts.Services == nil {
			httpx.Error(w, http.StatusServiceUnavailable, "", "no supervisor is running on this node")
			return
		}
		var err error
		switch action {
		case "restart":
			err = s.opts.Services.Restart(name)
		case "stop":
			err = s.opts.Services.Stop(name)
		case "start":
			err = s.opts.Services.Start(name)
		}
		if err != nil {
			writeServiceError(w, action, name, err)
			return
		}
		s.log.Info("service action requested over the admin API", "action", action, "service", name,
			"remote", r.RemoteAddr, "request_id", httpx.RequestIDFrom(r.Context()))
		httpx.JSON(w, http.StatusAccepted, ActionResponse{Status: action + " scheduled", Service: name})
	})
}

func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	n := DefaultLogLines
	if q := r.URL.Query().Get("lines"); q != "" {
		v, err := strconv.Atoi(q)
		if err != nil || v < 1 {
			httpx.Errorf(w, http.StatusBadRequest, "", "lines must be an integer between 1 and %d, got %q", MaxLogLines, q)
			return
		}
		n = min(v, MaxLogLines)
	}
	if s.opts.Services == nil {
		httpx.Error(w, http.StatusServiceUnavailable, "", "no supervisor is running on this node")
		return
	}
	if isLogFollow(r) {
		s.handleLogsFollow(w, r, name, n)
		return
	}
	lines, err := s.opts.Services.Logs(name, n)
	if err != nil {
		writeServiceError(w, "logs", name, err)
		return
	}
	httpx.JSON(w, http.StatusOK, LogsResponse{Service: name, Lines: logLinesOf(lines)})
}

// writeServiceError maps a supervisor error: unknown service is 404, a
// supervisor shutting down 503, any other refusal 409.
func writeServiceError(w http.ResponseWriter, action, name string, err error) {
	switch {
	case errors.Is(err, supervisor.ErrUnknownService):
		httpx.Errorf(w, http.StatusNotFound, "unknown_service", "unknown service %q", name)
		return
	case errors.Is(err, supervisor.ErrShuttingDown):
		httpx.Error(w, http.StatusServiceUnavailable, "", fmt.Sprintf("%s %s: %v", action, name, err))
		return
	}
	httpx.Error(w, http.StatusConflict, "", fmt.Sprintf("%s %s: %v", action, name, err))
}
