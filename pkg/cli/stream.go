package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/events"
	"github.com/macronode/macronode/pkg/httpx"
)

// stream reads the node's event stream from lastID ("" with history: the
// whole ring first) and calls f for each frame until f fails, the stream
// ends, or ctx ends. It returns the id of the last event seen.
func (cl *client) stream(ctx context.Context, lastID string, history, follow bool, f func(events.Frame) error) (string, error) {
	q := url.Values{}
	if history {
		q.Set("history", "1")
	}
	if !follow {
		q.Set("follow", "0")
	}
	return cl.sse(ctx, admin.EventsPath+"?"+q.Encode(), lastID, follow, f)
}

// sse reads the Server-Sent Events answer of GET path from lastID (sent as
// Last-Event-ID) and calls f for each frame until f fails, the stream ends,
// or ctx ends. It returns the id of the last frame that had one. A
// followed stream that the node ends is errStreamEnded.
func (cl *client) sse(ctx context.Context, path, lastID string, follow bool, f func(events.Frame) error) (string, error) {
	body, err := cl.openSSE(ctx, path, lastID)
	if err != nil {
		return lastID, err
	}
	return readSSE(ctx, body, lastID, follow, f)
}

// openSSE sends GET path (from lastID) and returns the event stream once
// the node has answered 200: from then on, it is subscribed.
func (cl *client) openSSE(ctx context.Context, path, lastID string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cl.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", path, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	if cl.token != "" {
		req.Header.Set("Authorization", "Bearer "+cl.token)
	}
	// No overall timeout: the stream lasts as long as ctx.
	resp, err := (&http.Client{Transport: cl.http.Transport}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("stream %s%s: %w", cl.base, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, &apiError{Status: resp.StatusCode, Body: errorBody(body, resp.StatusCode)}
	}
	return resp.Body, nil
}

// readSSE calls f for each frame of body until f fails, the stream ends, or
// ctx ends, and closes body. It returns the id of the last frame that had
// one; a followed stream that the node ends is errStreamEnded.
func readSSE(ctx context.Context, body io.ReadCloser, lastID string, follow bool, f func(events.Frame) error) (string, error) {
	defer body.Close()
	err := events.ReadSSE(body, func(fr events.Frame) error {
		if fr.ID != "" {
			lastID = fr.ID
		}
		if err := f(fr); err != nil {
			return &handlerError{err}
		}
		return nil
	})
	var he *handlerError
	switch {
	case errors.As(err, &he):
		if errors.Is(he.err, errStopStream) {
			return lastID, nil
		}
		return lastID, he.err
	case ctx.Err() != nil:
		return lastID, nil
	case err == nil && follow:
		return lastID, errStreamEnded
	}
	return lastID, err
}

// handlerError carries a frame handler's own error out of ReadSSE.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }

// errStopStream is returned by a frame handler to end a stream on purpose.
var errStopStream = errors.New("stop stream")

// errStreamEnded: the node closed a followed stream (dropped us, or shut down).
var errStreamEnded = errors.New("event stream ended")

// followEvents keeps a stream open across reconnects, resuming from the last id
// seen, until ctx ends or f fails; a refused request (4xx) ends it.
func (cl *client) followEvents(ctx context.Context, lastID string, history bool, f func(events.Frame) error) error {
	return followSSE(ctx, lastID, func(lastID string) (string, error) {
		return cl.stream(ctx, lastID, history && lastID == "", true, f)
	})
}

// followSSE calls open (one stream from lastID, returning the last id
// seen) again after each transport failure or end of stream, with a
// growing delay, until ctx ends or open ends without error; an error
// answer or a frame handler's own error ends it with that error.
func followSSE(ctx context.Context, lastID string, open func(lastID string) (string, error)) error {
	delay := 100 * time.Millisecond
	for {
		var err error
		lastID, err = open(lastID)
		var ae *apiError
		switch {
		case ctx.Err() != nil, err == nil: // ctx ended, or the handler stopped it
			return nil
		case errors.As(err, &ae) && ae.Status < 500:
			return err
		case !errors.Is(err, errStreamEnded) && !isNetErr(err):
			return err // the handler's own error
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// isNetErr reports whether a stream failed in transport (worth a reconnect).
func isNetErr(err error) bool {
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED)
}

func errorBody(body []byte, status int) (b httpx.ErrorBody) {
	if json.Unmarshal(body, &b) != nil || b.Error == "" {
		b.Error = string(bytes.TrimSpace(body))
		if b.Error == "" {
			b.Error = http.StatusText(status)
		}
	}
	return b
}

// isTTY reports whether w is a terminal.
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
