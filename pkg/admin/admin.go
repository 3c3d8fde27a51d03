// Package admin is the parent's admin HTTP plane (SPEC §5): version, health,
// truthful readiness aggregated from the supervisor, Prometheus metrics (the
// parent's own plus every running child's, relabelled with `service`), node
// status (with the node id and its cluster view from the overlay and dht
// children), the overlay's peer table, and the operator actions (shutdown,
// reload, restart/stop/start of one service, a service's recent log lines),
// and the status page at / (page.go) with its browser sign-in (login.go).
//
// The package knows the supervisor only through the small Services interface
// and the configuration only through a func returning the config in force, so
// the daemon wires it and tests drive it with fakes.
//
// Every route runs behind, outermost first: panic recovery, X-Request-Id,
// per-route metrics, rate limiting, a per-request timeout, a body cap and,
// on the admin listener, the browser guards (cross-origin protection on
// state-changing requests and, on a loopback bind, a Host check against DNS
// rebinding; see browserGuard).
// Rate limiting is per client IP, plus a global bucket for the API routes;
// the probe routes (GET /healthz, /readyz, /metrics, /version) skip the
// global bucket and have per-IP buckets of their own, so a flood of the API
// never makes probes or scrapes fail.
//
// Server.Reload is the one way to reload (the HTTP route and the daemon's
// SIGHUP handler both call it), so macronode_config_reloads_total counts
// every reload. ServeMetrics serves /metrics on the separate metrics_addr
// listener; Shutdown closes both listeners.
//
// POST routes additionally need `Authorization: Bearer <admin_token>` when a
// token is configured; with no token they are allowed only when the admin
// plane is bound to loopback (or MACRONODE_DEV_INSECURE=1). A missing or
// wrong token is answered 401 with `WWW-Authenticate: Bearer` (RFC 6750),
// never 403, so a client cannot tell "no token" from "wrong token" apart by
// status.
package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/macronode/macronode/pkg/audit"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/events"
	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/supervisor"
)

// Environment switches read once by New.
const (
	// EnvDevReady forces /readyz to 200 ("mode":"dev-forced") when "1".
	EnvDevReady = "MACRONODE_DEV_READY"
	// EnvDevInsecure allows unauthenticated POSTs on a non-loopback bind when "1".
	EnvDevInsecure = config.EnvDevInsecure
)

// Defaults for Options fields left zero.
const (
	DefaultReadHeaderTimeout  = 5 * time.Second
	DefaultChildScrapeTimeout = time.Second
	DefaultMaxBodyBytes       = 1 << 20
)

// Services is the small interface the supervisor implements.
type Services interface {
	// Snapshot returns every supervised service, in start order, Name set.
	Snapshot() []supervisor.Status
	// Restart restarts a service (and clears a failed state);
	// supervisor.ErrUnknownService for unknown names.
	Restart(name string) error
	// Stop stops a service and keeps it stopped until Start or Restart.
	Stop(name string) error
	// Start starts a stopped service.
	Start(name string) error
	// Logs returns the last n lines the service wrote.
	Logs(name string, n int) ([]supervisor.LogLine, error)
}

// Options wires a Server. Config is required; everything else is optional.
type Options struct {
	// Config returns the configuration currently in force (it changes after a reload).
	Config func() *config.Config
	// Services is nil when no supervisor runs; every enabled plane is then "pending".
	Services Services
	// Reload re-reads the configuration. A *config.ValidationError (errors.As)
	// is answered 422 listing the field errors; any other error 500.
	Reload func(ctx context.Context) (ReloadResult, error)
	// Shutdown schedules the ordered drain. It is called at most once.
	Shutdown func()
	// Logger defaults to a null logger.
	Logger hclog.Logger
	// Collectors are extra collectors registered on /metrics (the supervisor's log-line counters).
	Collectors []prometheus.Collector
	// Started is when the node started, for uptime; zero means New's time.
	Started time.Time

	// RateLimit is the global request rate of the API routes (token bucket,
	// per second): 0 means DefaultRateLimit, negative means unlimited. The
	// probe routes (GET /healthz, /readyz, /metrics, /version) are exempt.
	RateLimit float64
	// RateBurst is the bucket size: 0 means DefaultRateBurst.
	RateBurst int
	// PerIPRateLimit limits each client IP on the API routes (requests per
	// second): 0 means DefaultPerIPRateLimit, negative disables it.
	PerIPRateLimit float64
	// PerIPRateBurst is the per-IP bucket size: 0 means twice PerIPRateLimit.
	PerIPRateBurst int
	// ProbeRateLimit limits each client IP on the probe routes (requests per
	// second, burst twice that), in buckets of their own so an API flood
	// cannot starve them: 0 means DefaultProbeRateLimit, negative disables it.
	ProbeRateLimit float64
	// ChildScrapeTimeout bounds each child /metrics scrape: 0 means 1s.
	ChildScrapeTimeout time.Duration
	// Getenv reads the environment switches; nil means os.Getenv.
	Getenv func(key string) string

	// NodeID is the node id (the libp2p peer id of the node key) shown in
	// /api/v1/status; empty means the overlay's own answer is shown.
	NodeID string
	// PlaneTimeout bounds each request to the overlay and dht children
	// (GET /api/v1/status, /api/v1/peers): 0 means DefaultPlaneTimeout.
	PlaneTimeout time.Duration

	// Events is the node's event bus, streamed by GET /api/v1/events; the
	// server publishes reload and shutdown events on it. Nil: no stream.
	Events *events.Bus
	// EventsHeartbeat is the SSE comment interval: 0 means DefaultEventsHeartbeat.
	EventsHeartbeat time.Duration
	// Audit records every admin POST, reload and fault; nil: none.
	Audit *audit.Log
}

