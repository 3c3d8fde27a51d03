package gateway

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	backendErrors *prometheus.CounterVec
	rateLimited   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "macronode_gateway_requests_total",
			Help: "Requests answered by the gateway, by route (ping, storage, index, mailbox, dht, other) and status code (499: client went away).",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "macronode_gateway_request_duration_seconds",
			Help:    "Time from request to the end of the response, by route (whole streams for /o).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		backendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "macronode_gateway_backend_errors_total",
			Help: "Proxied requests that failed at the backend: down (503) or timed out (504).",
		}, []string{"backend"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "macronode_gateway_rate_limited_total",
			Help: "Requests refused with 429 by the per-client-IP rate limit.",
		}),
	}
	for _, b := range []string{"storage", "index", "mailbox", "dht"} {
		m.backendErrors.WithLabelValues(b)
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.backendErrors, m.rateLimited} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register gateway metrics: %w", err)
		}
	}
	return m, nil
}
