package events

import "sync"

// DefaultQueue is a subscriber's queue length when Subscribe is given <= 0.
const DefaultQueue = 256

// GapInfo says why a resuming subscriber cannot get everything it missed.
type GapInfo struct {
	LastEventID string `json:"last_event_id"`
	Reason      string `json:"reason"`           // "other boot", "expired", "ahead"
	Oldest      string `json:"oldest,omitempty"` // the oldest id still kept
}

// Sub is one subscription. Replay holds the events it missed (oldest
// first); then C delivers live events until Done closes (dropped for
// overflowing its queue, Close, or the bus closed).
type Sub struct {
	Replay []Event
	Gap    *GapInfo // set when the resume point is lost; Replay is then empty: live events follow

	bus  *Bus
	ch   chan Event
	done chan struct{}
	once sync.Once
}

// C delivers live events.
func (s *Sub) C() <-chan Event { return s.ch }

// Done is closed when the subscription ended.
func (s *Sub) Done() <-chan struct{} { return s.done }

// Close ends the subscription. It is idempotent.
func (s *Sub) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.bus.dropLocked(s)
}

// Subscribe starts a subscription with a live queue of queue events
// (DefaultQueue when <= 0). lastID resumes after that id (a malformed one is
// ErrBadID); with lastID empty, all replays the whole ring, otherwise only
// live events follow. Replay and registration happen under one lock, so no
// event is missed or delivered twice.
func (b *Bus) Subscribe(lastID string, all bool, queue int) (*Sub, error) {
	var boot string
	var seq uint64
	if lastID != "" {
		var err error
		if boot, seq, err = ParseID(lastID); err != nil {
			return nil, err
		}
	}
	if queue <= 0 {
		queue = DefaultQueue
	}
	s := &Sub{bus: b, ch: make(chan Event, queue), done: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.done)
		return s, nil
	}
	switch {
	case lastID == "":
		if all {
			s.Replay = append([]Event(nil), b.ring...)
		}
	default:
		s.Replay, s.Gap = b.resumeLocked(lastID, boot, seq)
	}
	b.subs[s] = struct{}{}
	return s, nil
}

// resumeLocked returns the events after seq of boot, or a gap (and no
// replay) when they are not all kept.
func (b *Bus) resumeLocked(lastID, boot string, seq uint64) ([]Event, *GapInfo) {
	oldest := ""
	var first uint64 = b.seq + 1 // the next event when the ring is empty
	if len(b.ring) > 0 {
		oldest, first = b.ring[0].ID, b.ring[0].Seq
	}
	whole := func(reason string) ([]Event, *GapInfo) {
		return nil, &GapInfo{LastEventID: lastID, Reason: reason, Oldest: oldest}
	}
	switch {
	case boot != b.boot:
		return whole("other boot")
	case seq > b.seq:
		return whole("ahead")
	case seq+1 < first:
		return whole("expired")
	}
	var out []Event
	for _, ev := range b.ring {
		if ev.Seq > seq {
			out = append(out, ev)
		}
	}
	return out, nil
}
