package mailbox

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// otherBox is the label for boxes beyond metrics_max_boxes. '~' is not a
// valid box-name byte, so it never collides with a real box.
const otherBox = "~other"

// metrics exposes per-box gauges and counters computed from the index at
// scrape time, plus store figures.
type metrics struct {
	s *Server

	depth, inFlight, oldest                       *prometheus.Desc
	sends, receives, acks, redeliveries, dlqMoves *prometheus.Desc
	boxes, dbBytes, liveBytes, tornTails          *prometheus.Desc
	commitSeconds, commitOps                      prometheus.Histogram
	storeErrors, compactions                      prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("macronode_mailbox_"+name, help, labels, nil)
	}
	return &metrics{
		s:            s,
		depth:        d("depth", "Messages in the box that are not leased (ready or delayed).", "box"),
		inFlight:     d("in_flight", "Messages in the box currently leased to a receiver.", "box"),
		oldest:       d("oldest_age_seconds", "Age of the oldest message in the box.", "box"),
		sends:        d("sends_total", "Messages durably sent to the box.", "box"),
		receives:     d("receives_total", "Deliveries (leases) handed out from the box.", "box"),
		acks:         d("acks_total", "Messages acknowledged (deleted) in the box.", "box"),
		redeliveries: d("redeliveries_total", "Deliveries of messages that had been delivered before.", "box"),
		dlqMoves:     d("dlq_moves_total", "Messages moved from the box to its dead-letter box.", "box"),
		boxes:        d("boxes", "Boxes currently known."),
		dbBytes:      d("db_bytes", "Size of the message log's segments on disk (0 in amnesia)."),
		liveBytes:    d("live_bytes", "Bytes of log records that still describe current state (0 in amnesia)."),
		tornTails:    d("torn_tails_total", "Torn or corrupt log tails truncated when the log was opened."),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "macronode_mailbox_commit_seconds",
			Help:    "Time a request waited for its group commit (fsync) to complete.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		commitOps: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "macronode_mailbox_commit_ops",
			Help:    "Requests carried by one group-commit transaction (commit mode loop only).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "macronode_mailbox_store_errors_total",
			Help: "Group commits that failed.",
		}),
		compactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "macronode_mailbox_compactions_total",
			Help: "Log segments deleted by compaction.",
		}),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m, m.commitSeconds, m.commitOps, m.storeErrors, m.compactions} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.depth, m.inFlight, m.oldest, m.sends, m.receives,
		m.acks, m.redeliveries, m.dlqMoves, m.boxes, m.dbBytes, m.liveBytes, m.tornTails} {
		ch <- d
	}
}

type boxSample struct {
	name            string
	depth, inFlight int
	oldest          float64
	c               counters
}

// Collect implements prometheus.Collector. It copies the figures under the
// lock and emits them after releasing it.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	s := m.s
	s.mu.Lock()
	samples := make([]boxSample, 0, min(len(s.ix.boxes), s.ix.metricsMaxBoxes)+1)
	other := boxSample{name: otherBox, c: s.ix.overflow}
	hasOther := other.c != (counters{})
	for _, b := range s.ix.boxes {
		if !b.labelled {
			hasOther = true
			other.depth += b.depth()
			other.inFlight += b.inFlight
			other.oldest = max(other.oldest, oldestAge(b, now))
			continue
		}
		samples = append(samples, boxSample{name: b.name, depth: b.depth(), inFlight: b.inFlight,
			oldest: oldestAge(b, now), c: *b.c})
	}
	nboxes := len(s.ix.boxes)
	s.mu.Unlock()
	if hasOther {
		samples = append(samples, other)
	}
	for _, b := range samples {
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, b.name)
		}
		c := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), b.name)
		}
		g(m.depth, float64(b.depth))
		g(m.inFlight, float64(b.inFlight))
		g(m.oldest, b.oldest)
		c(m.sends, b.c.sends)
		c(m.receives, b.c.receives)
		c(m.acks, b.c.acks)
		c(m.redeliveries, b.c.redeliveries)
		c(m.dlqMoves, b.c.dlqMoves)
	}
	ch <- prometheus.MustNewConstMetric(m.boxes, prometheus.GaugeValue, float64(nboxes))
	var size, live, torn int64
	if s.st != nil {
		size, live, torn = s.st.size(), s.st.liveBytes(), s.st.torn.Load()
	}
	ch <- prometheus.MustNewConstMetric(m.dbBytes, prometheus.GaugeValue, float64(size))
	ch <- prometheus.MustNewConstMetric(m.liveBytes, prometheus.GaugeValue, float64(live))
	ch <- prometheus.MustNewConstMetric(m.tornTails, prometheus.CounterValue, float64(torn))
}
