package mailbox

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func modes() map[string]Config {
	return map[string]Config{
		"disk":    {},
		"amnesia": {Amnesia: true},
	}
}

func TestSendReceiveAck(t *testing.T) {
	for name, cfg := range modes() {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, cfg)
			before := time.Now()
			id := e.send("orders", "hello \x00 world")
			if _, ok := parseID(id); !ok {
				t.Fatalf("id %q is not 16 hex digits", id)
			}
			empty := e.send("orders", "")

			msgs := e.receive("orders", "max=10&visibility=30s")
			if len(msgs) != 2 {
				t.Fatalf("got %d messages, want 2", len(msgs))
			}
			m := msgs[0]
			if m.ID != id || m.data(t) != "hello \x00 world" || m.Deliveries != 1 || m.Receipt == "" {
				t.Fatalf("first message = %+v", m)
			}
			if msgs[1].ID != empty || msgs[1].data(t) != "" {
				t.Fatalf("second message = %+v, want the empty one %s", msgs[1], empty)
			}
			at, err := time.Parse(time.RFC3339Nano, m.EnqueuedAt)
			if err != nil || at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
				t.Fatalf("enqueued_at %q: %v", m.EnqueuedAt, err)
			}
			if got := e.info("orders"); got.Depth != 0 || got.InFlight != 2 {
				t.Fatalf("info while leased = %+v", got)
			}
			if again := e.receive("orders", ""); len(again) != 0 {
				t.Fatalf("leased messages were delivered again: %+v", again)
			}

			n, res := e.ack("orders", m.Receipt, msgs[1].Receipt, "nonsense")
			if n != 2 || res[0].Status != statusAcked || res[1].Status != statusAcked || res[2].Status != statusNotFound {
				t.Fatalf("ack = %d %+v", n, res)
			}
			n, res = e.ack("orders", m.Receipt)
			if n != 0 || res[0].Status != statusNotFound {
				t.Fatalf("second ack = %d %+v", n, res)
			}
			if got := e.info("orders"); got.Depth != 0 || got.InFlight != 0 || got.OldestAgeSeconds != 0 {
				t.Fatalf("info after ack = %+v", got)
			}
		})
	}
}

func TestReceiptStaleAfterRedelivery(t *testing.T) {
	e := newEnv(t, Config{})
	id := e.send("b", "x")
	first := e.receive("b", "visibility=100ms")
	if len(first) != 1 {
		t.Fatalf("got %d messages", len(first))
	}
	var second []apiMsg
	eventually(t, 5*time.Second, "redelivery after the lease", func() bool {
		second = e.receive("b", "visibility=30s")
		return len(second) == 1
	})
	if second[0].ID != id || second[0].Deliveries != 2 || second[0].Receipt == first[0].Receipt {
		t.Fatalf("redelivery = %+v (first %+v)", second[0], first[0])
	}
	n, res := e.ack("b", first[0].Receipt)
	if n != 0 || res[0].Status != statusStale {
		t.Fatalf("ack with the first receipt = %d %+v, want stale", n, res)
	}
	_, res = e.settle("b", "extend", map[string]any{"visibility": "1m"}, first[0].Receipt)
	if res[0].Status != statusStale {
		t.Fatalf("extend with the first receipt = %+v, want stale", res)
	}
	if n, res = e.ack("b", second[0].Receipt); n != 1 || res[0].Status != statusAcked {
		t.Fatalf("ack with the current receipt = %d %+v", n, res)
	}
}

func TestLeaseExpiredReceiptIsStale(t *testing.T) {
	e := newEnv(t, Config{})
	e.send("b", "x")
	got := e.receive("b", "visibility=50ms")
	eventually(t, 5*time.Second, "lease end", func() bool { return e.info("b").InFlight == 0 })
	if _, res := e.ack("b", got[0].Receipt); res[0].Status != statusStale {
		t.Fatalf("ack after the lease ended = %+v, want stale", res)
	}
}

