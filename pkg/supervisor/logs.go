package supervisor

import (
	"bytes"
	"io"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/macronode/macronode/pkg/logging"
)

const (
	// maxLineBytes is the longest line kept; longer lines are cut and marked.
	maxLineBytes = 16 << 10
	// truncatedMark ends a line that was cut at maxLineBytes.
	truncatedMark = "…[truncated]"
	// readBufBytes is the pipe reader's buffer: a whole pipe's worth (64
	// KiB on Linux) a read, with maxLineBytes of it left for a partial line.
	readBufBytes = 64<<10 + maxLineBytes
	// exitLastLines is how many lines an Exit record keeps.
	exitLastLines = 20
)

// logSink is one service's log destination: ring buffer, counters, and the
// parent's output (nil: the ring only).
type logSink struct {
	ring    *ring
	out     *logging.Child
	stdout  prometheus.Counter
	stderr  prometheus.Counter
	dropped prometheus.Counter
}

// newLogSink builds the sink of service name, with its metrics, writing
// to out if not nil.
func newLogSink(name string, lines int, out *logging.Output, m *metrics) *logSink {
	s := &logSink{
		ring:    newRing(lines),
		stdout:  m.lines.WithLabelValues(name, "stdout"),
		stderr:  m.lines.WithLabelValues(name, "stderr"),
		dropped: m.dropped.WithLabelValues(name),
	}
	if out != nil {
		s.out = out.Child(name, func(n int) { s.dropped.Add(float64(n)) })
	}
	return s
}

// put records the lines of one read of stream at t: the crash detector
// (if not nil) marks and keeps a crash block first, then the ring stores
// them and the output queues them. It never blocks: lines the output cannot
// take are dropped from it (not from the ring) and counted.
func (s *logSink) put(t time.Time, stream string, lines []logging.Line, crash *crashDetector) {
	if crash != nil {
		crash.feedLines(lines)
	}
	s.ring.addBatch(t, stream, lines)
	if stream == "stderr" {
		s.stderr.Add(float64(len(lines)))
	} else {
		s.stdout.Add(float64(len(lines)))
	}
	if s.out != nil {
		s.out.Write(t, stream, lines)
	}
}

// readLines reads r until EOF or a read error, never stopping for a slow
// consumer: the complete lines of each read go to sink.put together, with
// crash (if not nil), which keeps a crash block apart from the ring. Lines
// longer than maxLineBytes are cut (at a rune boundary) and marked; the rest
// of such a line is discarded. A final line without a newline counts.
func readLines(r io.Reader, stream string, sink *logSink, crash *crashDetector) {
	buf := make([]byte, readBufBytes)
	var lines []logging.Line
	end := 0         // buf[:end] holds unread bytes: part of a line
	discard := false // in the rest of a line that was cut
	for {
		n, err := r.Read(buf[end:])
		end += n
		lines = lines[:0]
		p := 0
		for {
			i := bytes.IndexByte(buf[p:end], '\n')
			if i < 0 {
				break
			}
			if !discard {
				lines = append(lines, cutLine(buf[p:p+i]))
			}
			discard = false
			p += i + 1
		}
		switch {
		case discard:
			p = end
		case end-p > maxLineBytes:
			lines = append(lines, cutLine(buf[p:end]))
			discard, p = true, end
		case err != nil && end > p:
			lines = append(lines, cutLine(buf[p:end]))
			p = end
		}
		if len(lines) > 0 {
			sink.put(time.Now(), stream, lines, crash)
		}
		end = copy(buf, buf[p:end])
		if err != nil {
			return
		}
	}
}

// cutLine drops a trailing '\r' and cuts a line longer than maxLineBytes
// (into a copy, marked).
func cutLine(b []byte) logging.Line {
	b = bytes.TrimSuffix(b, []byte{'\r'})
	if len(b) <= maxLineBytes {
		return logging.Line{Text: b}
	}
	cut := trimToRune(b[:maxLineBytes])
	return logging.Line{Text: append(append(make([]byte, 0, len(cut)+len(truncatedMark)), cut...), truncatedMark...)}
}

// trimToRune drops a partial UTF-8 sequence at the end of b.
func trimToRune(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		r, size := utf8.DecodeLastRune(b)
		if r != utf8.RuneError || size != 1 {
			return b
		}
		b = b[:len(b)-1]
	}
	return b
}

// metrics is the supervisor's Prometheus collector: child output and
// refused control connections.
type metrics struct {
	lines   *prometheus.CounterVec
	dropped *prometheus.CounterVec
	refused *prometheus.CounterVec
	exits   *prometheus.CounterVec // exitcause.go
}

func newMetrics() *metrics {
	return &metrics{
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "macronode_child_log_lines_total",
			Help: "Lines read from each child's stdout and stderr.",
		}, []string{"service", "stream"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "macronode_child_log_dropped_total",
			Help: "Child lines not written to the parent's output because it fell behind (they stay in the ring buffer).",
		}, []string{"service"}),
		refused: newRefusedCounter(),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "macronode_service_exits_total",
			Help: "Child exits by service and cause (oom, hung, start_timeout, fault, stopped, panic, signal, error, clean).",
		}, []string{"service", "cause"}),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.lines.Describe(ch)
	m.dropped.Describe(ch)
	m.refused.Describe(ch)
	m.exits.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.lines.Collect(ch)
	m.dropped.Collect(ch)
	m.refused.Collect(ch)
	m.exits.Collect(ch)
}
