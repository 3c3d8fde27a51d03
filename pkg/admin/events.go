package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/macronode/macronode/pkg/events"
	"github.com/macronode/macronode/pkg/httpx"
)

// EventsPath is the Server-Sent Events route (SPEC §5).
const EventsPath = "/api/v1/events"

// SSE limits.
const (
	DefaultEventsHeartbeat = 15 * time.Second // a comment line, so proxies keep the stream open
	eventsQueue            = 256              // a client further behind than this is dropped
	sseWriteTimeout        = 10 * time.Second // one write that takes longer ends the stream
)

// handleEvents streams the events bus as Server-Sent Events. The resume
// point is the Last-Event-ID header (or ?since=ID, for clients that cannot
// set it); a malformed one is 400. A resume point the ring no longer holds,
// or from another boot, gets a `gap` event (no id) and then live events.
// ?history=1 without a resume point replays the ring first; ?follow=0 ends
// the answer after the replay. Every event is `id`, `event` and one `data`
// line holding the event as JSON.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	bus := s.opts.Events
	if bus == nil {
		httpx.Error(w, http.StatusServiceUnavailable, "", "no event stream on this node")
		return
	}
	q := r.URL.Query()
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("since")
	}
	follow := q.Get("follow") != "0" && q.Get("follow") != "false"
	all := q.Get("history") == "1" || !follow
	sub, err := bus.Subscribe(last, all, eventsQueue)
	if errors.Is(err, events.ErrBadID) {
		httpx.Errorf(w, http.StatusBadRequest, "bad_event_id", "Last-Event-ID: %v", err)
		return
	}
	if err != nil {
		httpx.Error(w, http.StatusInternalServerError, "", err.Error())
		return
	}
	defer sub.Close()

	send := startSSE(w)
	if sub.Gap != nil {
		if !send(func(w io.Writer) error { return writeGap(w, sub.Gap) }) {
			return
		}
	}
	for _, ev := range sub.Replay {
		if !send(func(w io.Writer) error { return writeEvent(w, ev) }) {
			return
		}
	}
	if !send(func(io.Writer) error { return nil }) || !follow {
		return
	}
	beat := time.NewTicker(s.heartbeat)
	defer beat.Stop()
	for {
		var ok bool
		select {
		case ev := <-sub.C():
			ok = send(func(w io.Writer) error { return writeEvent(w, ev) })
		case <-beat.C:
			ok = send(func(w io.Writer) error { _, err := io.WriteString(w, ": heartbeat\n\n"); return err })
		case <-sub.Done():
			// Dropped for falling behind, or the bus closed; the client
			// reconnects with its Last-Event-ID.
			_ = send(func(w io.Writer) error { _, err := io.WriteString(w, ": stream ended\n\n"); return err })
			return
		case <-s.sseStop:
			return
		case <-r.Context().Done():
			return
		}
		if !ok {
			return
		}
	}
}

// startSSE answers 200 as an event stream and returns the function that
// writes one piece of it (under a fresh write deadline) and flushes it;
// false means the client is gone.
func startSSE(w http.ResponseWriter) func(write func(io.Writer) error) bool {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return func(write func(io.Writer) error) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout)) // unsupported only under test recorders
		return write(w) == nil && rc.Flush() == nil
	}
}

func writeEvent(w io.Writer, ev events.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	_, err = fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, b)
	return err
}

// writeGap sends the gap event. It carries no id: the client's resume
// point stays where it was until the next real event.
func writeGap(w io.Writer, g *events.GapInfo) error {
	b, err := json.Marshal(struct {
		Type string `json:"type"`
		*events.GapInfo
	}{events.Gap, g})
	if err != nil {
		return fmt.Errorf("encode gap: %w", err)
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", events.Gap, b)
	return err
}