func TestNackAndExtend(t *testing.T) {
	e := newEnv(t, Config{})
	e.send("b", "x")
	m := e.receive("b", "visibility=150ms")[0]
	if n, res := e.settle("b", "extend", map[string]any{"visibility": "1h"}, m.Receipt); n != 1 || res[0].Status != statusExtended {
		t.Fatalf("extend = %d %+v", n, res)
	}
	// Well past the original lease the extended receipt still holds.
	deadline := time.Now().Add(300 * time.Millisecond)
	eventually(t, 5*time.Second, "original lease to pass", func() bool { return time.Now().After(deadline) })
	if got := e.receive("b", ""); len(got) != 0 {
		t.Fatalf("extended message delivered again: %+v", got)
	}
	if n, res := e.settle("b", "nack", map[string]any{"delay": "0s"}, m.Receipt); n != 1 || res[0].Status != statusNacked {
		t.Fatalf("nack = %d %+v", n, res)
	}
	again := e.receive("b", "")
	if len(again) != 1 || again[0].Deliveries != 2 {
		t.Fatalf("after nack got %+v", again)
	}
	// Nack with a delay hides it until the delay passes.
	e.settle("b", "nack", map[string]any{"delay": "200ms"}, again[0].Receipt)
	if got := e.receive("b", ""); len(got) != 0 {
		t.Fatalf("delayed message visible at once: %+v", got)
	}
	if info := e.info("b"); info.Depth != 1 || info.InFlight != 0 {
		t.Fatalf("info while delayed = %+v", info)
	}
	start := time.Now()
	late := e.receive("b", "wait=5s")
	if len(late) != 1 || late[0].Deliveries != 3 {
		t.Fatalf("after the delay got %+v", late)
	}
	t.Logf("delayed message arrived after %s", time.Since(start))
	if _, res := e.settle("b", "nack", nil, again[0].Receipt); res[0].Status != statusStale {
		t.Fatalf("nack with an old receipt = %+v", res)
	}
}

func TestLeaseExpiryRedelivers(t *testing.T) {
	e := newEnv(t, Config{})
	e.send("q", "payload")
	if got := e.receive("q", "visibility=200ms"); len(got) != 1 || got[0].Deliveries != 1 {
		t.Fatalf("first receive = %+v", got)
	}
	var got []apiMsg
	eventually(t, 5*time.Second, "redelivery", func() bool {
		got = e.receive("q", "")
		return len(got) == 1
	})
	if got[0].Deliveries != 2 || got[0].data(t) != "payload" {
		t.Fatalf("redelivered = %+v", got[0])
	}
}

func TestDeadLetter(t *testing.T) {
	for name, cfg := range modes() {
		t.Run(name, func(t *testing.T) {
			cfg.MaxDeliveries = 2
			e := newEnv(t, cfg)
			id := e.send("jobs", "poison")
			// Delivery 1: nacked. Delivery 2: lease left to expire.
			m := e.receive("jobs", "")[0]
			e.settle("jobs", "nack", nil, m.Receipt)
			m = e.receive("jobs", "visibility=50ms")[0]
			if m.Deliveries != 2 {
				t.Fatalf("second delivery = %+v", m)
			}
			eventually(t, 5*time.Second, "dead-letter move", func() bool {
				return e.info("jobs").DLQDepth == 1
			})
			if got := e.receive("jobs", ""); len(got) != 0 {
				t.Fatalf("dead-lettered message still in its box: %+v", got)
			}
			dl := e.receive("jobs.dlq", "")
			if len(dl) != 1 || dl[0].ID != id || dl[0].data(t) != "poison" || dl[0].Deliveries != 1 {
				t.Fatalf("dead-letter box gave %+v", dl)
			}
			// The old receipt, presented to the original box, is stale.
			if _, res := e.ack("jobs", m.Receipt); res[0].Status != statusStale {
				t.Fatalf("ack of the moved message via its old receipt = %+v", res)
			}
			// Dead-letter boxes never dead-letter further.
			for i := 0; i < 3; i++ {
				e.settle("jobs.dlq", "nack", nil, dl[0].Receipt)
				dl = e.receive("jobs.dlq", "")
				if len(dl) != 1 {
					t.Fatalf("dead-letter box lost its message after %d nacks", i+1)
				}
			}
			if dl[0].Deliveries != 4 {
				t.Fatalf("deliveries in the dead-letter box = %d, want 4", dl[0].Deliveries)
			}
			if n, _ := e.ack("jobs.dlq", dl[0].Receipt); n != 1 {
				t.Fatal("ack in the dead-letter box failed")
			}
			if st, out := e.do(context.Background(), "POST", "/mailboxes/jobs.dlq/messages", []byte("x"), nil); st != 400 || !strings.Contains(string(out), "bad_box") {
				t.Fatalf("send to a dead-letter box: %d %s", st, out)
			}
			if v := metricValue(t, e.reg, "macronode_mailbox_dlq_moves_total", "jobs"); v != 1 {
				t.Fatalf("dlq_moves_total = %v", v)
			}
		})
	}
}

