package mailbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/macronode/macronode/internal/testutil"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		runCrashChild(dir) // never returns
	}
	goleak.VerifyTestMain(m)
}

// env is a Server behind a real HTTP listener.
type env struct {
	t   *testing.T
	s   *Server
	ts  *httptest.Server
	reg *prometheus.Registry
	cfg Config
}

// newEnv starts a plane; cfg.DataDir defaults to a fresh temp dir.
func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	if cfg.DataDir == "" && !cfg.Amnesia {
		cfg.DataDir = t.TempDir()
	}
	e := &env{t: t, cfg: cfg}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *env) start() {
	e.t.Helper()
	e.reg = prometheus.NewRegistry()
	s, err := New(e.cfg, nil, e.reg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.s = s
	e.ts = httptest.NewServer(s.Handler())
}

func (e *env) stop() {
	if e.ts != nil {
		e.ts.Close()
		e.ts = nil
	}
	if e.s != nil {
		if err := e.s.Close(); err != nil {
			e.t.Errorf("Close: %v", err)
		}
		e.s = nil
	}
}

// restart closes the plane and opens it again on the same data dir.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.start()
}

type apiMsg struct {
	ID         string `json:"id"`
	Body       string `json:"body"`
	Receipt    string `json:"receipt"`
	Deliveries int    `json:"deliveries"`
	EnqueuedAt string `json:"enqueued_at"`
}

func (m apiMsg) data(t *testing.T) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(m.Body)
	if err != nil {
		t.Fatalf("body %q is not base64: %v", m.Body, err)
	}
	return string(b)
}

type apiResult struct {
	Receipt string `json:"receipt"`
	Status  string `json:"status"`
}

func (e *env) do(ctx context.Context, method, path string, body []byte, hdr map[string]string) (int, []byte) {
	e.t.Helper()
	st, out, err := e.try(ctx, method, path, body, hdr)
	if err != nil {
		e.t.Fatal(err)
	}
	return st, out
}

// try is do without failing the test, for use from other goroutines.
func (e *env) try(ctx context.Context, method, path string, body []byte, hdr map[string]string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("new request: %w", err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("read %s %s: %w", method, path, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return 0, nil, fmt.Errorf("%s %s: content type %q, body %s", method, path, ct, out)
	}
	return resp.StatusCode, out, nil
}

// trySend sends without failing the test; it returns the id on 201.
func (e *env) trySend(box, body string) (string, error) {
	st, out, err := e.try(context.Background(), "POST", "/mailboxes/"+box+"/messages", []byte(body), nil)
	if err != nil {
		return "", err
	}
	var r map[string]string
	if st != http.StatusCreated || json.Unmarshal(out, &r) != nil {
		return "", fmt.Errorf("send to %s: %d %s", box, st, out)
	}
	return r["id"], nil
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// send posts a message and expects 201; it returns the id.
func (e *env) send(box, body string) string {
	e.t.Helper()
	st, out := e.do(context.Background(), "POST", "/mailboxes/"+box+"/messages", []byte(body), nil)
	if st != http.StatusCreated {
		e.t.Fatalf("send to %s: status %d: %s", box, st, out)
	}
	return decode[map[string]string](e.t, out)["id"]
}

// receive calls receive with the raw query and expects 200.
func (e *env) receive(box, query string) []apiMsg {
	e.t.Helper()
	st, out := e.do(context.Background(), "POST", "/mailboxes/"+box+"/receive?"+query, nil, nil)
	if st != http.StatusOK {
		e.t.Fatalf("receive from %s?%s: status %d: %s", box, query, st, out)
	}
	return decode[struct{ Messages []apiMsg }](e.t, out).Messages
}

// settle posts to ack/nack/extend and expects 200.
func (e *env) settle(box, verb string, extra map[string]any, receipts ...string) (int, []apiResult) {
	e.t.Helper()
	req := map[string]any{"receipts": receipts}
	for k, v := range extra {
		req[k] = v
	}
	body, _ := json.Marshal(req)
	st, out := e.do(context.Background(), "POST", "/mailboxes/"+box+"/"+verb, body, nil)
	if st != http.StatusOK {
		e.t.Fatalf("%s in %s: status %d: %s", verb, box, st, out)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		e.t.Fatalf("decode %s: %v", out, err)
	}
	count := map[string]string{"ack": "acked", "nack": "nacked", "extend": "extended"}[verb]
	return decode[int](e.t, raw[count]), decode[[]apiResult](e.t, raw["results"])
}

func (e *env) ack(box string, receipts ...string) (int, []apiResult) {
	e.t.Helper()
	return e.settle(box, "ack", nil, receipts...)
}

func (e *env) info(box string) BoxInfo {
	e.t.Helper()
	st, out := e.do(context.Background(), "GET", "/mailboxes/"+box, nil, nil)
	if st != http.StatusOK {
		e.t.Fatalf("info %s: status %d: %s", box, st, out)
	}
	return decode[BoxInfo](e.t, out)
}

// eventually polls cond until it holds or the deadline passes.
var eventually = testutil.Eventually

// waiters reports how many receives wait on box.
func (s *Server) waitersOn(box string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.ix.boxes[box]; b != nil {
		return b.waiters
	}
	return 0
}
