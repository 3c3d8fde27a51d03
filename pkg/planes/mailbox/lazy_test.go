package mailbox

import (
	"testing"
)

// commits returns how many group commits the plane has made.
func (e *env) commits() uint64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "macronode_mailbox_commit_ops" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	e.t.Fatal("no macronode_mailbox_commit_ops metric")
	return 0
}

// A lease writes nothing by itself: a persist with nothing to write (what
// the sweeper and a waiting receive do) leaves the delivery count lazy,
// and the next commit that happens anyway carries it.
func TestLeaseCostsNoCommit(t *testing.T) {
	e := newEnv(t, Config{})
	e.send("l", "a")
	got := e.receive("l", "max=1&visibility=1h")
	if len(got) != 1 {
		t.Fatalf("received %d messages, want 1", len(got))
	}
	before := e.commits()
	for _, refs := range [][]ref{nil, seqRefs(nil)} {
		if err := e.s.persist(refs); err != nil {
			t.Fatalf("persist(%v): %v", refs, err)
		}
	}
	if after := e.commits(); after != before {
		t.Fatalf("an empty persist made %d commits", after-before)
	}
	seq, ok := parseID(got[0].ID)
	if !ok {
		t.Fatalf("bad id %q", got[0].ID)
	}
	e.s.mu.Lock()
	_, lazy := e.s.lazy[seq]
	e.s.mu.Unlock()
	if !lazy {
		t.Fatal("the lease's delivery count left the lazy set without a commit")
	}
	e.send("l", "b") // carries the count
	e.s.mu.Lock()
	n := len(e.s.lazy)
	e.s.mu.Unlock()
	if n != 0 {
		t.Fatalf("after a send's commit %d delivery counts are still lazy", n)
	}
}

// A clean close writes the lazy delivery counts.
func TestCloseWritesLazyDeliveries(t *testing.T) {
	e := newEnv(t, Config{})
	id := e.send("c", "a")
	if got := e.receive("c", "max=1&visibility=1h"); len(got) != 1 {
		t.Fatalf("received %d messages, want 1", len(got))
	}
	e.restart()
	got := e.receive("c", "max=1&visibility=1h")
	if len(got) != 1 || got[0].ID != id || got[0].Deliveries != 2 {
		t.Fatalf("after restart got %+v, want %s with deliveries 2", got, id)
	}
}
