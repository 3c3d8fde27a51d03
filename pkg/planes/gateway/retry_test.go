package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestClassifyRetry(t *testing.T) {
	cases := []struct {
		method, path, body string
		want               retryClass
	}{
		{"GET", "/o/b3:ab", "", retryAnyConn},
		{"HEAD", "/o/b3:ab", "", retryAnyConn},
		{"GET", "/names/a", "", retryAnyConn},
		{"GET", "/o/b3:ab", "odd", retryDial},
		{"POST", "/o", "blob", retryDial},
		{"POST", "/o", "", retryAnyConn},
		{"POST", "/mailboxes/box/messages", "m", retryNever},
		{"POST", "/mailboxes/box/messages", "", retryNever},
		{"POST", "/o/b3:ab", "x", retryNever},
		{"PUT", "/names/a", "{}", retryNever},
		{"DELETE", "/names/a", "", retryNever},
	}
	for _, c := range cases {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req := httptest.NewRequest(c.method, "http://backend"+c.path, body)
		if got := classifyRetry(req); got != c.want {
			t.Errorf("%s %s (body %q): class %d, want %d", c.method, c.path, c.body, got, c.want)
		}
	}
}

func TestRetryable(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	live := context.Background()
	cases := []struct {
		name    string
		err     error
		class   retryClass
		gotByte bool
		ctx     context.Context
		want    bool
	}{
		{"refused GET", dial, retryAnyConn, false, live, true},
		{"reset GET", reset, retryAnyConn, false, live, true},
		{"EOF GET", io.ErrUnexpectedEOF, retryAnyConn, false, live, true},
		{"reset after a response byte", reset, retryAnyConn, true, live, false},
		{"timeout", timeout, retryAnyConn, false, live, false},
		{"client gone", reset, retryAnyConn, false, done, false},
		{"refused POST /o", dial, retryDial, false, live, true},
		{"reset POST /o: its body may be half sent", reset, retryDial, false, live, false},
	}
	for _, c := range cases {
		if got := retryable(c.err, c.class, c.gotByte, c.ctx); got != c.want {
			t.Errorf("%s: retryable = %v, want %v", c.name, got, c.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// flakyBase fails its first round trip with err (closing the body, as
// http.Transport does) and answers 200 with the body it read afterwards.
type flakyBase struct {
	err   error
	calls atomic.Int32
}

func (f *flakyBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.calls.Add(1) == 1 {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, f.err
	}
	var b []byte
	if req.Body != nil {
		b, _ = io.ReadAll(req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(string(b))), Request: req}, nil
}

// A POST /o whose connect was refused is sent again with its whole body.
func TestRetryReplaysBodyAfterRefusedConnect(t *testing.T) {
	base := &flakyBase{err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	var retries atomic.Int32
	rt := &retryTransport{base: base, delay: time.Millisecond, retried: func() { retries.Add(1) }}
	req := httptest.NewRequest("POST", "http://backend/o", strings.NewReader("the blob"))
	res, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if string(b) != "the blob" || base.calls.Load() != 2 || retries.Load() != 1 {
		t.Fatalf("got body %q after %d calls, %d retries; want the blob after 2 calls, 1 retry", b, base.calls.Load(), retries.Load())
	}
}

// A client that leaves during the delay ends the wait: no second attempt.
func TestRetryStopsWhenClientLeaves(t *testing.T) {
	base := &flakyBase{err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	rt := &retryTransport{base: base, delay: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", "http://backend/o/x", nil).WithContext(ctx)
	time.AfterFunc(10*time.Millisecond, cancel)
	if _, err := rt.RoundTrip(req); err == nil || base.calls.Load() != 1 {
		t.Fatalf("err %v after %d calls; want the first error after 1 call", err, base.calls.Load())
	}
}

// resetOnce accepts connections and resets the first n of them at once
// (SO_LINGER 0): the backend "dies" under the gateway's first attempt.
type resetOnce struct {
	net.Listener
	left     atomic.Int32
	accepted atomic.Int32
}

func (l *resetOnce) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.accepted.Add(1)
		if l.left.Add(-1) < 0 {
			return c, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}

// Through the gateway: a GET whose backend connection is reset before any
// response byte is answered by the retry; a POST to /mailboxes is not
// retried (503, and the backend saw one connection).
func TestGatewayRetriesIdempotentOnly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := &resetOnce{Listener: ln}
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path)
	}))
	be.Listener = rl
	be.Start()
	defer be.Close()
	addr := hostOf(be)
	g := newGW(t, Config{Backends: map[string]string{"storage": addr, "mailbox": addr}})

	cases := []struct {
		method, path, body string
		status             int
		conns              int32
		retries            float64
		backend            string
	}{
		{"GET", "/o/b3:aa", "", 200, 2, 1, "storage"},
		{"HEAD", "/o/b3:aa", "", 200, 2, 1, "storage"},
		{"POST", "/mailboxes/box/messages", "m", 503, 1, 0, "mailbox"},
	}
	for _, c := range cases {
		g.srv.closeBackends() // every case starts on a fresh connection
		rl.left.Store(1)
		rl.accepted.Store(0)
		before := counterValue(t, g.reg, "macronode_gateway_backend_retries_total", map[string]string{"backend": c.backend})
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		a := g.do(g.req(c.method, c.path, body))
		after := counterValue(t, g.reg, "macronode_gateway_backend_retries_total", map[string]string{"backend": c.backend})
		if a.status != c.status || rl.accepted.Load() != c.conns || after-before != c.retries {
			t.Errorf("%s %s: %d %q over %d connections, %v retries; want %d over %d, %v retries",
				c.method, c.path, a.status, a.raw, rl.accepted.Load(), after-before, c.status, c.conns, c.retries)
		}
	}
}

// A backend that stays down still answers 503 promptly: one retry, then
// the error.
func TestBackendDownAfterRetry(t *testing.T) {
	g := newGW(t, Config{Backends: map[string]string{"storage": closedAddr(t)}})
	start := time.Now()
	a := g.do(g.req("GET", "/o/b3:aa", nil))
	if a.status != 503 {
		t.Fatalf("GET on a down backend: %d %s", a.status, a.raw)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("503 took %s, want about the retry delay (%s)", d, retryDelay)
	}
	if got := counterValue(t, g.reg, "macronode_gateway_backend_retries_total", map[string]string{"backend": "storage"}); got != 1 {
		t.Fatalf("retries = %v, want 1", got)
	}
}

// A backend that dies after the first bytes of its answer is not asked
// again: the request may have had its effect.
func TestNoRetryAfterResponseStarted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_, _ = io.ReadAtLeast(c, make([]byte, 1), 1)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
			_ = c.Close()
		}
	}()
	defer func() { _ = ln.Close(); <-done }()
	g := newGW(t, Config{Backends: map[string]string{"storage": ln.Addr().String()}})
	a := g.do(g.req("GET", "/o/b3:aa", nil))
	retries := counterValue(t, g.reg, "macronode_gateway_backend_retries_total", map[string]string{"backend": "storage"})
	if a.status != 503 || accepted.Load() != 1 || retries != 0 {
		t.Fatalf("GET on a backend dying mid-answer: %d %s over %d connections, %v retries; want 503 over 1, no retry",
			a.status, a.raw, accepted.Load(), retries)
	}
}
