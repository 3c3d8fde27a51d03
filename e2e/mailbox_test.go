package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The mailbox plane (SPEC §8), driven through the gateway of a running node
// and, once, as a standalone process.

// mailboxServices runs only what the mailbox tests need.
const mailboxServices = "gateway,mailbox"

// mbMessage is one delivered message of a receive answer.
type mbMessage struct {
	ID         string `json:"id"`
	Body       string `json:"body"` // standard base64
	Receipt    string `json:"receipt"`
	Deliveries int    `json:"deliveries"`
	EnqueuedAt string `json:"enqueued_at"`
}

// mbReceiveResp is the answer of POST /mailboxes/{box}/receive.
type mbReceiveResp struct {
	Messages []mbMessage `json:"messages"`
}

// mbAckResp is the answer of POST /mailboxes/{box}/ack.
type mbAckResp struct {
	Acked   int `json:"acked"`
	Results []struct {
		Receipt string `json:"receipt"`
		Status  string `json:"status"`
	} `json:"results"`
}

// mbBoxInfo is the answer of GET /mailboxes/{box}.
type mbBoxInfo struct {
	Box      string `json:"box"`
	Depth    int    `json:"depth"`
	InFlight int    `json:"in_flight"`
	DLQDepth int    `json:"dlq_depth"`
}

// mbDo sends one request with c and reads the whole answer. Safe to call from
// any goroutine: it never touches a testing.T.
func mbDo(c *http.Client, method, u string, body []byte, ctype string) (int, []byte, error) {
	resp, b, err := doHonouring429(c, method, u, body, func(req *http.Request) {
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
	})
	if resp == nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, err
}

// mbSend posts body to box; it returns the status and, on 201, the id.
func mbSend(c *http.Client, base, box string, body []byte) (int, string, error) {
	code, b, err := mbDo(c, "POST", base+"/mailboxes/"+box+"/messages", body, "application/octet-stream")
	if err != nil {
		return code, "", err
	}
	if code != http.StatusCreated {
		return code, "", fmt.Errorf("send to %s: %d %s", box, code, trunc(b))
	}
	var r struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.ID == "" {
		return code, "", fmt.Errorf("send to %s: 201 with bad body %q: %v", box, trunc(b), err)
	}
	return code, r.ID, nil
}

// mbReceive leases up to max messages of box.
func mbReceive(c *http.Client, base, box string, max int, visibility, wait string) ([]mbMessage, error) {
	q := url.Values{"max": {strconv.Itoa(max)}, "visibility": {visibility}, "wait": {wait}}
	code, b, err := mbDo(c, "POST", base+"/mailboxes/"+box+"/receive?"+q.Encode(), nil, "")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("receive from %s: %d %s", box, code, trunc(b))
	}
	var r mbReceiveResp
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("receive from %s: decode %q: %w", box, trunc(b), err)
	}
	return r.Messages, nil
}

// mbAck acknowledges receipts in box.
func mbAck(c *http.Client, base, box string, receipts ...string) (mbAckResp, error) {
	in, _ := json.Marshal(map[string][]string{"receipts": receipts})
	code, b, err := mbDo(c, "POST", base+"/mailboxes/"+box+"/ack", in, "application/json")
	var r mbAckResp
	if err != nil {
		return r, err
	}
	if code != http.StatusOK {
		return r, fmt.Errorf("ack in %s: %d %s", box, code, trunc(b))
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("ack in %s: decode %q: %w", box, trunc(b), err)
	}
	return r, nil
}

// mbInfo fetches GET /mailboxes/{box}; known is false on 404.
func mbInfo(c *http.Client, base, box string) (info mbBoxInfo, known bool, err error) {
	code, b, err := mbDo(c, "GET", base+"/mailboxes/"+box, nil, "")
	if err != nil {
		return info, false, err
	}
	switch code {
	case http.StatusOK:
		if err := json.Unmarshal(b, &info); err != nil {
			return info, false, fmt.Errorf("info %s: decode %q: %w", box, trunc(b), err)
		}
		return info, true, nil
	case http.StatusNotFound:
		return info, false, nil
	default:
		return info, false, fmt.Errorf("info %s: %d %s", box, code, trunc(b))
	}
}

