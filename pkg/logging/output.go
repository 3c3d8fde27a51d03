package logging

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Output is the parent's log destination, shared by its own hclog logger
// (Logger) and the lines of its children (Child). Child lines are queued, a
// batch per pipe read, to one writer goroutine that writes everything
// queued so far in one write (JSON output is formatted by the goroutine
// that read the lines, text output rendered by the writer); a
// full queue drops the batch (counted by the child's onDrop), so a reader
// never waits for the output. The parent's own records are written at once,
// in order with the batches. What is queued is bounded in batches and in
// bytes.
//
// Under journald (JOURNAL_STREAM naming the output, see JournalStream) every
// line starts with its syslog priority, "<3>" error ... "<7>" debug.
type Output struct {
	w       io.Writer
	json    bool
	journal bool

	mu     sync.Mutex // one write to w at a time
	queue  chan *batch
	queued atomic.Int64 // bytes of the batches queued or being written
	closed sync.RWMutex // Child.Write holds it shared: Close waits out queueing ones
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
	pool   sync.Pool // *batch
}

const (
	// outputQueueLen bounds the batches (pipe reads) waiting for the writer,
	outputQueueLen = 64
	// and outputQueueBytes their bytes: a pipe read of short lines grows
	// several times when each is wrapped in JSON.
	outputQueueBytes = 4 << 20
	// writeChunk is about the most the writer gathers into one write.
	writeChunk = 256 << 10
)

// batch is the lines of one pipe read of one child: formatted already
// (JSON output), or raw, each ending in '\n', for the writer to render
// (text output, whose rendering parses each line: too slow for the pipe
// reader, which must never make the child wait).
type batch struct {
	buf    []byte
	lines  int
	child  *Child
	raw    bool
	t      time.Time
	stream string
	crash  []bool // raw: each line's Crash
}

// NewOutput returns an Output writing to w in format ("json", "text", or
// "auto"/"": text on a terminal, JSON otherwise) and starts its writer;
// Close stops it. journalStream is the JOURNAL_STREAM environment value
// ("" when unset): when it names w, lines carry syslog priority prefixes.
func NewOutput(w io.Writer, format, journalStream string) (*Output, error) {
	jsonFormat, err := isJSONFormat(format, w)
	if err != nil {
		return nil, err
	}
	o := &Output{
		w:       w,
		json:    jsonFormat,
		journal: JournalStream(journalStream, w),
		queue:   make(chan *batch, outputQueueLen),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go o.run()
	return o, nil
}

func isJSONFormat(format string, w io.Writer) (bool, error) {
	switch strings.ToLower(format) {
	case "json":
		return true, nil
	case "text":
		return false, nil
	case "auto", "":
		return !IsTerminal(w), nil
	default:
		return false, fmt.Errorf("unknown log format %q (want auto, json or text)", format)
	}
}

// JSON reports whether the output is in JSON format.
func (o *Output) JSON() bool { return o.json }

// Journal reports whether lines carry journald priority prefixes.
func (o *Output) Journal() bool { return o.journal }

// Logger returns a root hclog logger called name, at level, writing
// through o in o's format.
func (o *Output) Logger(name string, level hclog.Level) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      level,
		Output:     o,
		JSONFormat: o.json,
		Color:      hclog.ColorOff,
	})
}

// Write writes one record of the parent's own at info priority.
func (o *Output) Write(p []byte) (int, error) { return o.LevelWrite(hclog.Info, p) }

// LevelWrite writes one record of the parent's own (hclog.LevelWriter), with
// level's priority prefix under journald. It returns len(p) on success.
func (o *Output) LevelWrite(level hclog.Level, p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var err error
	if o.journal {
		_, err = o.w.Write(journalRecord(level, p))
	} else {
		_, err = o.w.Write(p)
	}
	if err != nil {
		return 0, fmt.Errorf("write log: %w", err)
	}
	return len(p), nil
}

// journalRecord prefixes every line of record p (hclog's text format
// puts a multi-line value on lines of its own) with level's priority.
func journalRecord(level hclog.Level, p []byte) []byte {
	prefix := priority(nil, level)
	out := make([]byte, 0, len(p)+len(prefix))
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n') + 1
		if i == 0 {
			i = len(p)
		}
		out = append(append(out, prefix...), p[:i]...)
		p = p[i:]
	}
	return out
}

// Close writes what is queued and stops the writer. Lines given to a
// Child after Close are dropped.
func (o *Output) Close() error {
	o.once.Do(func() {
		o.closed.Lock()
		close(o.quit)
		o.closed.Unlock()
	})
	<-o.done
	return nil
}

