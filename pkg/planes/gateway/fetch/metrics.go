package fetch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	fetches   *prometheus.CounterVec
	duration  prometheus.Histogram
	bytes     prometheus.Counter
	lies      prometheus.Counter
	announces *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "macronode_gateway_remote_fetches_total",
			Help: "Blobs missing locally that the gateway tried to fetch from peers, by result (ok, no_provider, no_delivery, lookup_error).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "macronode_gateway_remote_fetch_duration_seconds",
			Help:    "Time from the provider lookup to the blob verified and kept in local storage, for successful remote fetches.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "macronode_gateway_remote_fetch_bytes_total",
			Help: "Bytes fetched from peers and kept in local storage.",
		}),
		lies: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "macronode_gateway_provider_mismatches_total",
			Help: "Fetches whose bytes did not hash to the requested address (refused by storage; that provider was skipped).",
		}),
		announces: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "macronode_gateway_announces_total",
			Help: "Addresses announced to the DHT after a store or a fetch, by result (ok, error, dropped: queue full).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.fetches, m.duration, m.bytes, m.lies, m.announces} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register fetch metrics: %w", err)
		}
	}
	for _, r := range []string{"ok", "no_provider", "no_delivery", "lookup_error"} {
		m.fetches.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "error", "dropped"} {
		m.announces.WithLabelValues(r)
	}
	return m, nil
}
