package mailbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// failCommits makes every commit fail as a full disk would, until undone.
func (s *Server) failCommits(on bool) {
	if !on {
		s.persistFault.Store(nil)
		return
	}
	f := func([]ref) error { return fmt.Errorf("injected write failure: %w", syscall.EIO) }
	s.persistFault.Store(&f)
}

// settleFails posts verb and expects the 500 store_error of a failed commit.
func (e *env) settleFails(box, verb string, extra map[string]any, receipts ...string) {
	e.t.Helper()
	req := map[string]any{"receipts": receipts}
	for k, v := range extra {
		req[k] = v
	}
	body, _ := json.Marshal(req)
	st, out := e.do(context.Background(), "POST", "/mailboxes/"+box+"/"+verb, body, nil)
	if st != http.StatusInternalServerError || decode[map[string]any](e.t, out)["code"] != "store_error" {
		e.t.Fatalf("%s in %s with a failing store: %d %s, want 500 store_error", verb, box, st, out)
	}
}

func TestFailedAckKeepsTheLease(t *testing.T) {
	e := newEnv(t, Config{})
	e.send("b", "keep me")
	m := e.receive("b", "visibility=1m")[0]

	e.s.failCommits(true)
	e.settleFails("b", "ack", nil, m.Receipt)
	if info := e.info("b"); info.InFlight != 1 || info.Depth != 0 {
		t.Fatalf("after a failed ack: %+v, want the message still in flight", info)
	}
	e.s.failCommits(false)

	// The retry with the same receipt is an ordinary ack.
	if n, res := e.ack("b", m.Receipt); n != 1 || res[0].Status != statusAcked {
		t.Fatalf("retried ack: %d %+v", n, res)
	}
	if info := e.info("b"); info.InFlight != 0 || info.Depth != 0 {
		t.Fatalf("after the ack: %+v", info)
	}
	e.restart()
	if got := e.receive("b", ""); len(got) != 0 {
		t.Fatalf("acked message came back after restart: %+v", got)
	}
}

func TestFailedAckIsRedeliveredAtLeaseExpiry(t *testing.T) {
	e := newEnv(t, Config{})
	id := e.send("b", "again")
	m := e.receive("b", "visibility=200ms")[0]
	e.s.failCommits(true)
	e.settleFails("b", "ack", nil, m.Receipt)
	e.s.failCommits(false)

	again := e.receive("b", "wait=10s")
	if len(again) != 1 || again[0].ID != id || again[0].Deliveries != 2 || again[0].data(t) != "again" {
		t.Fatalf("redelivery after a failed ack: %+v", again)
	}
	if _, res := e.ack("b", m.Receipt); res[0].Status != statusStale {
		t.Fatalf("old receipt after redelivery: %+v", res)
	}
}

// An extend writes nothing (a lease is not durable), so a failing store
// does not stop it.
func TestExtendNeedsNoCommit(t *testing.T) {
	e := newEnv(t, Config{})
	e.send("b", "x")
	m := e.receive("b", "visibility=1m")[0]
	e.s.failCommits(true)
	n, res := e.settle("b", "extend", map[string]any{"visibility": "1h"}, m.Receipt)
	e.s.failCommits(false)
	if n != 1 || res[0].Status != statusExtended {
		t.Fatalf("extend with a failing store: %d %+v", n, res)
	}
	e.s.mu.Lock()
	var until time.Time
	for _, msg := range e.s.ix.msgs {
		until = msg.visibleAt
	}
	e.s.mu.Unlock()
	if time.Until(until) < 50*time.Minute {
		t.Fatalf("extend did not extend the lease (visible in %s)", time.Until(until))
	}
}

func TestFailedNackKeepsTheLease(t *testing.T) {
	for _, delay := range []string{"0s", "1h"} {
		t.Run("delay="+delay, func(t *testing.T) {
			e := newEnv(t, Config{})
			e.send("b", "x")
			m := e.receive("b", "visibility=1m")[0]
			e.s.failCommits(true)
			e.settleFails("b", "nack", map[string]any{"delay": delay}, m.Receipt)
			e.s.failCommits(false)
			if info := e.info("b"); info.InFlight != 1 || info.Depth != 0 {
				t.Fatalf("after a failed nack: %+v, want the message still in flight", info)
			}
			if got := e.receive("b", ""); len(got) != 0 {
				t.Fatalf("failed nack released the message: %+v", got)
			}
			if n, res := e.settle("b", "nack", nil, m.Receipt); n != 1 || res[0].Status != statusNacked {
				t.Fatalf("retried nack: %d %+v", n, res)
			}
			if got := e.receive("b", ""); len(got) != 1 || got[0].Deliveries != 2 {
				t.Fatalf("after the nack: %+v", got)
			}
		})
	}
}

