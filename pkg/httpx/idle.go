package httpx

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// DefaultIOIdleTimeout is io_idle_timeout's default (SPEC §3): the longest a
// request body or a response may make no progress.
const DefaultIOIdleTimeout = 30 * time.Second

// ErrIdle is wrapped by the error of a request body read that made no
// progress within the idle timeout. IsIdle tests for it.
var ErrIdle = errors.New("request body made no progress within the idle timeout")

// IsIdle reports whether err is a body read cut by the idle deadline: ErrIdle,
// or the connection's deadline error itself.
func IsIdle(err error) bool {
	return errors.Is(err, ErrIdle) || errors.Is(err, os.ErrDeadlineExceeded)
}

// Progress replaces a server's whole-request read and write timeouts with
// progress deadlines for one exchange: each read of the request body (through
// Body) must make progress within the idle timeout, and so must each write of
// the response (through Writer). A large transfer on a slow but steady link
// is never cut; a client that stalls is.
//
// While no body read is under way the connection has no read deadline: once
// the body is read, net/http watches the connection with a background read to
// notice the client leaving, and a read deadline firing there would cancel the
// request mid-response.
type Progress struct {
	rc   *http.ResponseController
	idle time.Duration
	off  atomic.Bool // the writer cannot set deadlines (a test recorder)
	body atomic.Pointer[idleBody]
}

// NewProgress clears the server's deadlines on w's connection and returns the
// Progress that bounds the exchange instead. An idle of zero or less leaves
// the server's deadlines alone and Body and Writer return their argument.
func NewProgress(w http.ResponseWriter, idle time.Duration) *Progress {
	p := &Progress{rc: http.NewResponseController(w), idle: idle}
	if idle <= 0 {
		p.off.Store(true)
		return p
	}
	p.setRead(time.Time{})
	p.setWrite(time.Time{})
	return p
}

// Body returns body with the read deadline armed before each read. A read
// that passes it fails with an error for which IsIdle is true.
func (p *Progress) Body(body io.ReadCloser) io.ReadCloser {
	if p.off.Load() || body == nil || body == http.NoBody {
		return body
	}
	b := &idleBody{ReadCloser: body, p: p}
	p.body.Store(b)
	return b
}

// Writer returns w with the write deadline armed before each write or flush.
func (p *Progress) Writer(w http.ResponseWriter) http.ResponseWriter {
	if p.off.Load() {
		return w
	}
	return &idleWriter{ResponseWriter: w, p: p}
}

// Stalled reports whether the body's idle deadline has cut it, or has passed
// during a read still under way. A caller that learns of the failure from
// elsewhere (a cancelled request context, as a proxy's round trip does) can
// tell a stalled client from one that went away.
func (p *Progress) Stalled() bool {
	b := p.body.Load()
	if b == nil {
		return false
	}
	if b.idle.Load() {
		return true
	}
	d := b.readDeadline.Load()
	return d != 0 && time.Now().UnixNano() >= d
}

// Finish bounds what the server still does on the connection once the
// handler has returned: discarding an unread rest of the body and flushing the
// last bytes. The server resets the read deadline for the next request
// itself, and the write deadline only when it has a WriteTimeout; without
// one, none must be left behind for the next request on the connection.
func (p *Progress) Finish(r *http.Request) {
	if p.off.Load() {
		return
	}
	if b := p.body.Load(); b != nil && !b.done.Load() {
		p.setRead(time.Now().Add(p.idle))
	}
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok && srv.WriteTimeout <= 0 {
		p.setWrite(time.Time{})
		return
	}
	p.setWrite(time.Now().Add(p.idle))
}

// touch moves the write deadline to now plus the idle timeout.
func (p *Progress) touch() {
	if !p.off.Load() {
		p.setWrite(time.Now().Add(p.idle))
	}
}

