package index

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	puts, gets, deletes, conflicts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, count func() int) (*metrics, error) {
	m := &metrics{
		puts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "macronode_index_puts_total", Help: "PUT /names requests that bound a name (created or updated).",
		}),
		gets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "macronode_index_gets_total", Help: "GET /names/{name} lookups, found or not.",
		}),
		deletes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "macronode_index_deletes_total", Help: "DELETE /names/{name} requests that removed a name.",
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "macronode_index_cas_conflicts_total", Help: "Conditional writes refused with 412 (If-Match / If-None-Match).",
		}),
	}
	names := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "macronode_index_names", Help: "Names currently bound.",
	}, func() float64 { return float64(count()) })
	for _, c := range []prometheus.Collector{m.puts, m.gets, m.deletes, m.conflicts, names} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register index metrics: %w", err)
		}
	}
	return m, nil
}
