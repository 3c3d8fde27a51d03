package mailbox

import "time"

// settleUndo remembers what an ack, nack or extend changed in the index so
// that a commit failure can put the message back as it was: leased, with
// its receipt, exactly as the store still has it. Without it a failed ack
// would make the message vanish from memory (no redelivery, missing from
// depth, a retried ack says not_found) until the next restart.
type settleUndo struct {
	m *message

	// Before the settle: always a current lease.
	box        *box
	visibleAt  time.Time
	deliveries uint32
	receipt    string

	// After it, to tell whether something else changed the message since.
	acked        bool
	afterBox     *box
	afterState   msgState
	afterAt      time.Time
	afterDeliv   uint32
	afterReceipt string
}

// snapshot records m's lease before a settle changes it.
func snapshot(m *message) settleUndo {
	return settleUndo{m: m, box: m.box, visibleAt: m.visibleAt, deliveries: m.deliveries, receipt: m.receipt}
}

// settled records what the settle left of m.
func (u *settleUndo) settled(acked bool) {
	m := u.m
	u.acked = acked
	u.afterBox, u.afterState, u.afterAt = m.box, m.state, m.visibleAt
	u.afterDeliv, u.afterReceipt = m.deliveries, m.receipt
}

// rollback puts u's message back under its lease. It does nothing (and
// returns false) when the message moved on since the settle: a receiver
// leased a nacked message, say; that newer state is then the one to keep,
// and its own commit writes it.
func (x *index) rollback(u settleUndo) bool {
	m := u.m
	live := x.msgs[m.seq]
	switch {
	case u.acked:
		if live != nil { // cannot happen: seqs are never reused
			return false
		}
		m.box = x.liveBox(u.box)
		m.box.all.push(m)
		x.msgs[m.seq] = m
	case live != m || m.box != u.afterBox || m.state != u.afterState || !m.visibleAt.Equal(u.afterAt) ||
		m.deliveries != u.afterDeliv || m.receipt != u.afterReceipt:
		return false
	default:
		x.unschedule(m)
		if m.box != u.box { // the nack dead-lettered it: move it back
			m.box.all.remove(m)
			m.box = x.liveBox(u.box)
			m.box.all.push(m)
		}
	}
	// m is in no queue now (an acked message keeps a stale state field).
	m.state = statePending
	m.deliveries, m.receipt = u.deliveries, u.receipt
	m.box.inFlight++
	x.setTimed(m, stateLeased, u.visibleAt)
	return true
}

// liveBox returns the box registered under b's name, registering b again if
// it was forgotten meanwhile (it emptied and evictIdle dropped it). That may
// exceed max-boxes by one: a rollback must not lose a message to the cap.
func (x *index) liveBox(b *box) *box {
	if cur := x.boxes[b.name]; cur != nil {
		return cur
	}
	if b.labelled {
		if x.labelled < x.metricsMaxBoxes {
			x.labelled++
		} else {
			b.c, b.labelled = &x.overflow, false
		}
	}
	x.boxes[b.name] = b
	return b
}
