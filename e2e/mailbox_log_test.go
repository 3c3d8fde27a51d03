package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// mbReadyPID waits until the node's svc-mailbox is running and ready with a
// pid other than not, and returns it.
func mbReadyPID(t *testing.T, n *node, not int) int {
	t.Helper()
	pid := 0
	eventually(t, 30*time.Second, func() (bool, string) {
		st, err := n.status()
		s := st.Services["mailbox"]
		if err != nil || s.PID <= 0 || s.PID == not || !s.Ready || s.State != "running" || !isOurMailbox(s.PID) {
			return false, fmt.Sprintf("svc-mailbox %+v (%v)", s, err)
		}
		pid = s.PID
		return true, ""
	})
	return pid
}

// TestMailboxLeaseAfterCrash: a lease is not durable. A message received
// with a 1-hour lease is visible again once svc-mailbox was killed with
// SIGKILL and restarted by the supervisor; its old receipt no longer acks.
func TestMailboxLeaseAfterCrash(t *testing.T) {
	client := &http.Client{Timeout: 10 * time.Second}
	n := startNode(t, nodeOpts{services: mailboxServices})
	base := n.gw("")
	const box = "crashlease"
	code, id, err := mbSend(client, base, box, []byte("leased when it died"))
	if err != nil || code != http.StatusCreated {
		t.Fatalf("send: %d %v", code, err)
	}
	got, err := mbReceive(client, base, box, 1, "1h", "0s")
	if err != nil || len(got) != 1 || got[0].ID != id {
		t.Fatalf("receive: %+v %v", got, err)
	}
	pid := mbReadyPID(t, n, 0)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	mbReadyPID(t, n, pid)
	var again []mbMessage
	eventually(t, 30*time.Second, func() (bool, string) {
		again, err = mbReceive(client, base, box, 1, "30s", "1s")
		return err == nil && len(again) == 1, fmt.Sprintf("receive after the restart: %+v %v", again, err)
	})
	if again[0].ID != id || mbBody(t, again[0]) != "leased when it died" || again[0].Receipt == got[0].Receipt {
		t.Fatalf("after kill -9: %+v, want message %s back with a new receipt", again[0], id)
	}
	if res, err := mbAck(client, base, box, got[0].Receipt); err != nil || res.Acked != 0 {
		t.Fatalf("pre-crash receipt acked after the restart: %+v %v", res, err)
	}
	if res, err := mbAck(client, base, box, again[0].Receipt); err != nil || res.Acked != 1 {
		t.Fatalf("ack after the restart: %+v %v", res, err)
	}
}

type mbBatchResult struct {
	ID     string `json:"id"`
	Status int    `json:"status"`
	Code   string `json:"code"`
}

func mbSendBatch(t *testing.T, c *http.Client, base, box string, bodies []string, keys []string) []mbBatchResult {
	t.Helper()
	type item struct {
		Body string `json:"body"`
		Key  string `json:"idempotency_key,omitempty"`
	}
	items := make([]item, len(bodies))
	for i, b := range bodies {
		items[i] = item{Body: base64.StdEncoding.EncodeToString([]byte(b)), Key: keys[i]}
	}
	req, _ := json.Marshal(map[string]any{"messages": items})
	code, out, err := mbDo(c, http.MethodPost, base+"/mailboxes/"+box+"/messages:batch", req, "application/json")
	if err != nil || code != http.StatusOK {
		t.Fatalf("batch send: %d %s %v", code, out, err)
	}
	var resp struct {
		Results []mbBatchResult `json:"results"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.Results) != len(bodies) {
		t.Fatalf("batch answer %s: %v", out, err)
	}
	return resp.Results
}

// TestMailboxBatchSend: messages:batch through the gateway answers one
// result per message in order; a repeated idempotency key returns the
// first id with 200, also in a later batch; the batch survives a SIGKILL.
func TestMailboxBatchSend(t *testing.T) {
	client := &http.Client{Timeout: 10 * time.Second}
	n := startNode(t, nodeOpts{services: mailboxServices})
	base := n.gw("")
	const box = "batch"
	res := mbSendBatch(t, client, base, box, []string{"a", "b", "c", "a again"}, []string{"ka", "", "kc", "ka"})
	for i, want := range []int{201, 201, 201, 200} {
		if res[i].Status != want || res[i].ID == "" {
			t.Fatalf("result %d = %+v, want status %d with an id", i, res[i], want)
		}
	}
	if res[3].ID != res[0].ID {
		t.Fatalf("repeated key: id %s, want %s", res[3].ID, res[0].ID)
	}
	again := mbSendBatch(t, client, base, box, []string{"c again", "d"}, []string{"kc", "kd"})
	if again[0].Status != 200 || again[0].ID != res[2].ID || again[1].Status != 201 {
		t.Fatalf("second batch: %+v", again)
	}
	pid := mbReadyPID(t, n, 0)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	mbReadyPID(t, n, pid)
	var got []mbMessage
	eventually(t, 30*time.Second, func() (bool, string) {
		msgs, err := mbReceive(client, base, box, 10, "30s", "1s")
		if err == nil {
			got = append(got, msgs...)
		}
		return len(got) >= 4, fmt.Sprintf("received %d of 4 (%v)", len(got), err)
	})
	want := []string{"a", "b", "c", "d"}
	for i, m := range got {
		if mbBody(t, m) != want[i] {
			t.Fatalf("message %d after kill -9: %q, want %q (all: %+v)", i, mbBody(t, m), want[i], got)
		}
	}
}
