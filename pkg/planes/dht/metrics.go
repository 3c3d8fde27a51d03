package dht

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/prometheus/client_golang/prometheus"
)

// storedCountTTL is how long the count of stored provider records is
// reused: counting walks the datastore's keys.
const storedCountTTL = 15 * time.Second

type metrics struct {
	provides       *prometheus.CounterVec
	provideSeconds *prometheus.HistogramVec
	lookups        *prometheus.CounterVec
	lookupSeconds  prometheus.Histogram
	recordsPut     prometheus.Counter
	recordsRefused prometheus.Counter
	walkedKeys     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	m := &metrics{
		provides: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "macronode_dht_provides_total",
			Help: "Announces handled by POST /dht/providers, by mode (queued to the reprovider, or sync) and result.",
		}, []string{"mode", "result"}),
		provideSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "macronode_dht_provide_duration_seconds",
			Help:    "Time to handle an announce: queueing it (mode=queued) or providing it to the closest peers (mode=sync).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"mode"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "macronode_dht_lookups_total",
			Help: "Provider lookups by result (found, none, canceled).",
		}, []string{"result"}),
		lookupSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "macronode_dht_lookup_duration_seconds",
			Help:    "Time to find the providers of an address.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
		recordsPut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "macronode_dht_node_records_put_total",
			Help: "Times this node's signed record was stored in the DHT and reached peers.",
		}),
		recordsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "macronode_dht_node_records_refused_total",
			Help: "Node records found in the DHT that failed verification.",
		}),
		walkedKeys: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "macronode_dht_walked_addresses_total",
			Help: "Addresses read from storage's listing and handed to the reprovider after a start.",
		}),
	}
	cs := []prometheus.Collector{m.provides, m.provideSeconds, m.lookups, m.lookupSeconds, m.recordsPut, m.recordsRefused, m.walkedKeys,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "macronode_dht_routing_table_peers",
			Help: "Peers in the DHT routing table.",
		}, func() float64 { return float64(s.kad.RoutingTable().Size()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "macronode_dht_provider_records_stored",
			Help: "Provider records this node stores for the network (counted every 15s at most).",
		}, func() float64 { return float64(s.providersStored(context.Background())) }),
		&reproviderCollector{s: s},
	}
	if reg != nil {
		for _, c := range cs {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register dht metrics: %w", err)
			}
		}
	}
	return m, nil
}

// reproviderCollector exports the SweepingProvider's own counters.
type reproviderCollector struct{ s *Server }

var (
	descKeys        = prometheus.NewDesc("macronode_dht_reprovider_keys", "Keys on the reprovide schedule.", nil, nil)
	descPending     = prometheus.NewDesc("macronode_dht_reprovider_pending_keys", "Keys waiting in the provide queue.", nil, nil)
	descProvided    = prometheus.NewDesc("macronode_dht_reprovider_keys_provided_total", "Keys the reprovider provided since start.", nil, nil)
	descFailed      = prometheus.NewDesc("macronode_dht_reprovider_keys_failed_total", "Keys the reprovider failed to provide since start.", nil, nil)
	descOnline      = prometheus.NewDesc("macronode_dht_reprovider_online", "1 when the reprovider considers the node online.", nil, nil)
	reproviderDescs = []*prometheus.Desc{descKeys, descPending, descProvided, descFailed, descOnline}
)

func (c *reproviderCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range reproviderDescs {
		ch <- d
	}
}

func (c *reproviderCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.s.prov.Stats(context.Background())
	if err != nil {
		return
	}
	online := 0.0
	if st.Connectivity.Status == "online" {
		online = 1
	}
	ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(st.Schedule.Keys))
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(st.Queues.PendingKeyProvides))
	ch <- prometheus.MustNewConstMetric(descProvided, prometheus.CounterValue, float64(st.Operations.Past.KeysProvided))
	ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(st.Operations.Past.KeysFailed))
	ch <- prometheus.MustNewConstMetric(descOnline, prometheus.GaugeValue, online)
}

// storedCounter caches the count of provider records in the datastore.
type storedCounter struct {
	mu    sync.Mutex
	n     int
	at    time.Time
	valid bool
}

// providersStored counts the provider records kad-dht has flushed to the
// datastore (records it buffers in memory show after the next flush). The
// count is reused for storedCountTTL; the lock is not held while counting.
func (s *Server) providersStored(ctx context.Context) int {
	c := &s.stored
	c.mu.Lock()
	n, fresh := c.n, c.valid && time.Since(c.at) < storedCountTTL
	c.mu.Unlock()
	if fresh {
		return n
	}
	counted, err := countKeys(ctx, s.kadStore, records.ProvidersKeyPrefix)
	if err != nil {
		return n
	}
	c.mu.Lock()
	c.n, c.at, c.valid = counted, time.Now(), true
	c.mu.Unlock()
	return counted
}

func countKeys(ctx context.Context, d datastore.Read, prefix string) (int, error) {
	res, err := d.Query(ctx, query.Query{Prefix: prefix, KeysOnly: true})
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", prefix, err)
	}
	defer func() { _ = res.Close() }()
	n := 0
	for r := range res.Next() {
		if r.Error != nil {
			return 0, fmt.Errorf("count %s: %w", prefix, r.Error)
		}
		n++
	}
	return n, nil
}
