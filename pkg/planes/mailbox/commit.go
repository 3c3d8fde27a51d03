package mailbox

import (
	"errors"
	"sync"
)

// errClosing is returned for writes attempted after Close began.
var errClosing = errors.New("mailbox is shutting down")

// ref names one thing whose in-memory state must be written: a message (by
// seq) or an idempotency key.
type ref struct {
	seq  uint64
	idem string
}

func seqRefs(seqs []uint64) []ref {
	rs := make([]ref, len(seqs))
	for i, s := range seqs {
		rs[i] = ref{seq: s}
	}
	return rs
}

// materializeFunc returns the writes that store the current in-memory state
// of refs. Applying them is idempotent.
type materializeFunc func(refs []ref) []write

// maxOpsPerCommit bounds how many requests one group commit carries.
const maxOpsPerCommit = 1024

type commitOp struct {
	refs []ref
	errc chan error // the op's result, or errLead first when it is handed the lead
}

// errLead tells a queued op's goroutine that it now leads the commits.
var errLead = errors.New("lead the next group commit")

// committer is a group commit without a goroutine of its own (leader and
// followers): the request that finds no commit running leads one. It takes
// every queued op, appends the writes of them all to the log in one write
// and one fdatasync, answers each, compacts the log, and hands the lead to
// the oldest op that queued meanwhile. While one fsync runs the next batch
// queues up, so batches grow with load; a lone writer neither waits for a
// timer nor for another goroutine to wake up. Each leader commits one
// batch, its own op among it.
type committer struct {
	st          *store
	materialize materializeFunc
	observe     func(ops int)          // called with the number of ops in each commit
	compacted   func(n int, err error) // called after each compaction that did something or failed

	mu     sync.Mutex
	idle   *sync.Cond // signalled when busy turns false
	queue  []*commitOp
	busy   bool // a leader is committing
	closed bool
}

func newCommitter(st *store, m materializeFunc, observe func(int), compacted func(int, error)) *committer {
	c := &committer{st: st, materialize: m, observe: observe, compacted: compacted}
	c.idle = sync.NewCond(&c.mu)
	return c
}

// commit returns once refs are durable (or failed).
func (c *committer) commit(refs []ref) error {
	op := &commitOp{refs: refs, errc: make(chan error, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errClosing
	}
	c.queue = append(c.queue, op)
	lead := !c.busy
	c.busy = true
	c.mu.Unlock()
	if !lead {
		if err := <-op.errc; err != errLead {
			return err
		}
	}
	c.lead()
	return <-op.errc
}

// lead commits the queue's oldest ops (the leader's own among them: it is
// the oldest), then passes the lead on or goes idle.
func (c *committer) lead() {
	c.mu.Lock()
	n := min(len(c.queue), maxOpsPerCommit)
	batch := c.queue[:n:n]
	c.queue = c.queue[n:]
	c.mu.Unlock()
	c.flush(batch)
	if n, err := c.st.compact(); n > 0 || err != nil {
		c.compacted(n, err)
	}
	c.mu.Lock()
	if len(c.queue) > 0 {
		c.queue[0].errc <- errLead
	} else {
		c.queue = nil
		c.busy = false
		c.idle.Broadcast()
	}
	c.mu.Unlock()
}

func (c *committer) flush(batch []*commitOp) {
	c.observe(len(batch))
	var ws []write
	for _, op := range batch {
		ws = append(ws, c.materialize(op.refs)...)
	}
	err := c.st.appendBatch(ws)
	if err != nil && len(batch) > 1 {
		// Isolate the failing op: retry each alone.
		for _, op := range batch {
			op.errc <- c.st.appendBatch(c.materialize(op.refs))
		}
		return
	}
	for _, op := range batch {
		op.errc <- err
	}
}

// close stops accepting ops and waits until the queued ones are committed.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	for c.busy {
		c.idle.Wait()
	}
	c.mu.Unlock()
}
