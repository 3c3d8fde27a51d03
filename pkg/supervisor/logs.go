package supervisor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	// maxLineBytes is the longest line kept; longer lines are cut and marked.
	maxLineBytes = 16 << 10
	// truncatedMark ends a line that was cut at maxLineBytes.
	truncatedMark = "…[truncated]"
	// logQueueLen bounds the lines waiting for a (possibly slow) logger sink.
	logQueueLen = 1024
	// exitLastLines is how many lines an Exit record keeps.
	exitLastLines = 20
)

// ring is a fixed-size buffer of the most recent lines; insert is O(1) under
// a short mutex. Each line gets the next sequence number (from 1), so
// followers can hold a cursor into it (logcursor.go).
type ring struct {
	mu    sync.Mutex
	lines []LogLine
	next  int // index of the slot the next line goes to
	full  bool
	epoch string        // random per ring: a cursor from another parent run is told apart
	total uint64        // lines ever added: the Seq of the newest line
	wake  chan struct{} // closed by the next add; made only when a follower waits
}

func newRing(n int) *ring { return &ring{lines: make([]LogLine, n), epoch: newEpoch()} }

func (r *ring) add(l LogLine) {
	r.mu.Lock()
	r.total++
	l.Seq = r.total
	r.lines[r.next] = l
	r.next++
	if r.next == len(r.lines) {
		r.next = 0
		r.full = true
	}
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
	r.mu.Unlock()
}

// last returns copies of the newest n lines, oldest first (n <= 0: all).
func (r *ring) last(n int) []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	size := r.next
	if r.full {
		size = len(r.lines)
	}
	if n <= 0 || n > size {
		n = size
	}
	out := make([]LogLine, 0, n)
	start := r.next - n
	if start < 0 {
		start += len(r.lines)
	}
	for i := 0; i < n; i++ {
		out = append(out, r.lines[(start+i)%len(r.lines)])
	}
	return out
}

// logSink is one service's log destination: ring buffer, counters, and a
// bounded queue drained by one goroutine into the service's sub-logger.
type logSink struct {
	ring    *ring
	queue   chan LogLine
	log     hclog.Logger
	stdout  prometheus.Counter
	stderr  prometheus.Counter
	dropped prometheus.Counter
}

// put records one line. It never blocks: when the logger queue is full the
// line is dropped from the logger (not from the ring) and counted.
func (s *logSink) put(l LogLine) {
	s.ring.add(l)
	if l.Stream == "stderr" {
		s.stderr.Inc()
	} else {
		s.stdout.Inc()
	}
	select {
	case s.queue <- l:
	default:
		s.dropped.Inc()
	}
}

// pump re-logs queued lines until the queue is closed.
func (s *logSink) pump() {
	for l := range s.queue {
		relog(s.log, l)
	}
}

// relog writes one child line to the sub-logger. hclog JSON lines ("@level",
// "@message", ...) and similar structured lines keep their level, message and
// fields; anything else is logged at info with its stream.
func relog(log hclog.Logger, l LogLine) {
	if lvl, msg, fields, ok := parseJSONLine(l.Text); ok {
		log.Log(lvl, msg, fields...)
		return
	}
	log.Info(l.Text, "stream", l.Stream)
}

// metaKeys are structured-log keys that are not re-emitted as fields.
var metaKeys = map[string]bool{
	"@level": true, "level": true, "@message": true, "msg": true,
	"@timestamp": true, "time": true, "ts": true, "@module": true, "@caller": true,
}

func parseJSONLine(text string) (hclog.Level, string, []any, bool) {
	if len(text) < 2 || text[0] != '{' {
		return 0, "", nil, false
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return 0, "", nil, false
	}
	lvlS, ok1 := firstString(m, "@level", "level")
	msg, ok2 := firstString(m, "@message", "msg")
	if !ok1 || !ok2 {
		return 0, "", nil, false
	}
	lvl := hclog.LevelFromString(lvlS)
	if lvl == hclog.NoLevel {
		lvl = hclog.Info
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if !metaKeys[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	fields := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		fields = append(fields, k, m[k])
	}
	return lvl, msg, fields, true
}

func firstString(m map[string]any, keys ...string) (string, bool) {
	for _, k := range keys {
		if s, ok := m[k].(string); ok {
			return s, true
		}
	}
	return "", false
}

// readLines reads r line by line until EOF or a read error, never stopping
// for a slow consumer: each line goes to crash (if not nil), which keeps a
// crash block apart from the ring, then to sink.put, which does not block.
// Lines longer than maxLineBytes are cut (at a rune boundary) and marked; the
// rest of such a line is discarded.
func readLines(r io.Reader, stream string, sink *logSink, crash *crashDetector) {
	br := bufio.NewReaderSize(r, maxLineBytes)
	emit := func(b []byte, cut bool) {
		b = bytes.TrimSuffix(b, []byte{'\n'})
		b = bytes.TrimSuffix(b, []byte{'\r'})
		text := string(b)
		if cut {
			text = string(trimToRune(b)) + truncatedMark
		}
		if crash != nil {
			crash.feed(text)
		}
		sink.put(LogLine{Time: time.Now(), Stream: stream, Text: text})
	}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			emit(line, true)
			if !discardLine(br) {
				return
			}
			continue
		}
		if len(line) > 0 {
			emit(line, false)
		}
		if err != nil {
			return
		}
	}
}

// discardLine skips the remainder of an over-long line; false at EOF/error.
func discardLine(br *bufio.Reader) bool {
	for {
		_, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			return false
		default:
			return true
		}
	}
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
			Help: "Child lines not re-logged because the parent's log sink fell behind (they stay in the ring buffer).",
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
