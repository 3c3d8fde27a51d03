package mailbox

import (
	"errors"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// errClosing is returned for writes attempted after Close began.
var errClosing = errors.New("mailbox is shutting down")

// committer makes a set of changes durable; commit returns once they are
// fsynced (or failed). apply must be idempotent: it materialises the current
// in-memory state of the referenced messages.
type committer interface {
	commit(refs []ref) error
	close()
}

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

type applyFunc func(tx *bolt.Tx, refs []ref) error

// maxOpsPerCommit bounds how many requests one loop transaction carries.
const maxOpsPerCommit = 1024

type commitOp struct {
	refs []ref
	errc chan error
}

// loopCommitter is a group-commit loop: one goroutine takes every queued
// op, applies them all in one bbolt Update (one fsync) and answers each. While
// one fsync runs, the next batch queues up, so batches grow with load and a
// lone writer never waits for a timer.
type loopCommitter struct {
	st      *store
	apply   applyFunc
	observe func(ops int) // called with the number of ops in each transaction
	in      chan *commitOp
	done    chan struct{}

	mu     sync.RWMutex
	closed bool
}

func newLoopCommitter(st *store, apply applyFunc, observe func(int)) *loopCommitter {
	c := &loopCommitter{st: st, apply: apply, observe: observe,
		in: make(chan *commitOp, maxOpsPerCommit), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *loopCommitter) commit(refs []ref) error {
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

func (c *loopCommitter) run() {
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
	}
}

func (c *loopCommitter) flush(batch []*commitOp) {
	c.observe(len(batch))
	err := c.st.update(func(tx *bolt.Tx) error {
		for _, op := range batch {
			if err := c.apply(tx, op.refs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		// Isolate the failing op: retry each alone.
		for _, op := range batch {
			op.errc <- c.st.update(func(tx *bolt.Tx) error { return c.apply(tx, op.refs) })
		}
		return
	}
	for _, op := range batch {
		op.errc <- err
	}
}

// close stops accepting ops, waits for queued ones to commit and stops.
func (c *loopCommitter) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.in)
	}
	c.mu.Unlock()
	<-c.done
}