// Server is the admin HTTP plane.
type Server struct {
	opts     Options
	log      hclog.Logger
	started  time.Time
	devReady bool
	insecure bool // MACRONODE_DEV_INSECURE=1
	loopback atomic.Bool
	bindAddr atomic.Value // string: the admin listener's address, set by Serve

	crossOrigin *http.CrossOriginProtection
	sessions    *sessionKeys // signs the status page's session cookies

	bound    atomic.Bool
	draining atomic.Bool

	mux      *httpx.Mux
	patterns []string // every pattern registered on mux (routeMux)
	handler  http.Handler
	mhandler http.Handler
	srv      *http.Server // the admin plane
	msrv     *http.Server // the separate metrics listener (ServeMetrics)
	tls      *tls.Config
	metrics  *metrics
	children *childScraper
	planes   *planeAPI
	limits   limiters

	shutdownOnce sync.Once
	heartbeat    time.Duration // SSE comment interval
	sseStop      chan struct{} // closed by Shutdown: open event streams end
	sseOnce      sync.Once
	healthMu     sync.Mutex
	healthProbe  *supervisorProbe // the outstanding supervisor liveness probe, if any
}

// New validates opts and builds the server. It reads MACRONODE_DEV_READY and
// MACRONODE_DEV_INSECURE once.
func New(opts Options) (*Server, error) {
	if opts.Config == nil {
		return nil, errors.New("admin: options: Config is required")
	}
	cfg := opts.Config()
	if cfg == nil {
		return nil, errors.New("admin: options: Config returned nil")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	if opts.ChildScrapeTimeout <= 0 {
		opts.ChildScrapeTimeout = DefaultChildScrapeTimeout
	}
	if opts.PlaneTimeout <= 0 {
		opts.PlaneTimeout = DefaultPlaneTimeout
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		started:  opts.Started,
		devReady: opts.Getenv(EnvDevReady) == "1",
		insecure: opts.Getenv(EnvDevInsecure) == "1",

		crossOrigin: newCrossOrigin(),
		sessions:    newSessionKeys(),
		heartbeat:   opts.EventsHeartbeat,
		sseStop:     make(chan struct{}),
	}
	if s.heartbeat <= 0 {
		s.heartbeat = DefaultEventsHeartbeat
	}
	s.loopback.Store(IsLoopbackAddr(cfg.HTTPAddr))

	s.limits = newLimiters(opts)

	tlsCfg, err := adminTLS(cfg)
	if err != nil {
		return nil, err
	}
	s.tls = tlsCfg

	s.children = newChildScraper(s.snapshot, opts.ChildScrapeTimeout, s.log.Named("scrape"))
	s.planes = newPlaneAPI(opts.PlaneTimeout)
	m, err := newMetrics(s, opts.Collectors)
	if err != nil {
		return nil, err
	}
	s.metrics = m

	s.routes()
	s.handler = s.wrap(s.mux)
	mmux := httpx.NewMux()
	mmux.Handle("GET /metrics", s.metricsAuth(m.handler))
	s.mhandler = s.wrapWith(mmux, mmux)

	s.srv = s.httpServer(cfg, s.handler, "http")
	s.msrv = s.httpServer(cfg, s.mhandler, "metrics_http")

	switch {
	case cfg.AdminToken != "":
	case s.loopback.Load():
		s.log.Warn("admin_token is not set: POST routes are open to any local user of this host", "http_addr", cfg.HTTPAddr)
	case s.insecure:
		s.log.Error("INSECURE: admin_token is not set, the admin plane is not bound to loopback and "+
			EnvDevInsecure+"=1: anyone who can reach it may stop, restart or reload this node", "http_addr", cfg.HTTPAddr)
	default:
		s.log.Warn("admin_token is not set and the admin plane is not bound to loopback: POST routes are refused (401); set admin_token",
			"http_addr", cfg.HTTPAddr)
	}
	if s.devReady {
		s.log.Warn(EnvDevReady + "=1: /readyz always answers 200 (mode dev-forced)")
	}
	return s, nil
}

// Handler returns the admin plane with all its middleware.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler serves only GET /metrics (with the same middleware and the
// same metrics_public rule). ServeMetrics serves it on a listener of its own.
func (s *Server) MetricsHandler() http.Handler { return s.mhandler }

// httpServer builds an http.Server with the admin plane's timeouts and limits.
func (s *Server) httpServer(cfg *config.Config, h http.Handler, logName string) *http.Server {
	readHeader := DefaultReadHeaderTimeout
	if rt := cfg.ReadTimeout.D(); rt > 0 && rt < readHeader {
		readHeader = rt
	}
	return &http.Server{
		Handler:           h,
		ReadTimeout:       cfg.ReadTimeout.D(),
		ReadHeaderTimeout: readHeader,
		WriteTimeout:      cfg.WriteTimeout.D(),
		IdleTimeout:       cfg.IdleTimeout.D(),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          s.log.Named(logName).StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
}

// Serve serves the admin plane on ln (TLS when admin_tls is configured) and
// marks the listener bound for readiness. It logs the one "admin plane
// listening" line (bound address, TLS, client certificates, POST auth
// mode). It returns http.ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		// The real bind decides, whatever the configured address said.
		s.loopback.Store(false)
	}
	s.bindAddr.Store(ln.Addr().String())
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.bound.Store(true)
	s.log.Info("admin plane listening", "addr", ln.Addr().String(), "tls", s.tls != nil,
		"client_cert", s.clientCertRequired(), "auth", s.authMode())
	return serveOn(s.srv, ln, "serve")
}