// run is the writer: it gathers the queued batches into writes of about
// writeChunk bytes, until Close.
func (o *Output) run() {
	defer close(o.done)
	var out []byte
	var held []*batch
	for {
		var b *batch
		select {
		case b = <-o.queue:
		case <-o.quit:
			for {
				select {
				case b = <-o.queue:
					out, held = o.gather(out, held, b)
					if len(out) >= writeChunk {
						out, held = o.flush(out, held)
					}
				default:
					o.flush(out, held)
					return
				}
			}
		}
		out, held = o.gather(out, held, b)
	more:
		for len(out) < writeChunk {
			select {
			case b = <-o.queue:
				out, held = o.gather(out, held, b)
			default:
				break more
			}
		}
		out, held = o.flush(out, held)
	}
}

func (o *Output) gather(out []byte, held []*batch, b *batch) ([]byte, []*batch) {
	if !b.raw {
		return append(out, b.buf...), append(held, b)
	}
	rest := b.buf
	for i := 0; len(rest) > 0; i++ {
		j := bytes.IndexByte(rest, '\n')
		out = b.child.format(out, b.t, b.stream, Line{Text: rest[:j], Crash: b.crash[i]})
		rest = rest[j+1:]
	}
	return out, append(held, b)
}

// flush writes out in one write; on an error its lines count as dropped.
func (o *Output) flush(out []byte, held []*batch) ([]byte, []*batch) {
	if len(out) > 0 {
		o.mu.Lock()
		_, err := o.w.Write(out)
		o.mu.Unlock()
		for _, b := range held {
			if err != nil && b.child.onDrop != nil {
				b.child.onDrop(b.lines)
			}
			o.queued.Add(-int64(len(b.buf)))
			o.release(b)
		}
	}
	if cap(out) > 4*writeChunk {
		out = nil // a burst of long lines grew it: let it go
	}
	return out[:0], held[:0]
}

func (o *Output) getBatch() *batch {
	if b, ok := o.pool.Get().(*batch); ok {
		return b
	}
	return &batch{}
}

func (o *Output) release(b *batch) {
	if cap(b.buf) > writeChunk {
		return
	}
	*b = batch{buf: b.buf[:0], crash: b.crash[:0]}
	o.pool.Put(b)
}

// Child returns the writer of one service's lines. onDrop, if not nil, is
// told how many of its lines were not written.
func (o *Output) Child(service string, onDrop func(n int)) *Child {
	return &Child{
		o:          o,
		service:    service,
		jsonPrefix: []byte(`{"@service":` + string(appendJSONString(nil, []byte(service)))),
		textPrefix: []byte(service + " | "),
		onDrop:     onDrop,
	}
}

// A Line is one line a child wrote, without its newline.
type Line struct {
	Text []byte
	// Crash marks a line of a crash block: with no level of its own it is
	// passed on at error level.
	Crash bool
}

// Child passes one service's lines on to its Output.
type Child struct {
	o          *Output
	service    string
	jsonPrefix []byte // {"@service":"name"
	textPrefix []byte // name |
	onDrop     func(n int)
}

// Write formats lines, read from stream at t, and queues them as one batch.
// It never blocks: when the writer is behind by outputQueueLen batches or
// outputQueueBytes, or closed, the lines are dropped and counted.
func (c *Child) Write(t time.Time, stream string, lines []Line) {
	if len(lines) == 0 {
		return
	}
	c.o.closed.RLock()
	defer c.o.closed.RUnlock()
	select {
	case <-c.o.quit:
		c.drop(len(lines))
		return
	default:
	}
	b := c.o.getBatch()
	if c.o.json {
		for _, l := range lines {
			b.buf = c.format(b.buf, t, stream, l)
		}
	} else {
		b.raw, b.t, b.stream = true, t, stream
		for _, l := range lines {
			b.buf = append(append(b.buf, l.Text...), '\n')
			b.crash = append(b.crash, l.Crash)
		}
	}
	b.lines, b.child = len(lines), c
	size := int64(len(b.buf))
	if c.o.queued.Add(size) <= outputQueueBytes {
		select {
		case c.o.queue <- b:
			return
		default:
		}
	}
	c.o.queued.Add(-size)
	c.o.release(b)
	c.drop(len(lines))
}

func (c *Child) drop(n int) {
	if c.onDrop != nil {
		c.onDrop(n)
	}
}