func TestFailedDeadLetterNackStaysInTheBox(t *testing.T) {
	e := newEnv(t, Config{MaxDeliveries: 1})
	id := e.send("jobs", "poison")
	m := e.receive("jobs", "visibility=1m")[0]
	e.s.failCommits(true)
	e.settleFails("jobs", "nack", nil, m.Receipt) // would move it to jobs.dlq
	e.s.failCommits(false)
	if info := e.info("jobs"); info.InFlight != 1 || info.DLQDepth != 0 {
		t.Fatalf("after a failed dead-lettering nack: %+v", info)
	}
	e.settle("jobs", "nack", nil, m.Receipt)
	if info := e.info("jobs"); info.InFlight != 0 || info.Depth != 0 || info.DLQDepth != 1 {
		t.Fatalf("after the nack: %+v", info)
	}
	e.restart()
	if dl := e.receive("jobs.dlq", ""); len(dl) != 1 || dl[0].ID != id || dl[0].data(t) != "poison" {
		t.Fatalf("dead-letter box after restart: %+v", dl)
	}
}

// A first lease writes nothing, so it works on a failing store. Leasing a
// message again while its previous delivery is not on disk needs a commit:
// when that fails, the receive fails and the delivery is not counted.
func TestFailedLeaseDoesNotCountADelivery(t *testing.T) {
	e := newEnv(t, Config{MaxDeliveries: 3})
	e.send("b", "x")
	e.s.failCommits(true)
	if got := e.receive("b", "visibility=1ms"); len(got) != 1 || got[0].Deliveries != 1 {
		t.Fatalf("first lease on a failing store: %+v", got)
	}
	eventually(t, 5*time.Second, "lease expiry", func() bool { return e.info("b").InFlight == 0 })
	st, out := e.do(context.Background(), "POST", "/mailboxes/b/receive", nil, nil)
	e.s.failCommits(false)
	if st != http.StatusInternalServerError {
		t.Fatalf("second lease with a failing store: %d %s", st, out)
	}
	if got := e.receive("b", ""); len(got) != 1 || got[0].Deliveries != 2 {
		t.Fatalf("after a failed lease: %+v", got)
	}
}

// parkedInSelect reports whether a goroutine running fn is blocked in a select.
func parkedInSelect(fn string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) && strings.Contains(strings.SplitN(g, "\n", 2)[0], "[select") {
			return true
		}
	}
	return false
}

// TestCancelledReceiveLeasesNothing wakes a long poll with a new message and
// cancels it before it can run: the receive must answer with its context's
// error and leave the message to the next receiver, undelivered.
func TestCancelledReceiveLeasesNothing(t *testing.T) {
	e := newEnv(t, Config{Amnesia: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		got []delivery
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := e.s.receive(ctx, "b", receiveParams{Max: 1, Visibility: time.Minute, Wait: time.Minute})
		done <- result{got, err}
	}()
	eventually(t, 10*time.Second, "the receive to park in its select", func() bool {
		return e.s.waitersOn("b") == 1 && parkedInSelect("mailbox.(*Server).receive")
	})
	// Under the lock, the wake-up is decided first (the parked select takes
	// the notify case), then the client goes away before the loop resumes.
	e.s.mu.Lock()
	m, err := e.s.ix.addPending(e.s.ix.boxes["b"], []byte("for someone else"), time.Now())
	if err != nil {
		e.s.mu.Unlock()
		t.Fatal(err)
	}
	e.s.ix.makeReady(m)
	cancel()
	e.s.mu.Unlock()

	res := <-done
	if !errors.Is(res.err, context.Canceled) || len(res.got) != 0 {
		t.Fatalf("cancelled receive: %+v, %v; want nothing and context.Canceled", res.got, res.err)
	}
	got := e.receive("b", "")
	if len(got) != 1 || got[0].Deliveries != 1 || got[0].data(t) != "for someone else" {
		t.Fatalf("next receiver got %+v, want the message on its first delivery", got)
	}
}

func TestReceiveWithGoneClientLeasesNothing(t *testing.T) {
	e := newEnv(t, Config{Amnesia: true})
	e.send("b", "x")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := e.s.receive(ctx, "b", receiveParams{Max: 1, Visibility: time.Minute, Wait: time.Minute}); !errors.Is(err, context.Canceled) || len(got) != 0 {
		t.Fatalf("receive for a gone client: %+v, %v", got, err)
	}
	if got := e.receive("b", ""); len(got) != 1 || got[0].Deliveries != 1 {
		t.Fatalf("next receiver got %+v", got)
	}
}
