package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// retryDelay is how long the gateway waits before its one retry of a
// request whose backend connection failed. A plane killed with kill -9 is
// serving again some 15 ms later (the parent restarts it; with the parent
// holding the listening socket, connects wait in its backlog meanwhile), so
// 50 ms covers the restart while a backend that is really down still
// answers 503 within about 50 ms plus two failed connects.
const retryDelay = 50 * time.Millisecond

// retryTransport retries a request once, after retryDelay and against the
// same backend, when the first attempt failed before any byte of a
// response came back and the retry cannot do anything twice:
//
//   - GET and HEAD without a body (idempotent): on any connection failure
//     (refused, reset, closed) before the first response byte;
//   - POST /o (idempotent: the address is the content's hash, a second
//     store of the same bytes is a dedup hit) and a GET or HEAD with a body:
//     only when connecting failed, so that nothing of the body was read and
//     the very same body can be sent again; no body is ever buffered for a
//     retry;
//   - anything else (a POST to /mailboxes or /names, PUT, DELETE...): never.
//
// A timeout is not retried (the backend is there but slow: waiting again
// would double the client's wait), nor is a request whose context has
// ended (the client left or its deadline passed).
type retryTransport struct {
	base    http.RoundTripper
	delay   time.Duration
	retried func() // counts a retry (metrics); nil: not counted
}

// retryClass is what a request allows.
type retryClass int

const (
	retryNever   retryClass = iota
	retryDial               // only when connecting failed
	retryAnyConn            // any connection failure before the first response byte
)

// classify says when req may be retried.
func classifyRetry(req *http.Request) retryClass {
	noBody := req.Body == nil || req.Body == http.NoBody
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		if noBody {
			return retryAnyConn
		}
		return retryDial
	case http.MethodPost:
		if req.URL.Path == "/o" {
			if noBody {
				return retryAnyConn
			}
			return retryDial
		}
	}
	return retryNever
}

// RoundTrip implements http.RoundTripper.
func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	class := classifyRetry(req)
	if class == retryNever {
		return t.base.RoundTrip(req)
	}
	if d, ok := t.base.(*directTransport); ok && d.handles(req) && !hasBody(req) {
		// It reports a failure after the first response byte by its
		// error: no trace (and no copy of the request) needed.
		res, err := d.RoundTrip(req)
		var started responseStartedError
		if err == nil || !retryable(err, class, errors.As(err, &started), req.Context()) {
			return res, err
		}
		if !t.wait(req.Context()) {
			return nil, err
		}
		return d.RoundTrip(req)
	}
	var gotByte atomic.Bool
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotFirstResponseByte: func() { gotByte.Store(true) },
	})
	first := req.WithContext(ctx)
	body := req.Body
	if class == retryDial && body != nil {
		// The transport closes the body on a failed attempt; keep it open
		// for the retry and close it once, after the last attempt.
		first.Body = keepOpen{body}
	}
	res, err := t.base.RoundTrip(first)
	if err == nil || !retryable(err, class, gotByte.Load(), req.Context()) {
		if err != nil && class == retryDial && body != nil {
			_ = body.Close()
		}
		return res, err
	}
	if !t.wait(req.Context()) {
		if body != nil {
			_ = body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(req) // the original body: the base closes it
}

// wait sleeps the retry delay and counts the retry; false when ctx ended
// first (no retry then).
func (t *retryTransport) wait(ctx context.Context) bool {
	timer := time.NewTimer(t.delay)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
	}
	if t.retried != nil {
		t.retried()
	}
	return true
}

// retryable reports whether a first attempt that failed with err may be
// sent again.
func retryable(err error, class retryClass, gotByte bool, ctx context.Context) bool {
	if gotByte || ctx.Err() != nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	if class == retryDial {
		return isDialError(err)
	}
	return true
}

// keepOpen hides Close from the transport's first attempt.
type keepOpen struct {
	rc interface{ Read([]byte) (int, error) }
}

func (k keepOpen) Read(p []byte) (int, error) { return k.rc.Read(p) }
func (keepOpen) Close() error                 { return nil }