// ServeMetrics serves GET /metrics alone on ln (the metrics_addr listener),
// with the admin plane's timeouts and TLS settings. Shutdown closes it too.
// It returns http.ErrServerClosed after Shutdown.
func (s *Server) ServeMetrics(ln net.Listener) error {
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.log.Info("metrics listening", "addr", ln.Addr().String(), "tls", s.tls != nil, "client_cert", s.clientCertRequired())
	return serveOn(s.msrv, ln, "serve metrics")
}

func serveOn(srv *http.Server, ln net.Listener, what string) error {
	err := srv.Serve(ln)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin: %s %s: %w", what, ln.Addr(), err)
	}
	return err
}

func (s *Server) clientCertRequired() bool {
	return s.tls != nil && s.tls.ClientAuth == tls.RequireAndVerifyClientCert
}

// authMode names how POST routes are guarded right now: "token", or with no
// admin_token "open-loopback", "open-insecure" or "refused".
func (s *Server) authMode() string {
	switch cfg := s.config(); {
	case cfg != nil && cfg.AdminToken != "":
		return "token"
	case s.loopback.Load():
		return "open-loopback"
	case s.insecure:
		return "open-insecure"
	default:
		return "refused"
	}
}

// SetDraining turns readiness 503 from now on: shutdown has started.
func (s *Server) SetDraining() {
	if !s.draining.Swap(true) {
		s.log.Info("admin plane draining: readiness is now 503")
		if s.opts.Events != nil {
			s.opts.Events.Publish(events.Shutdown, "", nil)
		}
	}
}

// Shutdown marks the plane draining and closes the admin and metrics
// listeners gracefully, waiting for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetDraining()
	s.sseOnce.Do(func() { close(s.sseStop) }) // streams never end by themselves
	var errs []error
	if err := s.srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("admin: shutdown: %w", err))
	}
	if err := s.msrv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("admin: shutdown metrics listener: %w", err))
	}
	s.children.close()
	s.planes.close()
	return errors.Join(errs...)
}

// Ready reports the truthful readiness of the node (the /readyz rule without
// the dev-forced override), e.g. for sd_notify READY=1.
func (s *Server) Ready() bool {
	r := s.readiness()
	return r.Ready
}

func (s *Server) config() *config.Config { return s.opts.Config() }

// snapshot returns the supervisor's view, or nil without a supervisor.
func (s *Server) snapshot() []supervisor.Status {
	if s.opts.Services == nil {
		return nil
	}
	return s.opts.Services.Snapshot()
}

// wrap applies the browser guards and the middleware chain to the admin
// plane's mux, which also resolves route labels.
func (s *Server) wrap(mux *httpx.Mux) http.Handler { return s.wrapWith(s.browserGuard(mux), mux) }

func (s *Server) wrapWith(h http.Handler, mux *httpx.Mux) http.Handler {
	h = s.bodyCap(h)
	h = s.timeout(h)
	h = s.rateLimit(h)
	h = s.metrics.instrument(mux, h)
	h = httpx.RequestID(h)
	return httpx.Recover(func(r *http.Request, v any) {
		s.log.Error("panic in admin handler", "method", r.Method, "path", r.URL.Path,
			"request_id", httpx.RequestIDFrom(r.Context()), "error", fmt.Sprint(v), "stack", string(debug.Stack()))
	}, h)
}

func (s *Server) bodyCap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := int64(DefaultMaxBodyBytes)
		if cfg := s.config(); cfg != nil && cfg.MaxBodyBytes > 0 {
			limit = int64(cfg.MaxBodyBytes)
		}
		httpx.MaxBody(limit, next).ServeHTTP(w, r)
	})
}

func (s *Server) timeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var d time.Duration
		if cfg := s.config(); cfg != nil && r.URL.Path != EventsPath && !isLogFollow(r) { // a stream outlives any request timeout
			d = cfg.WriteTimeout.D()
		}
		httpx.Timeout(d, next).ServeHTTP(w, r)
	})
}
