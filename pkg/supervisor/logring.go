package supervisor

import (
	"sync"
	"time"

	"github.com/macronode/macronode/pkg/logging"
)

// ring holds a service's most recent lines as raw bytes: each line is
// copied, with a '\n' after it, into one circular byte arena, and a slot per
// line keeps where it sits, when it was read and from which stream. An add
// allocates nothing once the arena is large enough for the lines it holds;
// lines become strings (LogLine) only when read. Each line gets the next
// sequence number (from 1), so followers can hold a cursor into it
// (logcursor.go).
//
// The ring always holds the newest min(total, len(slots)) lines: when a new
// line does not fit in the free part of the arena and fewer lines than
// slots are held, the arena grows (twice the size, or what is needed)
// rather than give up lines (doubling at most up to room for len(slots)
// longest lines), so its size follows the longest window of len(slots)
// lines seen.
type ring struct {
	mu    sync.Mutex
	slots []slot
	next  int // index of the slot the next line goes to
	count int // lines held
	arena []byte
	head  int           // arena offset the next line goes to
	epoch string        // random per ring: a cursor from another parent run is told apart
	total uint64        // lines ever added: the Seq of the newest line
	wake  chan struct{} // closed by the next add; made only when a follower waits
}

type slot struct {
	off, n int // the line is arena[off : off+n], a '\n' follows it
	at     int64
	stderr bool
}

// ringBytesPerLine sizes a new arena: room for this many bytes per slot.
const ringBytesPerLine = 128

func newRing(n int) *ring {
	return &ring{slots: make([]slot, n), arena: make([]byte, max(n*ringBytesPerLine, 4<<10)), epoch: newEpoch()}
}

// add stores one line (tests and single lines).
func (r *ring) add(l LogLine) {
	r.addBatch(l.Time, l.Stream, []logging.Line{{Text: []byte(l.Text)}})
}

// addBatch stores lines read from stream at t, under one lock, and wakes
// the followers once.
func (r *ring) addBatch(t time.Time, stream string, lines []logging.Line) {
	at, stderr := t.UnixNano(), stream == "stderr"
	r.mu.Lock()
	for _, l := range lines {
		r.put(l.Text, at, stderr)
	}
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
	r.mu.Unlock()
}

func (r *ring) put(text []byte, at int64, stderr bool) {
	if r.count == len(r.slots) {
		r.evict()
	}
	need := len(text) + 1
	off := r.place(need)
	if off < 0 { // fewer lines than slots are held: keep them all
		r.grow(need)
		off = r.place(need)
	}
	copy(r.arena[off:], text)
	r.arena[off+len(text)] = '\n'
	r.head = off + need
	r.slots[r.next] = slot{off: off, n: len(text), at: at, stderr: stderr}
	r.next = (r.next + 1) % len(r.slots)
	r.count++
	r.total++
}

// oldest is the slot index of the oldest line held (count > 0).
func (r *ring) oldest() int {
	return (r.next - r.count + len(r.slots)) % len(r.slots)
}

// evict forgets the oldest line.
func (r *ring) evict() { r.count-- }

// place returns where need bytes fit without overlapping a held line, or
// -1. The held bytes run from the oldest line's offset to head, wrapping
// at the arena's end when head is not past that offset.
func (r *ring) place(need int) int {
	if need > len(r.arena) {
		if r.count == 0 {
			r.arena = make([]byte, need)
			r.head = 0
			return 0
		}
		return -1
	}
	if r.count == 0 {
		r.head = 0
		return 0
	}
	tail := r.slots[r.oldest()].off
	if r.head > tail { // held: [tail, head)
		if r.head+need <= len(r.arena) {
			return r.head
		}
		if need <= tail {
			return 0
		}
		return -1
	}
	if r.head+need <= tail { // held: [tail, end) and [0, head)
		return r.head
	}
	return -1
}

// grow moves the held lines, oldest first, into an arena with room for
// need more bytes.
func (r *ring) grow(need int) {
	used := 0
	for i, s := 0, r.oldest(); i < r.count; i, s = i+1, (s+1)%len(r.slots) {
		used += r.slots[s].n + 1
	}
	limit := len(r.slots) * (maxLineBytes + len(truncatedMark) + 1) // every slot a longest line
	arena := make([]byte, max(min(2*len(r.arena), limit), used+need))
	off := 0
	for i, s := 0, r.oldest(); i < r.count; i, s = i+1, (s+1)%len(r.slots) {
		sl := &r.slots[s]
		copy(arena[off:], r.arena[sl.off:sl.off+sl.n+1])
		sl.off = off
		off += sl.n + 1
	}
	r.arena, r.head = arena, off
}

// lineAt returns the line in slot i as a LogLine of sequence number seq.
func (r *ring) lineAt(i int, seq uint64) LogLine {
	s := r.slots[i]
	stream := "stdout"
	if s.stderr {
		stream = "stderr"
	}
	return LogLine{Seq: seq, Time: time.Unix(0, s.at), Stream: stream, Text: string(r.arena[s.off : s.off+s.n])}
}

// last returns copies of the newest n lines, oldest first (n <= 0: all).
func (r *ring) last(n int) []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= 0 || n > r.count {
		n = r.count
	}
	out := make([]LogLine, 0, n)
	first := (r.next - n + len(r.slots)) % len(r.slots)
	for i := range n {
		out = append(out, r.lineAt((first+i)%len(r.slots), r.total-uint64(n-i)+1))
	}
	return out
}
