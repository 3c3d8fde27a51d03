package mailbox

import (
	"errors"
	"time"
)

// msgState is where a message is in its life.
type msgState uint8

const (
	statePending msgState = iota // send not yet durable: invisible
	stateReady                   // in box.ready
	stateLeased                  // delivered, lease until visibleAt, in index.timed
	stateDelayed                 // nacked with a delay, visible at visibleAt, in index.timed
)

// message is the in-memory index entry of one message.
type message struct {
	seq        uint64
	box        *box
	enqueuedAt time.Time
	visibleAt  time.Time
	deliveries uint32
	receipt    string
	body       []byte // always in amnesia; on disk mode only until the send commits
	state      msgState
	qidx       int // position in box.ready or index.timed
	aidx       int // position in box.all
}

// counters are the monotonic per-box metric counters.
type counters struct {
	sends, receives, acks, redeliveries, dlqMoves uint64
}

// box is one mailbox.
type box struct {
	name     string
	all      mheap // every message of the box, oldest first
	ready    mheap // visible messages, lowest seq first
	inFlight int
	notify   chan struct{} // closed and replaced when messages become ready
	waiters  int
	c        *counters
	labelled bool
}

func (b *box) total() int { return b.all.len() }
func (b *box) depth() int { return b.all.len() - b.inFlight }

// idemEntry remembers one Idempotency-Key of one box.
type idemEntry struct {
	seq     uint64
	created time.Time
	done    chan struct{} // closed once the send committed or failed
	failed  bool
}

var (
	errTooManyBoxes = errors.New("too many boxes")
	errBoxFull      = errors.New("box is full")
)

// index is the in-memory state shared by the disk and amnesia modes. Every
// method must be called with Server.mu held; none does I/O.
type index struct {
	maxDeliveries   uint32
	maxDepth        int
	maxBoxes        int
	metricsMaxBoxes int

	boxes    map[string]*box
	msgs     map[uint64]*message
	timed    mheap // leased and delayed messages, earliest visibleAt first
	nextSeq  uint64
	labelled int
	overflow counters
	idem     map[string]*idemEntry
	kick     func() // wakes the sweeper when timed's head got earlier
}

func newIndex(cfg Config, kick func()) *index {
	return &index{
		maxDeliveries:   uint32(cfg.MaxDeliveries),
		maxDepth:        cfg.MaxDepth,
		maxBoxes:        cfg.MaxBoxes,
		metricsMaxBoxes: cfg.MetricsMaxBoxes,
		boxes:           make(map[string]*box),
		msgs:            make(map[uint64]*message),
		timed:           newTimedHeap(),
		nextSeq:         1,
		idem:            make(map[string]*idemEntry),
		kick:            kick,
	}
}

// ensureBox returns the named box, creating it if the box cap allows.
func (x *index) ensureBox(name string) (*box, error) {
	if b := x.boxes[name]; b != nil {
		return b, nil
	}
	if len(x.boxes) >= x.maxBoxes {
		x.evictIdle()
		if len(x.boxes) >= x.maxBoxes {
			return nil, errTooManyBoxes
		}
	}
	b := &box{name: name, all: newAllHeap(), ready: newReadyHeap(), notify: make(chan struct{})}
	if x.labelled < x.metricsMaxBoxes {
		b.c, b.labelled = &counters{}, true
		x.labelled++
	} else {
		b.c = &x.overflow
	}
	x.boxes[name] = b
	return b, nil
}

// evictIdle forgets every box that holds no message and has no waiter.
func (x *index) evictIdle() {
	for name, b := range x.boxes {
		if b.total() == 0 && b.waiters == 0 {
			if b.labelled {
				x.labelled--
			}
			delete(x.boxes, name)
		}
	}
}

// broadcast wakes every receive waiting on b.
func (x *index) broadcast(b *box) {
	if b.waiters > 0 {
		close(b.notify)
		b.notify = make(chan struct{})
	}
}

// addPending registers a message whose send is not yet durable.
func (x *index) addPending(b *box, body []byte, now time.Time) (*message, error) {
	if b.total() >= x.maxDepth {
		return nil, errBoxFull
	}
	m := &message{seq: x.nextSeq, box: b, enqueuedAt: now, visibleAt: now, body: body,
		state: statePending, qidx: -1, aidx: -1}
	x.nextSeq++
	x.msgs[m.seq] = m
	b.all.push(m)
	return m, nil
}

// dropPending forgets a message whose send failed to commit.
func (x *index) dropPending(m *message) {
	if m.state != statePending {
		return
	}
	m.box.all.remove(m)
	delete(x.msgs, m.seq)
}

