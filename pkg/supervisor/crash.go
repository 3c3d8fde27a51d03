package supervisor

import (
	"regexp"
	"strings"
	"sync"

	"github.com/macronode/macronode/pkg/logging"
)

// Crash forensics (SPEC §6): a child's dying words are kept apart from the
// log ring. A crashDetector watches one output stream line by line, as the
// lines arrive, and keeps the first crash block it sees in its own bounded
// buffer, so neither a flood after the crash, lines dropped by a slow sink
// nor a dump longer than the ring can push it out.
//
// A block is:
//   - Go: a `panic: ` / `fatal error: ` / `SIG...: ` header at column 0, the
//     lines up to the first `goroutine N [...]:` line, and that goroutine's
//     stack up to the blank line that ends it;
//   - another runtime's obvious crash header (Rust `thread '...' panicked
//     at`, a Python `Traceback (most recent call last):`, a JVM `Exception
//     in thread "..."`, a sanitizer `==pid==ERROR:`), and what follows up to
//     a blank line;
//
// in both cases at most crashBlockLines lines, each at most crashLineBytes.

const (
	// crashBlockLines bounds one crash block.
	crashBlockLines = 100
	// crashLineBytes bounds one line of a crash block.
	crashLineBytes = 1024
	// crashPreambleLines is how far a Go header may be from its first
	// goroutine line; a "header" with no goroutine that soon was not one.
	crashPreambleLines = 50
)

var (
	// goHeader: the Go runtime's fatal headers, always at column 0.
	// SIGQUIT and the other fatal signals print e.g. "SIGQUIT: quit".
	goHeader = regexp.MustCompile(`^(panic: |fatal error: |SIG[A-Z0-9]+: [a-z])`)
	// goroutineLine opens one goroutine's stack: "goroutine 1 [running]:",
	// or since Go 1.23 under GOTRACEBACK=system "goroutine 1 gp=0x... m=0 mp=0x... [running]:".
	goroutineLine = regexp.MustCompile(`^goroutine \d+ .*\[.*\]:$`)
	// otherHeader: other runtimes' unmistakable crash headers.
	otherHeader = regexp.MustCompile(`^(thread '.*' panicked at |Traceback \(most recent call last\):$|Exception in thread "|==\d+==ERROR: [A-Za-z]+Sanitizer)`)
)

type crashPhase int

const (
	phaseIdle     crashPhase = iota
	phasePreamble            // Go header seen, no goroutine line yet
	phaseStack               // in the first goroutine's stack (Go)
	phaseOther               // another runtime's block
	phaseDone                // a block is complete: later lines are ignored
)

// crashDetector finds the first crash block in one stream. It is fed by
// that stream's reader goroutine and read after the child is reaped; the
// mutex makes a read at any time safe.
type crashDetector struct {
	mu       sync.Mutex
	phase    crashPhase
	block    []string
	preamble int // lines since the Go header, in phasePreamble
}

// headerFirstBytes are the first bytes of every crash header above: a
// line starting otherwise (a JSON log line, '{') is no header, with no
// regexp run.
const headerFirstBytes = "pfStTE="

// feedLines looks at the next lines of the stream, under one lock, and
// marks those that belong to a crash block.
func (d *crashDetector) feedLines(lines []logging.Line) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range lines {
		if d.phase == phaseDone {
			return
		}
		lines[i].Crash = d.feed(lines[i].Text)
	}
}

// feed looks at the next line of the stream and reports whether it is part
// of a crash block; d.mu is held.
func (d *crashDetector) feed(line []byte) bool {
	switch d.phase {
	case phaseDone:
		return false
	case phaseIdle:
		return d.start(line)
	case phasePreamble:
		if isHeader(line) {
			// A new header before any goroutine line: the earlier one was
			// not followed by a dump, the latest one starts over. (A
			// "panic: x [recovered]" chain indents its later "panic:" lines.)
			return d.start(line)
		}
		d.preamble++
		if d.preamble > crashPreambleLines {
			d.reset()
			return d.start(line)
		}
		if goroutineLine.Match(line) {
			d.phase = phaseStack
		}
	case phaseStack, phaseOther:
		if len(line) == 0 {
			d.phase = phaseDone
			return false
		}
	}
	d.add(line)
	return true
}

func isHeader(line []byte) bool {
	return len(line) > 0 && strings.IndexByte(headerFirstBytes, line[0]) >= 0 &&
		(goHeader.Match(line) || otherHeader.Match(line))
}

// start opens a block if line is a crash header.
// It reports whether it did.
func (d *crashDetector) start(line []byte) bool {
	if len(line) == 0 || strings.IndexByte(headerFirstBytes, line[0]) < 0 {
		return false
	}
	switch {
	case goHeader.Match(line):
		d.phase, d.preamble = phasePreamble, 0
	case otherHeader.Match(line):
		d.phase = phaseOther
	default:
		return false
	}
	d.block = d.block[:0]
	d.add(line)
	return true
}

func (d *crashDetector) add(line []byte) {
	text := string(line)
	if len(line) > crashLineBytes {
		text = string(trimToRune(line[:crashLineBytes])) + truncatedMark
	}
	d.block = append(d.block, text)
	if len(d.block) >= crashBlockLines {
		d.phase = phaseDone
	}
}

func (d *crashDetector) reset() {
	d.phase, d.block, d.preamble = phaseIdle, d.block[:0], 0
}

// result returns a copy of the crash block, or nil if there is none. A Go
// header still waiting for its goroutine line when the stream ended counts:
// the process died right after it (a dump cut short is still the cause).
func (d *crashDetector) result() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.phase == phaseIdle || len(d.block) == 0 {
		return nil
	}
	return append([]string(nil), d.block...)
}

// crashBlockOf picks the block of a dead child: stderr first (where runtimes
// write their tracebacks), else stdout.
func crashBlockOf(stderr, stdout *crashDetector) []string {
	if b := stderr.result(); b != nil {
		return b
	}
	return stdout.result()
}
