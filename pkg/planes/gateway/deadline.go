package gateway

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// progress replaces the server's whole-request read and write deadlines
// (the runtime's 5-minute ReadTimeout/WriteTimeout) with progress deadlines
// for one /o exchange: each read of the client's body must make progress
// within idle, and so must each write of the response. A 1 GiB stream on a
// slow but steady link is never cut; a client that stalls is.
type progress struct {
	rc   *http.ResponseController
	idle time.Duration
	log  hclog.Logger
	body *progressBody // nil when the request has no body
}

// startProgress clears the server's deadlines on w's connection. Until
// bytes move, only the backend's timeouts apply.
func startProgress(w http.ResponseWriter, idle time.Duration, log hclog.Logger) *progress {
	p := &progress{rc: http.NewResponseController(w), idle: idle, log: log}
	// Once a request's body is read (at once when it has none), the
	// server watches the connection with a background read to notice the
	// client leaving; a read deadline firing there would cancel the
	// request mid-download. So reads have no deadline unless a body read
	// is under way.
	p.setRead(time.Time{})
	p.setWrite(time.Time{})
	return p
}

// finish bounds what the server still does on the connection once the
// handler returned: discarding an unread body rest and flushing the last
// bytes. The server resets the read deadline for the next request itself,
// and the write deadline only when it has a WriteTimeout; without one, none
// must be left behind for the next request on the connection.
func (p *progress) finish(r *http.Request) {
	if p.body != nil && !p.body.done.Load() {
		p.setRead(time.Now().Add(p.idle))
	}
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok && srv.WriteTimeout <= 0 {
		p.setWrite(time.Time{})
		return
	}
	p.setWrite(time.Now().Add(p.idle))
}

// setRead and setWrite ignore an unsupported writer (a test recorder); any
// other failure means the connection is gone, which the next read or write
// reports anyway.
func (p *progress) setRead(t time.Time) { p.check(p.rc.SetReadDeadline(t)) }

func (p *progress) setWrite(t time.Time) { p.check(p.rc.SetWriteDeadline(t)) }

func (p *progress) check(err error) {
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		p.log.Trace("set connection deadline", "error", err)
	}
}

// wrapBody arms the read deadline before each read of body.
func (p *progress) wrapBody(body io.ReadCloser) io.ReadCloser {
	p.body = &progressBody{ReadCloser: body, p: p}
	return p.body
}

// wrapWriter arms the write deadline before each write or flush to w.
func (p *progress) wrapWriter(w http.ResponseWriter) http.ResponseWriter {
	return &progressWriter{ResponseWriter: w, p: p}
}

// progressBody is the client's request body under a progress deadline.
type progressBody struct {
	io.ReadCloser
	p    *progress
	done atomic.Bool // the body ended (EOF or error): reads are no longer ours to bound
}

func (b *progressBody) Read(buf []byte) (int, error) {
	if b.done.Load() {
		return b.ReadCloser.Read(buf)
	}
	b.p.setRead(time.Now().Add(b.p.idle))
	n, err := b.ReadCloser.Read(buf)
	if err != nil {
		// The server's background read starts here (see startProgress).
		b.done.Store(true)
		b.p.setRead(time.Time{})
	}
	return n, err
}

// progressWriter is the response under a progress deadline. FlushError and
// Unwrap keep http.ResponseController (so the proxy's per-write flush) and
// the wrapped writer's other abilities working through it.
type progressWriter struct {
	http.ResponseWriter
	p *progress
}

func (w *progressWriter) Write(b []byte) (int, error) {
	w.p.setWrite(time.Now().Add(w.p.idle))
	return w.ResponseWriter.Write(b)
}

func (w *progressWriter) FlushError() error {
	w.p.setWrite(time.Now().Add(w.p.idle))
	return w.p.rc.Flush()
}

func (w *progressWriter) Flush() { _ = w.FlushError() }

func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