// makeReady puts m in its box's ready heap and wakes waiters.
func (x *index) makeReady(m *message) {
	m.state = stateReady
	m.receipt = ""
	m.box.ready.push(m)
	x.broadcast(m.box)
}

// setTimed (re)schedules m in the timed heap at visibleAt.
func (x *index) setTimed(m *message, st msgState, at time.Time) {
	was := m.state == stateLeased || m.state == stateDelayed
	m.state, m.visibleAt = st, at
	if was {
		x.timed.fix(m)
	} else {
		x.timed.push(m)
	}
	if m.qidx == 0 && x.kick != nil {
		x.kick()
	}
}

// unschedule takes m out of whatever queue holds it and ends its lease.
func (x *index) unschedule(m *message) {
	switch m.state {
	case stateReady:
		m.box.ready.remove(m)
	case stateLeased:
		x.timed.remove(m)
		m.box.inFlight--
	case stateDelayed:
		x.timed.remove(m)
	}
	m.receipt = ""
}

// remove deletes m from the index (ack).
func (x *index) remove(m *message) {
	x.unschedule(m)
	m.box.all.remove(m)
	delete(x.msgs, m.seq)
}

// release makes m visible now: ready, or dead-lettered when it has used up
// its deliveries. It returns true when m moved to a dead-letter box.
func (x *index) release(m *message, now time.Time) bool {
	x.unschedule(m)
	if x.shouldDLQ(m) && x.moveToDLQ(m, now) {
		return true
	}
	m.visibleAt = now
	x.makeReady(m)
	return false
}

func (x *index) shouldDLQ(m *message) bool {
	return m.deliveries >= x.maxDeliveries && !isDLQ(m.box.name)
}

// moveToDLQ moves an unscheduled m into "{box}.dlq". It returns false (and
// leaves m where it is) when the dead-letter box cannot take it.
func (x *index) moveToDLQ(m *message, now time.Time) bool {
	d, err := x.ensureBox(m.box.name + DLQSuffix)
	if err != nil || d.total() >= x.maxDepth {
		return false
	}
	src := m.box
	src.all.remove(m)
	src.c.dlqMoves++
	m.box, m.deliveries, m.visibleAt = d, 0, now
	d.all.push(m)
	x.makeReady(m)
	return true
}

// expire ends every lease and delay due at now. It returns the seqs whose
// stored state changed (dead-letter moves); plain lease ends need no write
// because the stored visible_at already says when the message is visible.
func (x *index) expire(now time.Time) []uint64 {
	var dirty []uint64
	for {
		m := x.timed.peek()
		if m == nil || m.visibleAt.After(now) {
			return dirty
		}
		if x.release(m, now) {
			dirty = append(dirty, m.seq)
		}
	}
}

// lease delivers up to max ready messages of b until now+vis. It returns the
// leased messages and the seqs it moved to a dead-letter box.
func (x *index) lease(b *box, max int, vis time.Duration, now time.Time) ([]*message, []uint64) {
	var got []*message
	var moved []uint64
	for len(got) < max {
		m := b.ready.peek()
		if m == nil {
			break
		}
		b.ready.remove(m)
		if x.shouldDLQ(m) && x.moveToDLQ(m, now) {
			moved = append(moved, m.seq)
			continue
		} // a full dead-letter box means: deliver it once more
		m.deliveries++
		m.receipt = newReceipt(m.seq, m.deliveries)
		b.inFlight++
		x.setTimed(m, stateLeased, now.Add(vis))
		b.c.receives++
		if m.deliveries > 1 {
			b.c.redeliveries++
		}
		got = append(got, m)
	}
	return got, moved
}

// Receipt statuses reported per receipt.
const (
	statusAcked    = "acked"
	statusNacked   = "nacked"
	statusExtended = "extended"
	statusStale    = "stale"
	statusNotFound = "not_found"
)

// resolve finds the leased message a receipt of box names. The status is ""
// when the receipt is current, else statusStale or statusNotFound.
func (x *index) resolve(boxName, receipt string, now time.Time) (*message, string) {
	seq, ok := receiptSeq(receipt)
	if !ok {
		return nil, statusNotFound
	}
	m := x.msgs[seq]
	if m == nil || m.state == statePending {
		return nil, statusNotFound
	}
	if m.box.name != boxName {
		if m.box.name == boxName+DLQSuffix {
			return nil, statusStale
		}
		return nil, statusNotFound
	}
	if m.state != stateLeased || m.receipt != receipt || !now.Before(m.visibleAt) {
		return nil, statusStale
	}
	return m, ""
}
