package svcrt

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/macronode/macronode/pkg/buildinfo"
	"github.com/macronode/macronode/pkg/httpx"
)

// HTTP server timeouts. ReadHeaderTimeout guards against slow-header clients;
// the body timeouts are generous because planes stream large objects. A plane
// handler that needs longer extends its own deadlines with
// http.ResponseController (the runtime's response wrapper supports Unwrap).
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 5 * time.Minute
	WriteTimeout      = 5 * time.Minute
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 1 << 20
)

// RetryAfterSeconds is the Retry-After a not-ready /readyz answers with.
const RetryAfterSeconds = 5

// newRegistry returns the runtime's metrics registry with the Go and process
// collectors and macronode_build_info.
func newRegistry(name string) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	info := buildinfo.Get("svc-" + name)
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "macronode_build_info",
		Help: "Build information of this binary; the value is always 1.",
		ConstLabels: prometheus.Labels{
			"service":  info.Service,
			"version":  info.Version,
			"git_sha":  info.GitSHA,
			"build_ts": info.BuildTS,
			"go":       info.Go,
		},
	})
	build.Set(1)
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// metricName turns a plane name into a safe metric name fragment.
func metricName(name string) string {
	var b strings.Builder
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// httpMetrics counts requests per route pattern (never per raw path, so the
// label set stays bounded).
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(name string, reg prometheus.Registerer) (*httpMetrics, error) {
	prefix := "macronode_" + metricName(name) + "_http_"
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    prefix + "request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	if err := reg.Register(m.requests); err != nil {
		return nil, err
	}
	if err := reg.Register(m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// wrap records each request (httpx.Instrument). It must sit directly around
// a ServeMux so that the mux (and a plane mux below it, given the same
// *http.Request) fills in r.Pattern, which becomes the route label.
func (m *httpMetrics) wrap(next http.Handler) http.Handler {
	return httpx.Instrument(next, m.requests, m.duration, func(r *http.Request) string {
		return routeLabel(r.Pattern)
	})
}

// routeLabel strips the method from a ServeMux pattern ("GET /o/{addr}" ->
// "/o/{addr}").
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		return strings.TrimLeft(pattern[i+1:], " \t")
	}
	return pattern
}

// surface is the runtime's HTTP surface around one plane.
type surface struct {
	service  string // "svc-<name>"
	svc      Service
	draining *atomic.Bool
}

// newOps returns the handler of /metrics and /version; anything else is a
// 404 JSON error.
func newOps(name string, reg *prometheus.Registry, log hclog.Logger) http.Handler {
	s := &surface{service: "svc-" + name}
	mux := httpx.NewMux()
	mux.Handle("/version", getOnly(http.HandlerFunc(s.version)))
	mux.Handle("/metrics", getOnly(promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{log},
		ErrorHandling: promhttp.ContinueOnError,
	})))
	return mux
}

// newHandler builds Recover(RequestID(metrics(mux))) where the mux serves
// /healthz, /readyz, ops (/metrics and /version; nil: not on this listener)
// and hands everything else to the plane. Every request is counted in
// active, so the runtime can wait for handlers before it closes the plane's
// stores.
func newHandler(name string, svc Service, reg *prometheus.Registry, ops http.Handler, draining *atomic.Bool, active *inflight, log hclog.Logger) (http.Handler, error) {
	m, err := newHTTPMetrics(name, reg)
	if err != nil {
		return nil, err
	}
	s := &surface{service: "svc-" + name, svc: svc, draining: draining}
	mux := httpx.NewMux()
	mux.Handle("/healthz", getOnly(http.HandlerFunc(s.healthz)))
	mux.Handle("/readyz", getOnly(http.HandlerFunc(s.readyz)))
	if ops != nil {
		mux.Handle("/version", ops)
		mux.Handle("/metrics", ops)
	}
	mux.Handle("/", svc.Handler())

	onPanic := func(r *http.Request, v any) {
		log.Error("panic serving request", "method", r.Method, "path", r.URL.Path,
			"request_id", httpx.RequestIDFrom(r.Context()), "error", v, "stack", string(debug.Stack()))
	}
	return active.wrap(httpx.Recover(onPanic, httpx.RequestID(m.wrap(mux)))), nil
}

// inflight counts running handlers. http.Server.Close does not wait for
// handlers, so after a forced close the runtime waits here (bounded) before
// closing the plane's stores under them.
type inflight struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0
}

func (f *inflight) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		if f.n == 0 {
			f.zero = make(chan struct{})
		}
		f.n++
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.n--
			if f.n == 0 {
				close(f.zero)
			}
			f.mu.Unlock()
		}()
		next.ServeHTTP(w, r)
	})
}

// wait blocks until no handler runs or ctx ends; it returns how many still run.
func (f *inflight) wait(ctx context.Context) int {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return 0
	}
	zero := f.zero
	f.mu.Unlock()
	select {
	case <-zero:
		return 0
	case <-ctx.Done():
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.n
	}
}

// getOnly answers 405 JSON (with Allow) for anything but GET and HEAD, so the
// runtime's paths never fall through to the plane.
func getOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpx.Errorf(w, http.StatusMethodNotAllowed, "", "method %s not allowed on %s", r.Method, r.URL.Path)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *surface) healthz(w http.ResponseWriter, _ *http.Request) {
	httpx.JSON(w, http.StatusOK, map[string]any{"ok": true, "service": s.service})
}

// readyzBody is both a readiness answer and, when not ready, a SPEC §9 error
// body ({"error","code"}).
type readyzBody struct {
	Ready    bool   `json:"ready"`
	Service  string `json:"service"`
	Draining bool   `json:"draining,omitempty"`
	Error    string `json:"error,omitempty"`
	Code     string `json:"code,omitempty"`
}

func (s *surface) readyz(w http.ResponseWriter, _ *http.Request) {
	body := readyzBody{Ready: true, Service: s.service}
	if s.draining.Load() {
		body = readyzBody{Service: s.service, Draining: true, Error: "draining: shutting down", Code: "draining"}
	} else if err := s.svc.Ready(); err != nil {
		body = readyzBody{Service: s.service, Error: err.Error(), Code: "not_ready"}
	}
	if !body.Ready {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		w.Header().Set("Cache-Control", "no-store")
		httpx.JSON(w, http.StatusServiceUnavailable, body)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, body)
}

func (s *surface) version(w http.ResponseWriter, _ *http.Request) {
	httpx.JSON(w, http.StatusOK, buildinfo.Get(s.service))
}

// promLogger adapts hclog to promhttp.Logger.
type promLogger struct{ log hclog.Logger }

func (p promLogger) Println(v ...any) {
	p.log.Warn("metrics exposition error", "error", strings.TrimSpace(fmt.Sprintln(v...)))
}
