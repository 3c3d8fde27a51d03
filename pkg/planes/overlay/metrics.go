package overlay

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the overlay's own series (SPEC §8, issue 10: peers, sessions,
// frames and bytes, rejected frames, gossip records).
type metrics struct {
	sessions       prometheus.Gauge
	sessionsTotal  *prometheus.CounterVec // side=server|client, result=accepted|rejected|failed
	frames         *prometheus.CounterVec // direction=in|out
	bytes          *prometheus.CounterVec // direction=in|out
	rejectedFrames *prometheus.CounterVec // reason
	gossip         *prometheus.CounterVec // result=accepted|rejected, reason
	fetches        *prometheus.CounterVec // kind=blob|stat, result
}

func newMetrics(reg prometheus.Registerer, peers func(connected bool) float64) (*metrics, error) {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "macronode", Subsystem: "overlay", Name: name, Help: help}
	}
	m := &metrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "macronode", Subsystem: "overlay", Name: "sessions",
			Help: "OAP/1 sessions open now (handshake done), both directions.",
		}),
		sessionsTotal: prometheus.NewCounterVec(opts("sessions_total",
			"OAP/1 handshakes by side (server, client) and result (accepted, rejected, failed)."), []string{"side", "result"}),
		frames: prometheus.NewCounterVec(opts("frames_total",
			"OAP/1 frames by direction (in, out)."), []string{"direction"}),
		bytes: prometheus.NewCounterVec(opts("bytes_total",
			"OAP/1 bytes, headers included, by direction (in, out)."), []string{"direction"}),
		rejectedFrames: prometheus.NewCounterVec(opts("rejected_frames_total",
			"OAP/1 frames refused (the stream was closed) by reason: oversized, unknown_type, bad_flags, truncated, malformed, unexpected."),
			[]string{"reason"}),
		gossip: prometheus.NewCounterVec(opts("gossip_records_total",
			"Node records received by gossip, by result (accepted, rejected) and reason (new, refresh, bad_signature, wrong_signer, too_large, malformed, invalid, old_seq)."),
			[]string{"result", "reason"}),
		fetches: prometheus.NewCounterVec(opts("fetches_total",
			"Fetches this node made from peers through its HTTP API, by kind (blob, stat) and result (ok, not_found, failed, aborted)."),
			[]string{"kind", "result"}),
	}
	peerGauge := func(state string, connected bool) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "macronode", Subsystem: "overlay", Name: "peers",
			Help:        "Peers in the overlay's peer table, by state (known: all, connected: with a connection now).",
			ConstLabels: prometheus.Labels{"state": state},
		}, func() float64 { return peers(connected) })
	}
	var errs []error
	for _, c := range []prometheus.Collector{
		m.sessions, m.sessionsTotal, m.frames, m.bytes, m.rejectedFrames, m.gossip, m.fetches,
		peerGauge("known", false), peerGauge("connected", true),
	} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) frameIn(n int) {
	m.frames.WithLabelValues("in").Inc()
	m.bytes.WithLabelValues("in").Add(float64(n))
}

func (m *metrics) frameOut(n int) {
	m.frames.WithLabelValues("out").Inc()
	m.bytes.WithLabelValues("out").Add(float64(n))
}
