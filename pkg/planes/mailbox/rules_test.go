package mailbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t, Config{})
	hdr := map[string]string{"Idempotency-Key": "order-42"}
	st, out := e.do(context.Background(), "POST", "/mailboxes/a/messages", []byte("one"), hdr)
	if st != http.StatusCreated {
		t.Fatalf("first send: %d %s", st, out)
	}
	id := decode[map[string]string](t, out)["id"]
	st, out = e.do(context.Background(), "POST", "/mailboxes/a/messages", []byte("one again"), hdr)
	if st != http.StatusOK || decode[map[string]string](t, out)["id"] != id {
		t.Fatalf("replay: %d %s, want 200 with id %s", st, out, id)
	}
	// The same key in another box is a different message.
	st, out = e.do(context.Background(), "POST", "/mailboxes/b/messages", []byte("two"), hdr)
	if st != http.StatusCreated || decode[map[string]string](t, out)["id"] == id {
		t.Fatalf("other box: %d %s", st, out)
	}
	if got := e.receive("a", ""); len(got) != 1 || got[0].data(t) != "one" {
		t.Fatalf("box a holds %+v, want only the first message", got)
	}
	// Remembered across a restart.
	e.restart()
	st, out = e.do(context.Background(), "POST", "/mailboxes/a/messages", []byte("one"), hdr)
	if st != http.StatusOK || decode[map[string]string](t, out)["id"] != id {
		t.Fatalf("replay after restart: %d %s", st, out)
	}
	for _, bad := range []string{strings.Repeat("k", 300), "tab\there"} {
		st, out = e.do(context.Background(), "POST", "/mailboxes/a/messages", []byte("x"), map[string]string{"Idempotency-Key": bad})
		if st != http.StatusBadRequest || !strings.Contains(string(out), "bad_idempotency_key") {
			t.Fatalf("key %q: %d %s", bad, st, out)
		}
	}
}

func TestIdempotencyConcurrentReplays(t *testing.T) {
	e := newEnv(t, Config{})
	hdr := map[string]string{"Idempotency-Key": "same"}
	const n = 8
	type res struct {
		status int
		id     string
	}
	out := make(chan res, n)
	for i := 0; i < n; i++ {
		go func() {
			st, body, err := e.try(context.Background(), "POST", "/mailboxes/i/messages", []byte("x"), hdr)
			var r map[string]string
			if err == nil {
				err = json.Unmarshal(body, &r)
			}
			if err != nil {
				t.Error(err)
			}
			out <- res{st, r["id"]}
		}()
	}
	created, ids := 0, map[string]bool{}
	for i := 0; i < n; i++ {
		r := <-out
		if r.status == http.StatusCreated {
			created++
		} else if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		ids[r.id] = true
	}
	if created != 1 || len(ids) != 1 {
		t.Fatalf("%d created, %d distinct ids; want 1 and 1", created, len(ids))
	}
	if info := e.info("i"); info.Depth != 1 {
		t.Fatalf("box holds %d messages", info.Depth)
	}
}

func TestIdempotencyWindowExpires(t *testing.T) {
	e := newEnv(t, Config{Amnesia: true, IdempotencyWindow: 50 * 1e6})
	hdr := map[string]string{"Idempotency-Key": "k"}
	_, out := e.do(context.Background(), "POST", "/mailboxes/a/messages", []byte("1"), hdr)
	id := decode[map[string]string](t, out)["id"]
	eventually(t, 5e9, "the window to pass", func() bool {
		st, out := e.do(context.Background(), "POST", "/mailboxes/a/messages", []byte("2"), hdr)
		return st == http.StatusCreated && decode[map[string]string](t, out)["id"] != id
	})
}

func TestCaps(t *testing.T) {
	e := newEnv(t, Config{MaxDepth: 2, MaxBoxes: 2, MaxMessageBytes: 16})
	e.send("one", "a")
	e.send("one", "b")
	st, out := e.do(context.Background(), "POST", "/mailboxes/one/messages", []byte("c"), nil)
	if st != http.StatusTooManyRequests || !strings.Contains(string(out), `"box_full"`) {
		t.Fatalf("over max_depth: %d %s", st, out)
	}
	e.send("two", "a")
	st, out = e.do(context.Background(), "POST", "/mailboxes/three/messages", []byte("a"), nil)
	if st != http.StatusTooManyRequests || !strings.Contains(string(out), `"too_many_boxes"`) {
		t.Fatalf("over max_boxes: %d %s", st, out)
	}
	// An emptied box is forgotten to make room.
	m := e.receive("two", "")
	e.ack("two", m[0].Receipt)
	e.send("three", "a")
	st, out = e.do(context.Background(), "POST", "/mailboxes/one/messages", []byte(strings.Repeat("x", 17)), nil)
	if st != http.StatusRequestEntityTooLarge || !strings.Contains(string(out), `"too_large"`) {
		t.Fatalf("over max_message_bytes: %d %s", st, out)
	}
}

