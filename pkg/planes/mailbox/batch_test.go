package mailbox

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

type batchReq struct {
	Body string `json:"body"`
	Key  string `json:"idempotency_key,omitempty"`
}

func (e *env) sendBatch(box string, items ...batchReq) (int, []batchResult) {
	e.t.Helper()
	for i := range items {
		if items[i].Body != "!bad" {
			items[i].Body = base64.StdEncoding.EncodeToString([]byte(items[i].Body))
		}
	}
	body, _ := json.Marshal(map[string]any{"messages": items})
	st, out := e.do(context.Background(), "POST", "/mailboxes/"+box+"/messages:batch", body, nil)
	if st != http.StatusOK {
		return st, nil
	}
	return st, decode[struct{ Results []batchResult }](e.t, out).Results
}

func TestBatchSend(t *testing.T) {
	e := newEnv(t, Config{MaxDepth: 4, MaxMessageBytes: 16})
	earlier := e.send("b", "single") // depth 1
	_, out := e.do(context.Background(), "POST", "/mailboxes/b/messages", []byte("keyed"), map[string]string{"Idempotency-Key": "k0"})
	keyed := decode[map[string]string](t, out)["id"] // depth 2
	st, res := e.sendBatch("b",
		batchReq{Body: "one", Key: "k1"},
		batchReq{Body: "!bad"},
		batchReq{Body: "again", Key: "k0"},        // replay of the single send
		batchReq{Body: "one more", Key: "k1"},     // repeat within the batch
		batchReq{Body: strings.Repeat("x", 17)},   // too large
		batchReq{Body: "two"},                     // depth 4
		batchReq{Body: "three"},                   // over max_depth
		batchReq{Body: "four", Key: "bad\x01key"}, // bad key
	)
	if st != http.StatusOK || len(res) != 8 {
		t.Fatalf("batch: %d %+v", st, res)
	}
	want := []struct {
		status int
		code   string
	}{{201, ""}, {400, "bad_body"}, {200, ""}, {200, ""}, {413, "too_large"}, {201, ""}, {429, "box_full"}, {400, "bad_idempotency_key"}}
	for i, w := range want {
		if res[i].Status != w.status || res[i].Code != w.code || (w.code == "") != (res[i].ID != "") {
			t.Errorf("result %d = %+v, want status %d code %q", i, res[i], w.status, w.code)
		}
	}
	if res[2].ID != keyed || res[3].ID != res[0].ID {
		t.Fatalf("idempotent results %+v / %+v, want ids %s and %s", res[2], res[3], keyed, res[0].ID)
	}
	e.restart() // the batch was durable, its keys too
	got := e.receive("b", "max=10")
	bodies := []string{}
	for _, m := range got {
		bodies = append(bodies, m.data(t))
	}
	if strings.Join(bodies, ",") != "single,keyed,one,two" || got[0].ID != earlier || got[2].ID != res[0].ID {
		t.Fatalf("after restart: %v %+v", bodies, got)
	}
	if _, res := e.sendBatch("b", batchReq{Body: "replayed", Key: "k1"}); res[0].Status != 200 || res[0].ID != got[2].ID {
		t.Fatalf("replay after restart: %+v", res)
	}
}

func TestBatchSendBadRequests(t *testing.T) {
	e := newEnv(t, Config{})
	many := make([]batchReq, maxBatch+1)
	for _, tc := range []struct {
		name, box, body string
		code            string
	}{
		{"not json", "b", "{", "bad_param"},
		{"empty", "b", `{"messages":[]}`, "bad_param"},
		{"too many", "b", func() string { b, _ := json.Marshal(map[string]any{"messages": many}); return string(b) }(), "bad_param"},
		{"dead-letter box", "b.dlq", `{"messages":[{"body":""}]}`, "bad_box"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, out := e.do(context.Background(), "POST", "/mailboxes/"+tc.box+"/messages:batch", []byte(tc.body), nil)
			if st != http.StatusBadRequest || decode[map[string]string](t, out)["code"] != tc.code {
				t.Fatalf("%d %s, want 400 %s", st, out, tc.code)
			}
		})
	}
	if info, ok := e.s.boxInfo("b"); ok && info.Depth != 0 {
		t.Fatalf("a bad batch stored something: %+v", info)
	}
}

// A failed commit fails the whole batch: nothing is stored, and keys are
// free for the retry.
func TestBatchSendCommitFailure(t *testing.T) {
	e := newEnv(t, Config{})
	e.s.failCommits(true)
	st, _ := e.sendBatch("b", batchReq{Body: "a", Key: "k"}, batchReq{Body: "b"})
	e.s.failCommits(false)
	if st != http.StatusInternalServerError {
		t.Fatalf("batch on a failing store: %d", st)
	}
	if info, ok := e.s.boxInfo("b"); ok && info.Depth != 0 {
		t.Fatalf("a failed batch left messages: %+v", info)
	}
	if _, res := e.sendBatch("b", batchReq{Body: "a", Key: "k"}); res[0].Status != http.StatusCreated {
		t.Fatalf("retry after a failed batch: %+v", res)
	}
}

// An empty body is delivered as "" (never null), in both modes.
func TestEmptyBodyIsAnEmptyString(t *testing.T) {
	for name, cfg := range modes() {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, cfg)
			e.send("e", "")
			st, out := e.do(context.Background(), "POST", "/mailboxes/e/receive", nil, nil)
			if st != http.StatusOK || !strings.Contains(string(out), `"body":""`) {
				t.Fatalf("receive of an empty message: %d %s", st, out)
			}
		})
	}
}
