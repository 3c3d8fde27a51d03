package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingListener counts the connections a backend accepts.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// newDirect serves h on a counted listener and returns a directTransport
// to it whose fallback answers 299.
func newDirect(t *testing.T, h http.HandlerFunc) (*directTransport, *countingListener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	ts := httptest.NewUnstartedServer(h)
	ts.Listener = cl
	ts.Start()
	t.Cleanup(ts.Close)
	next := roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 299, Body: http.NoBody}, nil
	})
	dt := &directTransport{host: hostOf(ts), dial: (&net.Dialer{}).DialContext, headerTimeout: time.Second, maxIdle: 4, next: next}
	t.Cleanup(dt.CloseIdleConnections)
	return dt, cl, ts.URL
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func roundTrip(t *testing.T, rt http.RoundTripper, req *http.Request) (int, string, error) {
	t.Helper()
	res, err := rt.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	return res.StatusCode, string(b), err
}

// Sequential GETs, HEADs and small POSTs share one backend connection; a
// request with a body of unknown length or over directBodyMax goes to the
// fallback transport.
func TestDirectReusesConnection(t *testing.T) {
	dt, cl, url := newDirect(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Test"))
	})
	for i, c := range []struct{ method, want string }{{"GET", "GET /o/a v"}, {"HEAD", ""}, {"GET", "GET /o/a v"}} {
		req, _ := http.NewRequest(c.method, url+"/o/a", nil)
		req.Header.Set("X-Test", "v")
		code, body, err := roundTrip(t, dt, req)
		if err != nil || code != 200 || body != c.want {
			t.Fatalf("request %d %s: %d %q %v, want 200 %q", i, c.method, code, body, err, c.want)
		}
	}
	if n := cl.n.Load(); n != 1 {
		t.Fatalf("backend accepted %d connections, want 1", n)
	}
	for _, c := range []struct {
		name   string
		body   io.Reader
		length int64
		want   int
	}{
		{"small body of known length", strings.NewReader("blob"), 4, 200},
		{"body of unknown length", io.MultiReader(strings.NewReader("blob")), -1, 299},
		{"body over directBodyMax", strings.NewReader(strings.Repeat("b", directBodyMax+1)), directBodyMax + 1, 299},
	} {
		req, _ := http.NewRequest("POST", url+"/o", c.body)
		req.ContentLength = c.length
		if code, _, err := roundTrip(t, dt, req); code != c.want {
			t.Fatalf("POST with a %s: %d %v, want %d", c.name, code, err, c.want)
		}
	}
	if n := cl.n.Load(); n != 1 {
		t.Fatalf("backend accepted %d connections, want 1", n)
	}
}

// A request with a body goes out whole on a pooled connection that is still
// open; one the backend closed while idle is dropped before the body is
// sent (the request is never sent twice), and a backend that dies after
// reading it fails the request without a second attempt.
func TestDirectBodiedRequests(t *testing.T) {
	var calls atomic.Int32
	var die atomic.Bool
	dt, cl, url := newDirect(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		calls.Add(1)
		if die.Load() {
			panic(http.ErrAbortHandler) // the connection is cut before any answer
		}
		_, _ = io.WriteString(w, r.Method+" "+string(b)+" "+errString(err))
	})
	post := func(body string) (int, string, error) {
		req, _ := http.NewRequest("POST", url+"/mailboxes/a/messages", strings.NewReader(body))
		return roundTrip(t, dt, req)
	}
	if code, body, err := post("m1"); code != 200 || body != "POST m1 " || err != nil {
		t.Fatalf("first POST: %d %q %v", code, body, err)
	}
	dt.mu.Lock()
	_ = dt.idle[0].c.(*net.TCPConn).CloseRead()
	_ = dt.idle[0].c.(*net.TCPConn).CloseWrite()
	dt.mu.Unlock()
	if code, body, err := post("m2"); code != 200 || body != "POST m2 " || err != nil {
		t.Fatalf("POST after the pooled connection closed: %d %q %v, want a fresh connection and 200", code, body, err)
	}
	if n := cl.n.Load(); n != 2 {
		t.Fatalf("backend accepted %d connections, want 2", n)
	}
	die.Store(true)
	before := calls.Load()
	if _, _, err := post("m3"); err == nil {
		t.Fatal("POST to a backend that died before answering succeeded")
	}
	if n := calls.Load() - before; n != 1 {
		t.Fatalf("the backend saw the POST %d times, want exactly 1", n)
	}
}

func errString(err error) string {
	if err != nil {
		return err.Error()
	}
	return ""
}

// A body closed before its end closes the connection at once (no drain of
// the rest), and the next request dials anew.
func TestDirectEarlyCloseDropsConnection(t *testing.T) {
	dt, _, url := newDirect(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000000")
		_, _ = w.Write(make([]byte, 64<<10))
		<-r.Context().Done() // the rest never comes
	})
	req, _ := http.NewRequest("GET", url+"/o/big", nil)
	res, err := dt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = res.Body.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close of a partly read body hangs: it drains the rest")
	}
	if len(dt.idle) != 0 {
		t.Fatalf("%d pooled connections after an early close, want 0", len(dt.idle))
	}
}

// A pooled connection the backend closed while idle is redialled at once;
// a backend slower than headerTimeout fails with a timeout; a cancelled
// context ends the wait.
func TestDirectFailures(t *testing.T) {
	var slow atomic.Bool
	dt, cl, url := newDirect(t, func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	get := func(ctx context.Context) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/o/a", nil)
		return roundTrip(t, dt, req)
	}
	if code, _, err := get(context.Background()); code != 200 || err != nil {
		t.Fatalf("first GET: %d %v", code, err)
	}
	// Close the pooled connection under the transport, as an idle timeout would.
	dt.mu.Lock()
	_ = dt.idle[0].c.(*net.TCPConn).CloseRead()
	_ = dt.idle[0].c.(*net.TCPConn).CloseWrite()
	dt.mu.Unlock()
	if code, body, err := get(context.Background()); code != 200 || body != "ok" || err != nil {
		t.Fatalf("GET on a stale pooled connection: %d %q %v, want a redial and 200", code, body, err)
	}
	if n := cl.n.Load(); n != 2 {
		t.Fatalf("backend accepted %d connections, want 2", n)
	}

	slow.Store(true)
	dt.headerTimeout = 100 * time.Millisecond
	_, _, err := get(context.Background())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("slow backend: %v, want a timeout error", err)
	}
	dt.headerTimeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := get(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("cancelled request: %v after %s, want the context's error at once", err, time.Since(start))
	}
}
