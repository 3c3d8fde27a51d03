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
	errc chan error
}

// committer is a group-commit loop: one goroutine takes every queued op,
// appends the writes of them all to the log in one write and one fdatasync,
// and answers each. While one fsync runs the next batch queues up, so
// batches grow with load and a lone writer never waits for a timer. Between
// commits it compacts the log.
type committer struct {
	st          *store
	materialize materializeFunc
	observe     func(ops int)          // called with the number of ops in each commit
	compacted   func(n int, err error) // called after each compaction that did something or failed
	in          chan *commitOp
	done        chan struct{}

	mu     sync.RWMutex
	closed bool
}

func newCommitter(st *store, m materializeFunc, observe func(int), compacted func(int, error)) *committer {
	c := &committer{st: st, materialize: m, observe: observe, compacted: compacted,
		in: make(chan *commitOp, maxOpsPerCommit), done: make(chan struct{})}
	go c.run()
	return c
}

// commit returns once refs are durable (or failed).
func (c *committer) commit(refs []ref) error {
	op := &commitOp{refs: refs, errc: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return errClosing
	}
	c.in <- op
	c.mu.RUnlock()
	return <-op.errc
}

func (c *committer) run() {
	defer close(c.done)
	batch := make([]*commitOp, 0, maxOpsPerCommit)
	for op := range c.in {
		batch = append(batch[:0], op)
	drain:
		for len(batch) < maxOpsPerCommit {
			select {
			case o, ok := <-c.in:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		c.flush(batch)
		clear(batch)
		if n, err := c.st.compact(); n > 0 || err != nil {
			c.compacted(n, err)
		}
	}
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

// close stops accepting ops, waits for queued ones to commit and stops.
func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.in)
	}
	c.mu.Unlock()
	<-c.done
}
