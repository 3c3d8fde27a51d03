package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestStalledBodyThroughGateway: a client that starts a chunked body and
// stops sending is answered 408 JSON by the gateway within io_idle_timeout
// (set short here through the gateway's flags), on /names and on /o alike,
// and its connection is closed: never the non-standard 499, never a hang
// until the server's whole-request timeout.
func TestStalledBodyThroughGateway(t *testing.T) {
	n := startNode(t, nodeOpts{
		services: "storage,index,gateway",
		config:   "services:\n  gateway:\n    args: [\"--io-idle-timeout\", \"500ms\"]\n",
	})
	for _, c := range []struct{ method, path string }{
		{"PUT", "/names/stalled"},
		{"POST", "/o"},
	} {
		t.Run(c.path, func(t *testing.T) {
			start := time.Now()
			status, body, closed := stallChunked(t, n.addrs["gateway"], c.method, c.path)
			if status != http.StatusRequestTimeout {
				t.Fatalf("stalled %s %s: %d %s, want 408", c.method, c.path, status, body)
			}
			var e struct{ Error, Code string }
			if err := json.Unmarshal(body, &e); err != nil || e.Code != "request_timeout" || e.Error == "" {
				t.Errorf("408 body %q: want a JSON error with code request_timeout", body)
			}
			if !closed {
				t.Error("the gateway kept the connection open after the 408")
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("answered after %s with a 500ms idle timeout", d)
			}
		})
	}
	// The node is still healthy, and the stall was not a backend failure.
	if code, _, err := n.readyz(); err != nil || code != 200 {
		t.Errorf("/readyz after the stalls: %d %v", code, err)
	}
}

// stallChunked sends a chunked request whose body stops after one chunk and
// returns the answer's status and body, and whether the connection was then
// closed.
func stallChunked(t *testing.T, addr, method, path string) (int, []byte, bool) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	first := `{"addr`
	if _, err := io.WriteString(conn, method+" "+path+" HTTP/1.1\r\nHost: "+addr+"\r\n"+
		"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+
		strconv.FormatInt(int64(len(first)), 16)+"\r\n"+first+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s %s with a stalled body: no answer: %v", method, path, err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = br.ReadByte()
	return res.StatusCode, body, errors.Is(err, io.EOF)
}
