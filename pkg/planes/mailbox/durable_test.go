package mailbox

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestDurableAcrossRestart(t *testing.T) {
	e := newEnv(t, Config{})
	const n = 50
	ids := map[string]string{}
	for i := 0; i < n; i++ {
		ids[e.send("d", fmt.Sprintf("m%d", i))] = fmt.Sprintf("m%d", i)
	}
	leased := e.receive("d", "max=5&visibility=1h")
	short := e.receive("d", "max=5&visibility=100ms")
	e.ack("d", leased[0].Receipt)

	e.restart()

	info := e.info("d")
	// 49 left, all visible again: leases are not durable.
	if info.Depth != n-1 || info.InFlight != 0 {
		t.Fatalf("after restart info = %+v", info)
	}
	// A receipt from before the restart is stale.
	if k, res := e.ack("d", leased[1].Receipt); k != 0 {
		t.Fatalf("ack with a pre-restart receipt: %+v", res)
	}
	// The ack carried the leases' delivery counts to disk: the leased
	// messages come back with deliveries 2, the rest with 1.
	seen := map[string]int{}
	for _, m := range e.receive("d", "max=100&visibility=1h") {
		if want, ok := ids[m.ID]; !ok || m.data(t) != want {
			t.Fatalf("unknown or changed message %+v", m)
		}
		seen[m.ID] = m.Deliveries
	}
	if len(seen) != n-1 {
		t.Fatalf("after restart %d messages came back, want %d", len(seen), n-1)
	}
	for _, m := range append(leased[1:], short...) {
		if seen[m.ID] != 2 {
			t.Errorf("leased %s came back with deliveries %d, want 2", m.ID, seen[m.ID])
		}
	}
	// Ids are never reused, even after everything was acked.
	last := e.send("d", "after")
	e.restart()
	if next := e.send("d", "after2"); next <= last {
		t.Fatalf("id %s after restart is not above %s", next, last)
	}
}

func TestDeadLetterAfterRestart(t *testing.T) {
	e := newEnv(t, Config{MaxDeliveries: 1})
	id := e.send("p", "x")
	e.receive("p", "visibility=200ms")
	e.restart()
	// The restored lease ends after the restart; with its deliveries used up
	// the message moves to the dead-letter box, durably.
	eventually(t, 5e9, "dead-letter move", func() bool { return e.info("p").DLQDepth == 1 })
	e.restart()
	got := e.receive("p.dlq", "")
	if len(got) != 1 || got[0].ID != id || got[0].Deliveries != 1 {
		t.Fatalf("dead-letter box after restart = %+v", got)
	}
}

func TestConcurrentSenders(t *testing.T) {
	e := newEnv(t, Config{})
	const senders, each = 16, 200
	ids := make(chan string, senders*each)
	var wg sync.WaitGroup
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id, err := e.trySend("c", fmt.Sprintf("%d-%d", g, i))
				if err != nil {
					t.Error(err)
					return
				}
				ids <- id
			}
		}()
	}
	wg.Wait()
	close(ids)
	sent := map[string]bool{}
	for id := range ids {
		if sent[id] {
			t.Fatalf("duplicate id %s", id)
		}
		sent[id] = true
	}
	if len(sent) != senders*each {
		t.Fatalf("%d distinct ids, want %d", len(sent), senders*each)
	}
	got := map[string]bool{}
	for len(got) < len(sent) {
		msgs := e.receive("c", "max=100")
		if len(msgs) == 0 {
			t.Fatalf("ran dry after %d of %d", len(got), len(sent))
		}
		rs := make([]string, len(msgs))
		for i, m := range msgs {
			if !sent[m.ID] || got[m.ID] {
				t.Fatalf("unexpected or repeated message %s", m.ID)
			}
			got[m.ID] = true
			rs[i] = m.Receipt
		}
		if n, _ := e.ack("c", rs...); n != len(rs) {
			t.Fatalf("acked %d of %d", n, len(rs))
		}
	}
}

// drain receives and acks everything in box.
func (e *env) drain(box string) {
	e.t.Helper()
	for {
		msgs := e.receive(box, "max=100")
		if len(msgs) == 0 {
			return
		}
		rs := make([]string, len(msgs))
		for i, m := range msgs {
			rs[i] = m.Receipt
		}
		e.ack(box, rs...)
	}
}

func TestAmnesiaWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "never")
	e := newEnv(t, Config{Amnesia: true, DataDir: dir, MaxDeliveries: 1})
	e.send("a", "x")
	m := e.receive("a", "")
	e.settle("a", "nack", nil, m[0].Receipt)
	e.receive("a.dlq", "")
	e.stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("amnesia created %s: %v", dir, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{DataDir: "x", MaxDepth: -1},
		{DataDir: "x", CompactFreeRatio: 2},
		{DataDir: "x", SegmentBytes: -1},
	} {
		if _, err := New(cfg, nil, nil); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
