package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// directIdleMax is how long a pooled backend connection may stay idle
// before it is closed rather than reused: well under the child runtime's
// 2-minute server IdleTimeout, so the backend rarely closes one under us.
const directIdleMax = 60 * time.Second

// directBodyMax is the largest request body directTransport sends itself
// (a mailbox message, a name record, a small blob); a larger one, or one of
// unknown length, goes to http.Transport.
const directBodyMax = 64 << 10

// directTransport makes round trips to one plain-HTTP backend on the
// caller's goroutine: it writes the request and reads the response over a
// pooled keep-alive connection itself. http.Transport hands every round trip
// to two goroutines of its own (a connection's read and write loops), and on
// a small blob or a mailbox message those handoffs were a large part of the
// gateway's cost. It takes bodiless requests and requests whose body has a
// known length of at most directBodyMax; anything else (a larger or chunked
// body, an https backend) goes to next.
//
// A request with a body is written whole (headers and body) before the
// response is read, and is never sent twice: its body has been consumed.
// So a pooled connection is checked before such a request goes out on it
// (alive: a non-blocking peek), and one the backend has closed while idle
// is dropped instead of failing the request; the time the request body may
// take to arrive is bounded by the client's idle deadline and the request's
// context, and headerTimeout starts once it is sent.
//
// Semantics match http.Transport's where the gateway relies on them: a
// dial error is a *net.OpError with Op "dial"; waiting for the response
// headers past headerTimeout is a net.Error whose Timeout() is true; the
// request's context ending closes the connection and fails the read; a
// reused connection that fails before any response byte (the backend
// closed it while idle, or died) is redialled once at once when the request
// has no body; 1xx answers are
// skipped; a connection goes back to the pool only once its response body
// was read to the end and neither side asked to close it.
type directTransport struct {
	host          string // the backend's host:port
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	headerTimeout time.Duration
	maxIdle       int
	next          http.RoundTripper

	mu     sync.Mutex
	idle   []*directConn // most recently used last
	closed bool
}

type directConn struct {
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
}

// RoundTrip implements http.RoundTripper.
func (t *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.handles(req) {
		return t.next.RoundTrip(req)
	}
	bodied := hasBody(req)
	if bodied {
		// As http.Transport does, the body is closed once the round trip
		// is over, whatever its outcome.
		defer func() { _ = req.Body.Close() }()
	}
	for attempt := 0; ; attempt++ {
		dc, reused, err := t.get(req.Context(), bodied)
		if err != nil {
			return nil, err
		}
		res, gotByte, err := t.exchange(req, dc, bodied)
		switch {
		case err == nil:
			return res, nil
		case gotByte:
			return nil, responseStartedError{err}
		case bodied || !reused || attempt > 0 || req.Context().Err() != nil:
			return nil, err
		}
	}
}

// handles reports whether RoundTrip makes req itself (else next does): no
// body or a small one of known length, to this plain-HTTP backend.
func (t *directTransport) handles(req *http.Request) bool {
	if req.URL.Scheme != "http" || req.URL.Host != t.host {
		return false
	}
	return !hasBody(req) || req.ContentLength > 0 && req.ContentLength <= directBodyMax
}

func hasBody(req *http.Request) bool { return req.Body != nil && req.Body != http.NoBody }

// responseStartedError is a round trip that failed after the first byte
// of a response had come: retryTransport never sends it again.
type responseStartedError struct{ err error }

func (e responseStartedError) Error() string { return e.err.Error() }
func (e responseStartedError) Unwrap() error { return e.err }