// mbBody decodes a delivered body.
func mbBody(t testing.TB, m mbMessage) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(m.Body)
	if err != nil {
		t.Fatalf("message %s: body %q is not standard base64: %v", m.ID, m.Body, err)
	}
	return string(b)
}

// TestMailboxLeaseRedelivery: an unacked lease ends, the message comes back
// with deliveries 2 and a new receipt, and the old receipt is stale.
func TestMailboxLeaseRedelivery(t *testing.T) {
	n := startNode(t, nodeOpts{services: mailboxServices})
	base := n.gw("")
	const box = "lease"
	if _, _, err := mbSend(client, base, box, []byte("lease me")); err != nil {
		t.Fatal(err)
	}
	msgs, err := mbReceive(client, base, box, 10, "1s", "5s")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("first receive returned %d messages, want 1: %+v", len(msgs), msgs)
	}
	first := msgs[0]
	if first.Deliveries != 1 || mbBody(t, first) != "lease me" || first.Receipt == "" || first.EnqueuedAt == "" {
		t.Fatalf("first delivery = %+v, want deliveries 1, body \"lease me\", a receipt and enqueued_at", first)
	}
	var again mbMessage
	eventually(t, 30*time.Second, func() (bool, string) {
		msgs, err := mbReceive(client, base, box, 10, "30s", "1s")
		if err != nil {
			return false, err.Error()
		}
		if len(msgs) == 0 {
			return false, "not redelivered yet"
		}
		again = msgs[0]
		return true, ""
	})
	if again.ID != first.ID || again.Deliveries != 2 || again.Receipt == first.Receipt || mbBody(t, again) != "lease me" {
		t.Fatalf("redelivery = %+v, want id %s, deliveries 2, a new receipt (old %s), same body", again, first.ID, first.Receipt)
	}
	r, err := mbAck(client, base, box, first.Receipt)
	if err != nil {
		t.Fatalf("ack with the old receipt must answer 200 with a per-receipt status: %v", err)
	}
	if r.Acked != 0 || len(r.Results) != 1 || r.Results[0].Status != "stale" || r.Results[0].Receipt != first.Receipt {
		t.Errorf("ack with the old receipt = %+v, want acked 0 and status \"stale\"", r)
	}
	r, err = mbAck(client, base, box, again.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	if r.Acked != 1 || len(r.Results) != 1 || r.Results[0].Status != "acked" {
		t.Errorf("ack with the new receipt = %+v, want acked 1 and status \"acked\"", r)
	}
	info, known, err := mbInfo(client, base, box)
	if err != nil || (known && (info.Depth != 0 || info.InFlight != 0)) {
		t.Errorf("after the ack the box is %+v (known %v, err %v), want empty", info, known, err)
	}
}

// TestMailboxDeadLetter: a message never acked moves to {box}.dlq after
// max_deliveries (set through the node config) with its body intact.
func TestMailboxDeadLetter(t *testing.T) {
	cfg := "services:\n  mailbox:\n    args: [\"--max-deliveries\", \"2\"]\n"
	n := startNode(t, nodeOpts{services: mailboxServices, config: cfg})
	base := n.gw("")
	const box = "poison"
	body := "poison \x00\xff message"
	_, id, err := mbSend(client, base, box, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	maxSeen := 0
	eventually(t, 30*time.Second, func() (bool, string) {
		msgs, err := mbReceive(client, base, box, 10, "300ms", "1s")
		if err != nil {
			return false, err.Error()
		}
		for _, m := range msgs {
			if m.ID != id {
				t.Fatalf("box %s delivered unexpected message %+v", box, m)
			}
			maxSeen = max(maxSeen, m.Deliveries)
		}
		if len(msgs) > 0 {
			return false, fmt.Sprintf("still delivered (deliveries %d)", msgs[0].Deliveries)
		}
		info, known, err := mbInfo(client, base, box)
		if err != nil {
			return false, err.Error()
		}
		return !known || (info.Depth == 0 && info.InFlight == 0), fmt.Sprintf("box %+v", info)
	})
	if maxSeen != 2 {
		t.Errorf("message was delivered up to %d times before dead-lettering, want exactly max_deliveries=2", maxSeen)
	}
	dlq := box + ".dlq"
	msgs, err := mbReceive(client, base, dlq, 10, "30s", "5s")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("receive from %s returned %d messages, want 1: %+v", dlq, len(msgs), msgs)
	}
	m := msgs[0]
	if m.ID != id || mbBody(t, m) != body || m.Deliveries != 1 {
		t.Errorf("dead letter = %+v (body %q), want id %s, body %q, deliveries 1", m, mbBody(t, m), id, body)
	}
	r, err := mbAck(client, base, dlq, m.Receipt)
	if err != nil || r.Acked != 1 {
		t.Errorf("ack in %s = %+v, %v; want acked 1", dlq, r, err)
	}
	if code, _, err := mbSend(client, base, dlq, []byte("direct")); code != http.StatusBadRequest {
		t.Errorf("direct send to %s = %d %v, want 400", dlq, code, err)
	}
}

