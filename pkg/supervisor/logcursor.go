package supervisor

import (
	"fmt"
	"math/rand/v2"
)

// A follower reads a service's log ring with a cursor: the Seq of the next
// line it wants. It never registers with the ring, so the goroutines that
// read the child's pipes never wait for it. When it has read everything it
// takes the ring's wake channel, which the next add closes; when it falls
// further behind than the ring holds, it skips to the oldest kept line and
// is told how many it missed.

// LogBatch is one answer to a follower (Supervisor.LogsSince).
type LogBatch struct {
	// Epoch names this ring (random per parent run); a follower passes it
	// back so that a cursor from an earlier run is told apart.
	Epoch string
	// Lines are the next lines after the cursor, Seq ascending.
	Lines []LogLine
	// Next is the cursor to pass on the next call.
	Next uint64
	// Missed counts lines after the cursor that the ring no longer held:
	// they were skipped.
	Missed uint64
	// Reset is set when the cursor's epoch was not this ring's (the parent
	// restarted): reading restarted at the oldest kept line and how many
	// lines were missed is unknown.
	Reset bool
	// Wait is set when Lines is empty: it is closed when the next line is
	// added.
	Wait <-chan struct{}
}

func newEpoch() string { return fmt.Sprintf("%08x", rand.Uint32()) }

// oldestLocked is the Seq of the oldest line held (total+1 when empty).
func (r *ring) oldestLocked() uint64 {
	return r.total + 1 - uint64(r.count)
}

// tail returns the ring's epoch and the cursor of its newest n lines
// (n <= 0: only lines added from now on).
func (r *ring) tail(n int) (string, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	from := r.total + 1
	if n > 0 {
		from = max(r.oldestLocked(), r.total+1-min(uint64(n), r.total))
	}
	return r.epoch, from
}

// since returns up to limit lines (limit <= 0: all held) from cursor from
// of ring epoch (epoch "": this ring's). A cursor past the newest line
// waits for the next one.
func (r *ring) since(epoch string, from uint64, limit int) LogBatch {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := LogBatch{Epoch: r.epoch}
	oldest := r.oldestLocked()
	switch {
	case epoch != "" && epoch != r.epoch:
		b.Reset = true
		from = oldest
	case from < oldest:
		b.Missed = oldest - max(from, 1)
		from = oldest
	case from > r.total+1:
		from = r.total + 1
	}
	n := r.total + 1 - from
	if limit > 0 && n > uint64(limit) {
		n = uint64(limit)
	}
	if n > 0 {
		b.Lines = make([]LogLine, n)
		size := uint64(len(r.slots))
		for i := range n {
			seq := from + i
			b.Lines[i] = r.lineAt(int((seq-1)%size), seq) // the line of Seq s sits in slot (s-1) mod size
		}
	} else {
		if r.wake == nil {
			r.wake = make(chan struct{})
		}
		b.Wait = r.wake
	}
	b.Next = from + n
	return b
}

// LogTail returns the epoch of the service's log ring and the cursor of its
// newest n lines (n <= 0: only lines written from now on), to start
// LogsSince with.
func (s *Supervisor) LogTail(name string, n int) (epoch string, from uint64, err error) {
	v, err := s.lookup(name)
	if err != nil {
		return "", 0, err
	}
	epoch, from = v.sink.ring.tail(n)
	return epoch, from, nil
}

// LogsSince returns up to limit of the service's lines from cursor from
// (the Seq of the next line wanted) of ring epoch. It never blocks: with
// nothing new, the batch's Wait channel says when to ask again.
func (s *Supervisor) LogsSince(name, epoch string, from uint64, limit int) (LogBatch, error) {
	v, err := s.lookup(name)
	if err != nil {
		return LogBatch{}, err
	}
	return v.sink.ring.since(epoch, from, limit), nil
}