// exchange writes req on dc and reads the response headers. On error dc is
// closed; gotByte tells whether any byte of a response had come.
func (t *directTransport) exchange(req *http.Request, dc *directConn, bodied bool) (res *http.Response, gotByte bool, err error) {
	ctx := req.Context()
	stop := context.AfterFunc(ctx, func() { _ = dc.c.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, bool, error) {
		stop()
		_ = dc.c.Close()
		if ctx.Err() != nil {
			return nil, gotByte, ctx.Err()
		}
		return nil, gotByte, err
	}
	if t.headerTimeout > 0 && !bodied {
		_ = dc.c.SetDeadline(time.Now().Add(t.headerTimeout))
	}
	if err := req.Write(dc.bw); err != nil {
		return fail(err)
	}
	if err := dc.bw.Flush(); err != nil {
		return fail(err)
	}
	if t.headerTimeout > 0 && bodied {
		_ = dc.c.SetDeadline(time.Now().Add(t.headerTimeout))
	}
	if _, err := dc.br.Peek(1); err != nil {
		return fail(err)
	}
	gotByte = true
	if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.GotFirstResponseByte != nil {
		trace.GotFirstResponseByte()
	}
	for {
		res, err = http.ReadResponse(dc.br, req)
		if err != nil {
			return fail(err)
		}
		if res.StatusCode >= 200 || res.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// An interim 1xx answer: the final one follows.
	}
	_ = dc.c.SetDeadline(time.Time{})
	if ctx.Err() != nil {
		// Cancelled while the deadline above was being cleared: the
		// cancellation's own deadline may have been undone.
		return fail(ctx.Err())
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("backend switched protocols on a plain GET"))
	}
	body := &directBody{rc: res.Body, t: t, dc: dc, stop: stop, reuse: !res.Close && !req.Close}
	body.eof = res.Body == http.NoBody // HEAD, 204, 304: nothing to read
	res.Body = body
	return res, true, nil
}

// get returns a pooled connection (reused) or dials a new one. With check
// set, a pooled connection is used only when alive says so.
func (t *directTransport) get(ctx context.Context, check bool) (dc *directConn, reused bool, err error) {
	now := time.Now()
	t.mu.Lock()
	for len(t.idle) > 0 {
		dc = t.idle[len(t.idle)-1]
		t.idle = t.idle[:len(t.idle)-1]
		if now.Sub(dc.lastUsed) < directIdleMax && (!check || dc.alive()) {
			t.mu.Unlock()
			return dc, true, nil
		}
		_ = dc.c.Close()
	}
	t.mu.Unlock()
	c, err := t.dial(ctx, "tcp", t.host)
	if err != nil {
		return nil, false, err
	}
	return &directConn{c: c, br: bufio.NewReaderSize(c, 8<<10), bw: bufio.NewWriterSize(c, 4<<10)}, false, nil
}

// put pools dc, or closes it when the pool is full or closed.
func (t *directTransport) put(dc *directConn) {
	dc.lastUsed = time.Now()
	t.mu.Lock()
	if !t.closed && len(t.idle) < t.maxIdle {
		t.idle = append(t.idle, dc)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	_ = dc.c.Close()
}

// CloseIdleConnections closes the pooled connections; later round trips
// dial anew.
func (t *directTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, dc := range idle {
		_ = dc.c.Close()
	}
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// directBody is a response body on a pooled connection: read to its end
// (and not marked close), the connection goes back to the pool; closed
// early or failed, the connection is closed.
type directBody struct {
	rc    io.ReadCloser
	t     *directTransport
	dc    *directConn
	stop  func() bool
	reuse bool
	mu    sync.Mutex
	eof   bool
	done  bool
}

func (b *directBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.mu.Lock()
		b.eof = true
		b.mu.Unlock()
	}
	return n, err
}

func (b *directBody) Close() error {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return nil
	}
	b.done = true
	eof := b.eof
	b.mu.Unlock()
	// stop reports false once the context's cancel has fired (or is
	// firing) on this connection: it cannot be reused then.
	if b.stop() && eof && b.reuse {
		if err := b.rc.Close(); err != nil {
			_ = b.dc.c.Close()
			return err
		}
		b.t.put(b.dc)
		return nil
	}
	// Closing the connection first makes the body's Close, which would
	// read the rest of a large body to its end, fail at once instead.
	_ = b.dc.c.Close()
	_ = b.rc.Close()
	return nil
}
