package supervisor

import (
	"regexp"
	"sync"
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

// feed looks at the next line of the stream.
func (d *crashDetector) feed(line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.phase {
	case phaseDone:
		return
	case phaseIdle:
		d.start(line)
		return
	case phasePreamble:
		if goHeader.MatchString(line) || otherHeader.MatchString(line) {
			// A new header before any goroutine line: the earlier one was
			// not followed by a dump, the latest one starts over. (A
			// "panic: x [recovered]" chain indents its later "panic:" lines.)
			d.start(line)
			return
		}
		d.preamble++
		if d.preamble > crashPreambleLines {
			d.reset()
			d.start(line)
			return
		}
		if goroutineLine.MatchString(line) {
			d.phase = phaseStack
		}
	case phaseStack, phaseOther:
		if line == "" {
			d.phase = phaseDone
			return
		}
	}
	d.add(line)
}

// start opens a block if line is a crash header.
func (d *crashDetector) start(line string) {
	switch {
	case goHeader.MatchString(line):
		d.phase, d.preamble = phasePreamble, 0
	case otherHeader.MatchString(line):
		d.phase = phaseOther
	default:
		return
	}
	d.block = d.block[:0]
	d.add(line)
}

func (d *crashDetector) add(line string) {
	if len(line) > crashLineBytes {
		line = string(trimToRune([]byte(line[:crashLineBytes]))) + truncatedMark
	}
	d.block = append(d.block, line)
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
