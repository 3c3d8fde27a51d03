package supervisor

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// ringOf returns a ring of size lines holding lines "1".."added" (Seq = text).
func ringOf(size, added int) *ring {
	r := newRing(size)
	for i := 1; i <= added; i++ {
		r.add(LogLine{Text: fmt.Sprint(i)})
	}
	return r
}

func seqsOf(lines []LogLine) string {
	var s []string
	for _, l := range lines {
		if l.Text != fmt.Sprint(l.Seq) {
			return fmt.Sprintf("line %q has Seq %d", l.Text, l.Seq)
		}
		s = append(s, l.Text)
	}
	return strings.Join(s, ",")
}

func TestRingSince(t *testing.T) {
	r := ringOf(4, 6) // holds Seq 3..6
	tests := []struct {
		name       string
		epoch      string
		from       uint64
		limit      int
		want       string
		wantNext   uint64
		wantMissed uint64
		wantReset  bool
	}{
		{"zero cursor: everything held, the rest missed", "", 0, 0, "3,4,5,6", 7, 2, false},
		{"cursor rotated out", "", 1, 0, "3,4,5,6", 7, 2, false},
		{"cursor at the oldest", "", 3, 0, "3,4,5,6", 7, 0, false},
		{"own epoch", r.epoch, 4, 0, "4,5,6", 7, 0, false},
		{"limit", "", 5, 1, "5", 6, 0, false},
		{"limit with a skip", "", 2, 2, "3,4", 5, 1, false},
		{"up to date", "", 7, 0, "", 7, 0, false},
		{"cursor ahead of the ring", "", 100, 0, "", 7, 0, false},
		{"another epoch restarts at the oldest", "other", 5, 0, "3,4,5,6", 7, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := r.since(tt.epoch, tt.from, tt.limit)
			if got := seqsOf(b.Lines); got != tt.want {
				t.Errorf("lines %q, want %q", got, tt.want)
			}
			if b.Next != tt.wantNext || b.Missed != tt.wantMissed || b.Reset != tt.wantReset || b.Epoch != r.epoch {
				t.Errorf("next %d missed %d reset %v epoch %q, want %d %d %v %q",
					b.Next, b.Missed, b.Reset, b.Epoch, tt.wantNext, tt.wantMissed, tt.wantReset, r.epoch)
			}
			if (b.Wait != nil) != (len(b.Lines) == 0) {
				t.Errorf("Wait set %v with %d lines", b.Wait != nil, len(b.Lines))
			}
		})
	}
}

func TestRingTail(t *testing.T) {
	tests := []struct {
		name        string
		size, added int
		n           int
		want        uint64
	}{
		{"empty ring", 4, 0, 5, 1},
		{"only new lines", 4, 6, 0, 7},
		{"last two", 4, 6, 2, 5},
		{"more than held", 4, 6, 10, 3},
		{"more than written", 10, 3, 5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ringOf(tt.size, tt.added)
			epoch, from := r.tail(tt.n)
			if from != tt.want || epoch != r.epoch {
				t.Errorf("tail(%d) = %q %d, want %q %d", tt.n, epoch, from, r.epoch, tt.want)
			}
		})
	}
}

func TestRingWake(t *testing.T) {
	r := ringOf(4, 2)
	b := r.since("", 3, 0)
	if b.Wait == nil {
		t.Fatal("no Wait channel at the end of the ring")
	}
	if again := r.since("", 3, 0); again.Wait != b.Wait {
		t.Error("two waiting followers got different channels")
	}
	select {
	case <-b.Wait:
		t.Fatal("Wait closed before a line was added")
	default:
	}
	r.add(LogLine{Text: "3"})
	select {
	case <-b.Wait:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait not closed by add")
	}
	if got := seqsOf(r.since("", b.Next, 0).Lines); got != "3" {
		t.Errorf("after the wake: %q", got)
	}
}

// TestFollowerNeverBlocksReader: a follower that stops reading (it holds a
// cursor and a Wait channel and never comes back) does not slow the pipe
// reader; when it comes back it skips ahead and is told exactly how many
// lines it missed. A live follower running alongside sees every Seq once,
// either read or counted as missed.
func TestFollowerNeverBlocksReader(t *testing.T) {
	const size, total = 64, 50000
	sink := &logSink{ring: newRing(size), stdout: nopCounter(), stderr: nopCounter(), dropped: nopCounter()}
	stalled := sink.ring.since("", 1, 0) // takes the wake channel, then never reads it
	if stalled.Wait == nil {
		t.Fatal("no Wait channel on an empty ring")
	}

	type tally struct{ read, missed, last uint64 }
	live := make(chan tally, 1)
	stop := make(chan struct{})
	go func() {
		var tl tally
		next := uint64(1)
		for {
			b := sink.ring.since("", next, 16)
			tl.missed += b.Missed
			for _, l := range b.Lines {
				if l.Seq <= tl.last {
					t.Errorf("Seq %d after %d", l.Seq, tl.last)
				}
				tl.last = l.Seq
				tl.read++
			}
			next = b.Next
			if b.Wait != nil {
				select {
				case <-b.Wait:
				case <-stop:
					live <- tl
					return
				}
			}
		}
	}()

	var in strings.Builder
	for i := 1; i <= total; i++ {
		fmt.Fprintf(&in, "line %d\n", i)
	}
	done := make(chan struct{})
	go func() { readLines(strings.NewReader(in.String()), "stdout", sink, nil); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the pipe reader was blocked by a follower")
	}
	close(stop) // the live follower returns once it has caught up
	tl := <-live
	if tl.read+tl.missed != total {
		t.Errorf("live follower: read %d + missed %d != %d", tl.read, tl.missed, total)
	}
	if tl.last != total {
		t.Errorf("live follower's last Seq %d, want %d", tl.last, total)
	}

	b := sink.ring.since("", stalled.Next, 0)
	if b.Missed != total-size || len(b.Lines) != size || b.Lines[0].Seq != total-size+1 || b.Next != total+1 {
		t.Errorf("stalled follower: missed %d, %d lines from Seq %d, next %d", b.Missed, len(b.Lines), b.Lines[0].Seq, b.Next)
	}
	if b.Lines[size-1].Text != fmt.Sprintf("line %d", total) {
		t.Errorf("newest line %q", b.Lines[size-1].Text)
	}
}
