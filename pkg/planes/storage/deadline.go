package storage

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// progress keeps a long transfer alive while it moves. The child runtime's
// http.Server has whole-request ReadTimeout and WriteTimeout (minutes), which
// would cut a large upload or download on a slow link however steadily it
// progresses. Instead, before each chunk read of an upload body and each
// chunk write of a download (and each chunk of server-side verification),
// touch moves the connection's read and write deadlines to now + the idle
// timeout (--io-idle-timeout): a slow but progressing client is never cut,
// one that stalls for longer than the idle timeout is. Both deadlines move
// together because during a download net/http's background read watches
// the connection, and its read deadline expiring would cancel the request.
type progress struct {
	rc   *http.ResponseController
	idle time.Duration
	off  bool // the ResponseWriter cannot set deadlines (e.g. a test recorder)
}

func newProgress(w http.ResponseWriter, idle time.Duration) *progress {
	return &progress{rc: http.NewResponseController(w), idle: idle}
}

// touch moves both deadlines to now+idle. Errors other than "not supported"
// (a connection already gone) are ignored: the next read or write reports
// them.
func (p *progress) touch() {
	if p.off {
		return
	}
	d := time.Now().Add(p.idle)
	if err := p.rc.SetReadDeadline(d); errors.Is(err, http.ErrNotSupported) {
		p.off = true
		return
	}
	_ = p.rc.SetWriteDeadline(d)
}

// progressReader touches p before every Read of r.
type progressReader struct {
	r io.Reader
	p *progress
}

func (pr progressReader) Read(b []byte) (int, error) {
	pr.p.touch()
	return pr.r.Read(b)
}
