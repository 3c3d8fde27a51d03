// Package events is the parent's event bus (SPEC §5, §6): every state change
// of every child is published once, kept in a ring of the last RingSize
// events, and fanned out to subscribers (the SSE route, the audit log).
//
// Ids are `<boot id>-<seq>`, seq monotonic within a boot. A subscriber that
// resumes from an id still in the ring gets exactly what it missed; one whose
// id left the ring, or is from another boot, gets Gap set. Publish never
// blocks: each subscriber has a bounded queue, and a subscriber whose queue is
// full is dropped (its Done channel closes) and counted.
package events

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RingSize is how many past events the bus keeps for resuming subscribers.
const RingSize = 1000

// The event types (SPEC §5).
const (
	Spawned  = "spawned"
	Ready    = "ready"
	Unready  = "unready"
	Exited   = "exited"
	Backoff  = "backoff"
	Failed   = "failed"
	Stopped  = "stopped"
	Started  = "started"
	Reload   = "reload"
	Fault    = "fault"
	Shutdown = "shutdown"
	Listener = "listener" // the parent holds a plane's socket, or closed it
	Gap      = "gap"      // sent to a subscriber only, never kept in the ring
)

// ErrBadID is returned for a Last-Event-ID that is not `<boot id>-<seq>`.
var ErrBadID = errors.New("malformed event id")

// Event is one state change.
type Event struct {
	ID      string          `json:"id"`
	Seq     uint64          `json:"seq"`
	Type    string          `json:"type"`
	Time    time.Time       `json:"time"`
	Service string          `json:"service,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Publisher is what emits events; *Bus implements it.
type Publisher interface {
	Publish(typ, service string, data any) Event
}

// Bus keeps the ring and the subscribers.
type Bus struct {
	boot string
	size int

	mu      sync.Mutex
	seq     uint64
	ring    []Event // oldest first, at most size
	subs    map[*Sub]struct{}
	dropped uint64
	closed  bool
}

// NewBoot returns a fresh random boot id (16 hex digits).
func NewBoot() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// New returns a bus for this boot keeping size events (RingSize when <= 0).
// boot must be non-empty and contain no '-'.
func New(boot string, size int) (*Bus, error) {
	if boot == "" || strings.Contains(boot, "-") {
		return nil, fmt.Errorf("events: boot id %q: must be non-empty without '-'", boot)
	}
	if size <= 0 {
		size = RingSize
	}
	return &Bus{boot: boot, size: size, subs: make(map[*Sub]struct{})}, nil
}

// Boot returns the bus's boot id.
func (b *Bus) Boot() string { return b.boot }

// ParseID splits an event id into its boot id and sequence number.
func ParseID(id string) (boot string, seq uint64, err error) {
	i := strings.IndexByte(id, '-')
	if i <= 0 || i == len(id)-1 {
		return "", 0, fmt.Errorf("%w %q: want <boot id>-<seq>", ErrBadID, id)
	}
	seq, err = strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w %q: sequence is not a number", ErrBadID, id)
	}
	return id[:i], seq, nil
}

// Publish records an event and hands it to every subscriber without
// blocking. data is encoded as JSON (nil: no body). It never fails: data
// that cannot be encoded is replaced by an object naming the error.
func (b *Bus) Publish(typ, service string, data any) Event {
	var raw json.RawMessage
	if data != nil {
		var err error
		if raw, err = json.Marshal(data); err != nil {
			raw, _ = json.Marshal(map[string]string{"encode_error": err.Error()})
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	ev := Event{ID: b.boot + "-" + strconv.FormatUint(b.seq, 10), Seq: b.seq, Type: typ, Time: time.Now(), Service: service, Data: raw}
	if len(b.ring) == b.size {
		copy(b.ring, b.ring[1:])
		b.ring[len(b.ring)-1] = ev
	} else {
		b.ring = append(b.ring, ev)
	}
	for s := range b.subs {
		select {
		case s.ch <- ev:
		default:
			b.dropLocked(s)
			b.dropped++
		}
	}
	return ev
}

// Dropped counts subscribers dropped because their queue overflowed.
func (b *Bus) Dropped() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// Subscribers is the number of live subscribers.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Close ends every subscription; later subscriptions end at once.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.dropLocked(s)
	}
}

func (b *Bus) dropLocked(s *Sub) {
	delete(b.subs, s)
	s.once.Do(func() { close(s.done) })
}

// Closed reports whether Close was called.
func (b *Bus) Closed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}
