package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/httpx"
)

// A body that stalls on any route is answered 408 JSON and its connection
// closed, whatever the server's own timeouts: never the 499 of a client that
// went away, never a hang until the whole-request timeout.
func TestStalledBodyGets408(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return // the gateway gave up on the client's body
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer be.Close()
	cases := []struct{ method, path string }{
		{"PUT", "/names/a"},
		{"POST", "/o"},
		{"POST", "/mailboxes/b/messages"},
	}
	g := newGWTimeouts(t, Config{Backends: map[string]string{"storage": hostOf(be), "index": hostOf(be), "mailbox": hostOf(be)},
		IOIdleTimeout: stallIdle}, time.Minute, time.Minute)
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			start := time.Now()
			res, body, closed := testutil.StallChunked(t, hostOf(g.ts), c.method, c.path, `{"addr`, 10*time.Second)
			if res.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("stalled %s %s: %d %s, want 408", c.method, c.path, res.StatusCode, body)
			}
			var e httpx.ErrorBody
			if err := json.Unmarshal(body, &e); err != nil || e.Code != "request_timeout" {
				t.Errorf("408 body %q: want a JSON error with code request_timeout", body)
			}
			if !closed {
				t.Error("the connection stayed open after the 408")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("answered after %s; the idle timeout is %s", d, stallIdle)
			}
		})
	}
	if n := g.answered(statusClientClosed); n != 0 {
		t.Errorf("%d requests counted 499", n)
	}
}
