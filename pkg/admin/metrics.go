package admin

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/macronode/macronode/pkg/buildinfo"
	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/supervisor"
)

// routeUnmatched labels requests no route matched (404, 405).
const routeUnmatched = "unmatched"

// metrics holds the parent's registry and the admin plane's own instruments.
type metrics struct {
	reg     *prometheus.Registry // the parent's own families
	handler http.Handler

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	reloads  *prometheus.CounterVec
}

func newMetrics(s *Server, extra []prometheus.Collector) (*metrics, error) {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "macronode_http_requests_total",
			Help: "Admin plane HTTP requests by matched route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "macronode_http_request_duration_seconds",
			Help:    "Admin plane HTTP request latency by matched route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "macronode_config_reloads_total",
			Help: "Configuration reloads (admin API or SIGHUP, through Server.Reload), by result.",
		}, []string{"result"}),
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	info := buildinfo.Get("macronode")
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "macronode_build_info",
		Help: "Build information of the macronode parent; the value is always 1.",
	}, []string{"version", "git_sha", "go"})
	build.WithLabelValues(info.Version, info.GitSHA, info.Go).Set(1)

	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.reloads, build,
		&serviceCollector{s: s},
	}
	for i, c := range append(cs, extra...) {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("admin: register metrics collector %d: %w", i, err)
		}
	}
	// The children's families, relabelled, are merged with the parent's:
	// Gatherers checks them for consistency, and with ContinueOnError a bad
	// child family is logged and left out rather than failing the scrape.
	gatherers := prometheus.Gatherers{m.reg, prometheus.GathererFunc(s.children.gather)}
	m.handler = promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{
		ErrorLog:      s.log.Named("metrics").StandardLogger(nil),
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       10 * time.Second,
	})
	return m, nil
}

// instrument counts and times every request (httpx.Instrument) under the
// route pattern mux resolves for it, or "unmatched". The route is resolved
// from the request itself rather than r.Pattern, because next is the whole
// middleware chain: requests refused by rate limit or auth never reach the
// mux, yet still count under their route.
func (m *metrics) instrument(mux *httpx.Mux, next http.Handler) http.Handler {
	return httpx.Instrument(next, m.requests, m.duration, func(r *http.Request) string {
		if _, p := mux.Handler(r); p != "" {
			return p
		}
		return routeUnmatched
	})
}

var (
	descUp = prometheus.NewDesc("macronode_service_up",
		"Whether the service has a live process (1) or not (0).", []string{"service"}, nil)
	descReady = prometheus.NewDesc("macronode_service_ready",
		"Whether the service is running and ready (1) or not (0).", []string{"service"}, nil)
	descRestarts = prometheus.NewDesc("macronode_service_restarts_total",
		"Restarts of the service since the parent started.", []string{"service"}, nil)
	descUptime = prometheus.NewDesc("macronode_service_uptime_seconds",
		"Seconds since the service's current process started; 0 when none runs.", []string{"service"}, nil)
	descState = prometheus.NewDesc("macronode_service_state",
		"The service's supervisor state: 1 for the current state, 0 for the others.", []string{"service", "state"}, nil)
	descNodeReady = prometheus.NewDesc("macronode_ready",
		"Whether the node is ready (1) or not (0), by the truthful /readyz rule.", nil, nil)
)

// serviceCollector derives the per-service families from a supervisor
// snapshot taken at scrape time.
type serviceCollector struct{ s *Server }

func (c *serviceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descReady, descRestarts, descUptime, descState, descNodeReady} {
		ch <- d
	}
}

func (c *serviceCollector) Collect(ch chan<- prometheus.Metric) {
	cfg := c.s.config()
	snap := c.s.snapshot()
	order, svcs := servicesView(cfg, snap)
	for _, name := range order {
		st := svcs[name]
		emit(ch, descUp, prometheus.GaugeValue, b2f(processAlive(st)), name)
		emit(ch, descReady, prometheus.GaugeValue, b2f(st.IsReady()), name)
		emit(ch, descRestarts, prometheus.CounterValue, float64(st.Restarts), name)
		emit(ch, descUptime, prometheus.GaugeValue, st.UptimeSeconds, name)
		for _, state := range supervisor.States {
			emit(ch, descState, prometheus.GaugeValue, b2f(st.State == state), name, string(state))
		}
	}
	emit(ch, descNodeReady, prometheus.GaugeValue, b2f(readinessOf(cfg, snap, c.s.network()).Ready))
}

// processAlive reports whether a service has a live process.
func processAlive(st supervisor.Status) bool {
	switch st.State {
	case supervisor.StateStopped, supervisor.StateBackoff, supervisor.StateFailed:
		return false
	}
	return st.PID > 0
}

// emit sends a const metric, dropping one whose label values are invalid
// (not UTF-8) rather than panicking in a scrape.
func emit(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, lv ...string) {
	if m, err := prometheus.NewConstMetric(d, t, v, lv...); err == nil {
		ch <- m
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