func TestBoxNames(t *testing.T) {
	long := strings.Repeat("a", 128)
	cases := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"Orders_2024-01.v2", true},
		{long, true},
		{long + ".dlq", true},
		{"x.dlq", true},
		{"", false},
		{long + "a", false},
		{".hidden", false},
		{"..", false},
		{"a/b", false},
		{"a b", false},
		{"ümlaut", false},
		{"a%2Fb", false},
		{"~other", false},
		{strings.Repeat("a", 129) + ".dlq", false},
	}
	for _, c := range cases {
		if err := ValidateBox(c.name); (err == nil) != c.ok {
			t.Errorf("ValidateBox(%q) = %v, want ok=%v", c.name, err, c.ok)
		}
	}
	e := newEnv(t, Config{Amnesia: true})
	for _, path := range []string{"/mailboxes/.hidden/messages", "/mailboxes/a%20b/receive", "/mailboxes/" + long + "a/ack", "/mailboxes/%C3%BC"} {
		method := "POST"
		if !strings.Contains(path[len("/mailboxes/"):], "/") {
			method = "GET"
		}
		st, out := e.do(context.Background(), method, path, []byte(`{"receipts":["x"]}`), nil)
		if st != http.StatusBadRequest || !strings.Contains(string(out), `"bad_box"`) {
			t.Errorf("%s %s: %d %s", method, path, st, out)
		}
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, Config{Amnesia: true})
	cases := []struct {
		path, body, param string
	}{
		{"/mailboxes/a/receive?max=0", "", "max"},
		{"/mailboxes/a/receive?max=101", "", "max"},
		{"/mailboxes/a/receive?visibility=-1s", "", "visibility"},
		{"/mailboxes/a/receive?wait=21s", "", "wait"},
		{"/mailboxes/a/receive?wait=soon", "", "wait"},
		{"/mailboxes/a/receive?colour=red", "", "colour"},
		{"/mailboxes/a/receive?max=1&max=2", "", "max"},
		{"/mailboxes/a/receive?%zz", "", "query"},
		{"/mailboxes/a/ack", `{"receipts":[]}`, "receipts"},
		{"/mailboxes/a/ack", `{"receipts":["x"],"delay":"1s"}`, "body"},
		{"/mailboxes/a/ack", `not json`, "body"},
		{"/mailboxes/a/nack", `{"receipts":["x"],"delay":"forever"}`, "delay"},
		{"/mailboxes/a/extend", `{"receipts":["x"],"visibility":"0s"}`, "visibility"},
	}
	for _, c := range cases {
		st, out := e.do(context.Background(), "POST", c.path, []byte(c.body), nil)
		if st != http.StatusBadRequest || !strings.Contains(string(out), c.param) {
			t.Errorf("%s %s: %d %s, want 400 naming %q", c.path, c.body, st, out, c.param)
		}
	}
	st, out := e.do(context.Background(), "GET", "/mailboxes/never-used", nil, nil)
	if st != http.StatusNotFound {
		t.Errorf("unknown box: %d %s", st, out)
	}
	st, _ = e.do(context.Background(), "DELETE", "/mailboxes/a", nil, nil)
	if st != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", st)
	}
}

func TestInspection(t *testing.T) {
	e := newEnv(t, Config{})
	e.send("b", "1")
	e.send("b", "2")
	e.send("a", "1")
	e.receive("b", "max=1")
	info := e.info("b")
	if info.Box != "b" || info.Depth != 1 || info.InFlight != 1 || info.OldestAgeSeconds <= 0 || info.DLQDepth != 0 {
		t.Fatalf("info = %+v", info)
	}
	st, out := e.do(context.Background(), "GET", "/mailboxes", nil, nil)
	list := decode[struct{ Boxes []BoxSummary }](t, out).Boxes
	if st != 200 || len(list) != 2 || list[0] != (BoxSummary{Box: "a", Depth: 1}) || list[1] != (BoxSummary{Box: "b", Depth: 1, InFlight: 1}) {
		t.Fatalf("list = %d %+v", st, list)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, Config{Amnesia: true, MetricsMaxBoxes: 2})
	for i := 0; i < 4; i++ {
		e.send(fmt.Sprintf("box%d", i), "x")
	}
	m := e.receive("box0", "")
	e.ack("box0", m[0].Receipt)
	for box, want := range map[string]float64{"box0": 1, "box1": 1, otherBox: 2} {
		if v := metricValue(t, e.reg, "macronode_mailbox_sends_total", box); v != want {
			t.Errorf("sends_total{box=%q} = %v, want %v", box, v, want)
		}
	}
	if v := metricValue(t, e.reg, "macronode_mailbox_acks_total", "box0"); v != 1 {
		t.Errorf("acks_total = %v", v)
	}
	if v := metricValue(t, e.reg, "macronode_mailbox_depth", otherBox); v != 2 {
		t.Errorf("depth{~other} = %v", v)
	}
	if v := metricValue(t, e.reg, "macronode_mailbox_oldest_age_seconds", "box1"); v <= 0 {
		t.Errorf("oldest_age_seconds = %v", v)
	}
}

// metricValue returns the value of name{box=box}, or of the unlabelled
// name when box is empty (-1 if absent).
func metricValue(t *testing.T, reg *prometheus.Registry, name, box string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if box == "" && len(m.GetLabel()) == 0 {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "box" && l.GetValue() == box {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}