func TestDeadLetterOnReceive(t *testing.T) {
	// A message already at max deliveries whose lease ended is moved by the
	// next receive even before the sweeper runs.
	e := newEnv(t, Config{MaxDeliveries: 1})
	e.send("r", "x")
	m := e.receive("r", "")[0]
	e.settle("r", "nack", nil, m.Receipt) // lease ends with deliveries == max
	if got := e.receive("r", ""); len(got) != 0 {
		t.Fatalf("exhausted message delivered again: %+v", got)
	}
	if got := e.receive("r.dlq", ""); len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("dead-letter box = %+v", got)
	}
}

func TestLongPollWakesOnSend(t *testing.T) {
	e := newEnv(t, Config{})
	type result struct {
		msgs    []apiMsg
		elapsed time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		var r result
		st, out, err := e.try(context.Background(), "POST", "/mailboxes/lp/receive?wait=5s", nil, nil)
		r.elapsed = time.Since(start)
		var body struct{ Messages []apiMsg }
		if err == nil && st == http.StatusOK {
			err = json.Unmarshal(out, &body)
		}
		if err != nil {
			t.Error(err)
		}
		r.msgs = body.Messages
		done <- r
	}()
	eventually(t, 5*time.Second, "the receive to wait", func() bool { return e.s.waitersOn("lp") == 1 })
	id := e.send("lp", "wake up")
	r := <-done
	if len(r.msgs) != 1 || r.msgs[0].ID != id {
		t.Fatalf("long poll returned %+v", r.msgs)
	}
	t.Logf("long poll returned %s after start", r.elapsed)
	if r.elapsed >= 4*time.Second {
		t.Fatalf("long poll took %s: it was not woken by the send", r.elapsed)
	}
}

func TestLongPollWakesOnLeaseExpiry(t *testing.T) {
	e := newEnv(t, Config{})
	e.send("lp", "x")
	e.receive("lp", "visibility=200ms")
	start := time.Now()
	got := e.receive("lp", "wait=5s")
	if len(got) != 1 || got[0].Deliveries != 2 {
		t.Fatalf("got %+v", got)
	}
	if el := time.Since(start); el >= 4*time.Second {
		t.Fatalf("took %s: lease expiry did not wake the waiter", el)
	}
}

func TestLongPollTimesOutEmpty(t *testing.T) {
	e := newEnv(t, Config{})
	if got := e.receive("idle", "wait=100ms"); len(got) != 0 {
		t.Fatalf("got %+v", got)
	}
	if e.s.waitersOn("idle") != 0 {
		t.Fatal("waiter not released")
	}
}

func TestLongPollClientGone(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		req, _ := http.NewRequestWithContext(ctx, "POST", e.ts.URL+"/mailboxes/gone/receive?wait=20s", nil)
		if resp, err := e.ts.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	eventually(t, 5*time.Second, "the receive to wait", func() bool { return e.s.waitersOn("gone") == 1 })
	cancel()
	wg.Wait()
	eventually(t, 5*time.Second, "the server to drop the waiter", func() bool { return e.s.waitersOn("gone") == 0 })
	// Nothing was leased to the departed client.
	e.send("gone", "x")
	if got := e.receive("gone", ""); len(got) != 1 || got[0].Deliveries != 1 {
		t.Fatalf("got %+v", got)
	}
}

func TestCloseReleasesLongPoll(t *testing.T) {
	e := newEnv(t, Config{})
	done := make(chan int, 1)
	go func() {
		st, _, err := e.try(context.Background(), "POST", "/mailboxes/c/receive?wait=20s", nil, nil)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	eventually(t, 5*time.Second, "the receive to wait", func() bool { return e.s.waitersOn("c") == 1 })
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := <-done; st != http.StatusOK {
		t.Fatalf("long poll at close answered %d", st)
	}
	if st, _ := e.do(context.Background(), "POST", "/mailboxes/c/messages", []byte("x"), nil); st != http.StatusServiceUnavailable {
		t.Fatalf("send after Close answered %d, want 503", st)
	}
	if e.s.Ready() == nil {
		t.Fatal("Ready after Close is nil")
	}
	if err := e.s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestDrainEndsLongPolls(t *testing.T) {
	e := newEnv(t, Config{})
	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		e.receive("drain", "max=1&wait=20s")
		done <- time.Since(start)
	}()
	// Wait until the long poll is parked, then drain.
	eventually(t, 5*time.Second, "long poll parked", func() bool {
		e.s.mu.Lock()
		defer e.s.mu.Unlock()
		b := e.s.ix.boxes["drain"]
		return b != nil && b.waiters > 0
	})
	e.s.Drain()
	select {
	case el := <-done:
		if el > 15*time.Second {
			t.Fatalf("long poll returned after %s, not at drain", el)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long poll still waiting 15s after Drain")
	}
	// Sends still work while draining.
	e.send("drain", "after")
}