// setRead and setWrite turn deadlines off for a writer that cannot set them
// (a test recorder); any other failure means the connection is gone, which
// the next read or write reports anyway.
func (p *Progress) setRead(t time.Time) {
	if errors.Is(p.rc.SetReadDeadline(t), http.ErrNotSupported) {
		p.off.Store(true)
	}
}

func (p *Progress) setWrite(t time.Time) {
	if errors.Is(p.rc.SetWriteDeadline(t), http.ErrNotSupported) {
		p.off.Store(true)
	}
}

// idleBody is a request body under the progress deadline.
type idleBody struct {
	io.ReadCloser
	p            *Progress
	readDeadline atomic.Int64 // unix nanos of the armed deadline; 0 while no read is under way
	idle         atomic.Bool  // a read passed its deadline
	done         atomic.Bool  // the body ended (EOF or error): reads are no longer ours to bound
}

func (b *idleBody) Read(buf []byte) (int, error) {
	if b.done.Load() || b.p.off.Load() {
		return b.ReadCloser.Read(buf)
	}
	d := time.Now().Add(b.p.idle)
	b.readDeadline.Store(d.UnixNano())
	b.p.setRead(d)
	n, err := b.ReadCloser.Read(buf)
	b.readDeadline.Store(0)
	if err != nil {
		b.done.Store(true)
		b.p.setRead(time.Time{}) // the server's background read starts here
		if errors.Is(err, os.ErrDeadlineExceeded) {
			b.idle.Store(true)
			return n, fmt.Errorf("%w (%s): %w", ErrIdle, b.p.idle, err)
		}
	}
	return n, err
}

// idleWriter is a response under the progress deadline. FlushError and
// Unwrap keep http.ResponseController (so a proxy's per-write flush) and the
// wrapped writer's other abilities working through it.
type idleWriter struct {
	http.ResponseWriter
	p *Progress
}

func (w *idleWriter) Write(b []byte) (int, error) {
	w.p.touch()
	return w.ResponseWriter.Write(b)
}

func (w *idleWriter) FlushError() error {
	w.p.touch()
	return w.p.rc.Flush()
}

func (w *idleWriter) Flush() { _ = w.FlushError() }

func (w *idleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// CapBody answers 413 when r declares a body longer than max bytes and
// reports false; otherwise it caps r.Body at max bytes (a longer read fails
// with an error for which IsTooLarge is true) and reports true.
func CapBody(w http.ResponseWriter, r *http.Request, max int64) bool {
	if r.ContentLength > max {
		Errorf(w, http.StatusRequestEntityTooLarge, "", "request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, max)
		return false
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, max)
	}
	return true
}

// BodyError answers a failed read of a request body capped at max bytes:
// 413 past the cap, 408 when it made no progress within the idle timeout
// (the connection is closed after the answer: the rest of the body will not
// come), else 400 with code bad_body.
func BodyError(w http.ResponseWriter, err error, max int64) {
	switch {
	case IsTooLarge(err):
		Errorf(w, http.StatusRequestEntityTooLarge, "", "request body exceeds the limit of %d bytes", max)
	case IsIdle(err):
		IdleError(w, err)
	default:
		Errorf(w, http.StatusBadRequest, "bad_body", "reading the request body failed: %v", err)
	}
}

// IdleError answers 408 JSON for a body cut by the idle deadline and marks
// the connection to be closed.
func IdleError(w http.ResponseWriter, err error) {
	w.Header().Set("Connection", "close")
	Errorf(w, http.StatusRequestTimeout, "", "%v", err)
}

// ReadBody reads the whole request body, capped at max bytes, each read
// bounded by idle (zero or less: the server's own timeouts). On failure it
// has answered (413, 408 or 400, see BodyError) and returns false.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64, idle time.Duration) ([]byte, bool) {
	p := NewProgress(w, idle)
	defer p.Finish(r)
	r.Body = p.Body(r.Body)
	if !CapBody(w, r, max) {
		return nil, false
	}
	if r.Body == nil {
		return nil, true
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		BodyError(w, err, max)
		return nil, false
	}
	return data, true
}
