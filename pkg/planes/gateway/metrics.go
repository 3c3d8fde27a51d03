package gateway

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/macronode/macronode/pkg/routes"
)

type metrics struct {
	backendErrors  *prometheus.CounterVec
	backendRetries *prometheus.CounterVec
	rateLimited    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		backendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "macronode_gateway_backend_errors_total",
			Help: "Proxied requests that failed at the backend: down (503) or timed out (504).",
		}, []string{"backend"}),
		backendRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "macronode_gateway_backend_retries_total",
			Help: "Requests sent to their backend a second time after the first connection failed before any response byte.",
		}, []string{"backend"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "macronode_gateway_rate_limited_total",
			Help: "Requests refused with 429 by the per-client-IP rate limit.",
		}),
	}
	for _, b := range routes.Names() {
		m.backendErrors.WithLabelValues(b)
		m.backendRetries.WithLabelValues(b)
	}
	for _, c := range []prometheus.Collector{m.backendErrors, m.backendRetries, m.rateLimited} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register gateway metrics: %w", err)
		}
	}
	return m, nil
}
