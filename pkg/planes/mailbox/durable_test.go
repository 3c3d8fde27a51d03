package mailbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	// 49 left; the 4 long leases survive the restart as leases.
	if info.InFlight+info.Depth != n-1 || info.InFlight < 4 {
		t.Fatalf("after restart info = %+v", info)
	}
	// A receipt from before the restart still acks its lease.
	if k, res := e.ack("d", leased[1].Receipt); k != 1 {
		t.Fatalf("ack with a pre-restart receipt: %+v", res)
	}
	// The short leases end and those messages come back with deliveries 2.
	seen := map[string]int{}
	eventually(t, 5e9, "every message to be redelivered", func() bool {
		for _, m := range e.receive("d", "max=100&visibility=1h") {
			if want, ok := ids[m.ID]; !ok || m.data(t) != want {
				t.Fatalf("unknown or changed message %+v", m)
			}
			seen[m.ID] = m.Deliveries
		}
		return len(seen) == n-2-3 // all but the 2 acked and the 3 still leased
	})
	for _, m := range short {
		if seen[m.ID] != 2 {
			t.Errorf("short-leased %s came back with deliveries %d, want 2", m.ID, seen[m.ID])
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

func TestCompactionShrinksFile(t *testing.T) {
	e := newEnv(t, Config{CompactMinBytes: 1, CompactFreeRatio: 0.3})
	path := filepath.Join(e.cfg.DataDir, DBFile)
	body := strings.Repeat("z", 32<<10)
	for i := 0; i < 100; i++ {
		e.send("big", body)
	}
	e.drain("big")
	keep := e.send("big", "survivor")
	before := fileSize(t, path)
	e.restart()
	after := fileSize(t, path)
	t.Logf("mailbox.db %d -> %d bytes", before, after)
	if after >= before/2 {
		t.Fatalf("file did not shrink: %d -> %d bytes", before, after)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("compaction left %s.compact: %v", path, err)
	}
	if got := e.receive("big", ""); len(got) != 1 || got[0].ID != keep || got[0].data(t) != "survivor" {
		t.Fatalf("after compaction got %+v", got)
	}
}

func TestPeriodicCompaction(t *testing.T) {
	e := newEnv(t, Config{CompactMinBytes: 1, CompactFreeRatio: 0.3, CompactInterval: 20e6})
	path := filepath.Join(e.cfg.DataDir, DBFile)
	for i := 0; i < 60; i++ {
		e.send("p", strings.Repeat("y", 32<<10))
	}
	peak := fileSize(t, path)
	e.drain("p")
	eventually(t, 10e9, "periodic compaction", func() bool {
		return fileSize(t, path) < peak/2 && metricValue(t, e.reg, "macronode_mailbox_compactions_total", "") >= 1
	})
	e.send("p", "still works")
	if got := e.receive("p", ""); len(got) != 1 {
		t.Fatalf("after compaction got %+v", got)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
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
	} {
		if _, err := New(cfg, nil, nil); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