// TestMailboxLongPoll: a parked receive returns as soon as a message is sent.
func TestMailboxLongPoll(t *testing.T) {
	n := startNode(t, nodeOpts{services: mailboxServices})
	base := n.gw("")
	const box = "longpoll"
	type result struct {
		msgs []mbMessage
		err  error
		at   time.Time
	}
	done := make(chan result, 1)
	started := time.Now()
	go func() {
		msgs, err := mbReceive(client, base, box, 10, "30s", "10s")
		done <- result{msgs, err, time.Now()}
	}()
	// A receive with a wait makes its box known: that is the black-box sign
	// that the long poll reached the plane.
	eventually(t, 5*time.Second, func() (bool, string) {
		select {
		case r := <-done:
			t.Fatalf("receive returned before anything was sent: %+v %v", r.msgs, r.err)
		default:
		}
		_, known, err := mbInfo(client, base, box)
		return err == nil && known, fmt.Sprintf("box known %v, err %v", known, err)
	})
	sent := time.Now()
	if _, _, err := mbSend(client, base, box, []byte("wake up")); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("long poll still parked 30s after the send")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.msgs) != 1 || mbBody(t, r.msgs[0]) != "wake up" {
		t.Fatalf("long poll returned %+v, want the one message sent", r.msgs)
	}
	t.Logf("long poll: parked %v before the send, returned %v after the send started",
		sent.Sub(started).Round(time.Millisecond), r.at.Sub(sent).Round(time.Millisecond))
	if d := r.at.Sub(started); d >= 5*time.Second {
		t.Errorf("long poll returned %v after it started, want well before its 10s wait ended", d)
	}
}

// TestMailboxStandalone: svc-mailbox run by hand serves its API directly and
// exits 0 on SIGTERM.
func TestMailboxStandalone(t *testing.T) {
	child := startStandalone(t, "svc-mailbox")
	base := child.base
	const box = "solo"
	var ids []string
	for i := 0; i < 3; i++ {
		_, id, err := mbSend(client, base, box, []byte(fmt.Sprintf("solo-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	msgs, err := mbReceive(client, base, box, 10, "30s", "0s")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("receive returned %d messages, want 3: %+v", len(msgs), msgs)
	}
	var receipts []string
	for i, m := range msgs {
		if m.ID != ids[i] || mbBody(t, m) != fmt.Sprintf("solo-%d", i) || m.Deliveries != 1 {
			t.Errorf("message %d = %+v, want id %s body solo-%d deliveries 1 (in send order)", i, m, ids[i], i)
		}
		receipts = append(receipts, m.Receipt)
	}
	r, err := mbAck(client, base, box, receipts...)
	if err != nil || r.Acked != 3 {
		t.Errorf("ack = %+v, %v; want acked 3", r, err)
	}
	info, known, err := mbInfo(client, base, box)
	if err != nil || (known && (info.Depth != 0 || info.InFlight != 0)) {
		t.Errorf("after the acks the box is %+v (known %v, err %v), want empty", info, known, err)
	}
	if m := scrape(t, base+"/metrics"); !strings.Contains(m, "# TYPE") {
		t.Errorf("standalone /metrics is not Prometheus text")
	}
	child.terminate(t)
}
