package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// isOurMailbox reports whether pid is a live svc-mailbox from the bin dir,
// so the chaos killer never signals a recycled pid.
func isOurMailbox(pid int) bool {
	if pid <= 0 || !alive(pid) {
		return false
	}
	want := bin("svc-mailbox")
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	argv := procArgv(pid)
	return exe == want || (len(argv) > 0 && argv[0] == want)
}

// mbSeen is one delivery of a body observed by a consumer.
type mbSeen struct {
	id         string
	deliveries int
}

// TestMailboxChaos: 8 producers send for 8 seconds while svc-mailbox is
// killed with SIGKILL every 2 s. Consumers then receive and ack until the box
// is empty. Every acknowledged send is received; duplicates are counted and
// come only from redelivery.
func TestMailboxChaos(t *testing.T) {
	const (
		producers  = 8
		consumers  = 4
		sendFor    = 8 * time.Second
		killEvery  = 2 * time.Second
		box        = "chaos"
		drainLimit = 3 * time.Minute
	)
	n := startNode(t, nodeOpts{services: mailboxServices})
	base := n.gw("")
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	short := &http.Client{Timeout: 2 * time.Second, Transport: tr}

	var (
		mu        sync.Mutex
		acked     = map[string]string{} // body -> id, for every 201
		attempted = map[string]bool{}   // every body a producer tried to send
		failures  = map[string]int{}    // non-201 outcomes by kind
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("p%d-%06d", p, i)
				mu.Lock()
				attempted[body] = true
				mu.Unlock()
				code, id, err := mbSend(short, base, box, []byte(body))
				mu.Lock()
				switch {
				case code == http.StatusCreated && err == nil:
					acked[body] = id
				case code == 0:
					failures["transport error"]++
				default:
					failures[strconv.Itoa(code)]++
				}
				mu.Unlock()
				if code != http.StatusCreated {
					// mbSend already honoured any 429's Retry-After; do not
					// spin while the plane restarts (workload pacing).
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(p)
	}

	// The killer: one SIGKILL every killEvery, each to a ready, new svc-mailbox.
	var kills atomic.Int32
	killErr := make(chan string, 16)
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		end := start.Add(sendFor)
		last := 0
		for k := 0; ; k++ {
			at := start.Add(killEvery/2 + time.Duration(k)*killEvery)
			if !at.Before(end) {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Until(at)):
			}
			for {
				st, err := n.status()
				s := st.Services["mailbox"]
				if err == nil && s.PID > 0 && s.PID != last && s.Ready && s.State == "running" && isOurMailbox(s.PID) {
					if err := syscall.Kill(s.PID, syscall.SIGKILL); err != nil {
						killErr <- fmt.Sprintf("kill -9 %d: %v", s.PID, err)
					} else {
						kills.Add(1)
						last = s.PID
					}
					break
				}
				if time.Now().After(end) {
					return
				}
				time.Sleep(pollEvery)
			}
		}
	}()
	time.Sleep(sendFor) // workload duration, not synchronization
	close(stop)
	wg.Wait()
	close(killErr)
	for e := range killErr {
		t.Errorf("killer: %s", e)
	}
	if k := kills.Load(); k < 3 {
		t.Fatalf("only %d SIGKILLs hit svc-mailbox during the %v run, want >= 3", k, sendFor)
	}
	if len(acked) == 0 {
		t.Fatalf("no send was acknowledged during the chaos run (failures %v)", failures)
	}
	ids := map[string]string{}
	for body, id := range acked {
		if other, dup := ids[id]; dup {
			t.Errorf("id %s answered 201 for two bodies: %q and %q", id, other, body)
		}
		ids[id] = body
	}

	n.waitReady(readyTimeout)

	// Drain: consumers receive and ack until the box stays empty.
	long := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	var (
		seenMu    sync.Mutex
		seen      = map[string][]mbSeen{} // body -> every delivery
		received  int
		ackIssues []string
		errs      []string
	)
	deadline := time.Now().Add(drainLimit)
	for c := 0; c < consumers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			empties := 0
			for time.Now().Before(deadline) {
				msgs, err := mbReceive(long, base, box, 10, "30s", "1s")
				if err != nil {
					seenMu.Lock()
					errs = append(errs, err.Error())
					seenMu.Unlock()
					time.Sleep(100 * time.Millisecond)
					continue
				}
				if len(msgs) == 0 {
					empties++
					if empties >= 3 {
						info, known, err := mbInfo(long, base, box)
						if err == nil && (!known || info.Depth == 0 && info.InFlight == 0) {
							return
						}
					}
					continue
				}
				empties = 0
				receipts := make([]string, 0, len(msgs))
				seenMu.Lock()
				for _, m := range msgs {
					b, err := base64.StdEncoding.DecodeString(m.Body)
					if err != nil {
						errs = append(errs, fmt.Sprintf("message %s: body %q is not base64: %v", m.ID, m.Body, err))
						continue
					}
					seen[string(b)] = append(seen[string(b)], mbSeen{id: m.ID, deliveries: m.Deliveries})
					received++
					receipts = append(receipts, m.Receipt)
				}
				seenMu.Unlock()
				r, err := mbAck(long, base, box, receipts...)
				seenMu.Lock()
				if err != nil {
					ackIssues = append(ackIssues, err.Error())
				} else {
					for _, res := range r.Results {
						if res.Status != "acked" {
							ackIssues = append(ackIssues, fmt.Sprintf("receipt %s: %s", res.Receipt, res.Status))
						}
					}
				}
				seenMu.Unlock()
			}
		}()
	}
	wg.Wait()
	info, known, err := mbInfo(long, base, box)
	if err != nil || (known && (info.Depth != 0 || info.InFlight != 0)) {
		t.Fatalf("box not drained within %v: %+v known=%v err=%v (receive errors: %v)", drainLimit, info, known, err, errs)
	}
	if len(errs) > 0 {
		t.Logf("receive errors during the drain (retried): %d, first: %s", len(errs), errs[0])
	}
	if len(ackIssues) > 0 {
		t.Errorf("acks of freshly leased messages not all \"acked\": %d, e.g. %v", len(ackIssues), ackIssues[:min(5, len(ackIssues))])
	}

	lost := 0
	for body, id := range acked {
		if len(seen[body]) == 0 {
			lost++
			if lost <= 10 {
				t.Errorf("body %q answered 201 (id %s) but was never received", body, id)
			}
		}
	}
	duplicates, redelivered, storedUnacked := 0, 0, 0
	for body, ds := range seen {
		if !attempted[body] {
			t.Errorf("received body %q that no producer sent (ids %+v)", body, ds)
			continue
		}
		if id, ok := acked[body]; ok && ds[0].id != id {
			t.Errorf("body %q answered 201 with id %s but was received as id %s", body, id, ds[0].id)
		}
		if _, ok := acked[body]; !ok {
			storedUnacked++
		}
		for _, d := range ds {
			if d.deliveries > 1 {
				redelivered++
			}
		}
		if len(ds) == 1 {
			continue
		}
		duplicates += len(ds) - 1
		sort.Slice(ds, func(i, j int) bool { return ds[i].deliveries < ds[j].deliveries })
		for i := 1; i < len(ds); i++ {
			if ds[i].id != ds[0].id {
				t.Errorf("body %q received as two different messages (ids %s and %s): a second copy, not a redelivery", body, ds[0].id, ds[i].id)
			}
			if ds[i].deliveries <= ds[i-1].deliveries {
				t.Errorf("body %q (id %s) received twice with deliveries %d and %d: a duplicate that is not a redelivery", body, ds[0].id, ds[i-1].deliveries, ds[i].deliveries)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged sends were lost", lost, len(acked))
	}
	t.Logf("chaos: kills=%d attempted=%d sent-acked(201)=%d failed=%v received=%d distinct=%d duplicates=%d deliveries>1=%d stored-but-not-acked=%d",
		kills.Load(), len(attempted), len(acked), failures, received, len(seen), duplicates, redelivered, storedUnacked)
}
