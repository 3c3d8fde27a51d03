package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/supervisor"
)

// GET /api/v1/services/{name}/logs?follow=1 streams a child's log lines as
// Server-Sent Events rather than answering a long poll: one request lasts
// the whole follow, so a chatty child costs no request per batch against
// the API rate limits, a line goes out as soon as the pipe reader stores it,
// and resuming after a reconnect is the standard Last-Event-ID.
//
// Frames:
//
//	id: <epoch>-<seq>   event: line     data: {"seq":n,"time":...,"stream":...,"text":...}
//	                    event: dropped  data: {"missed":n}   (the follower fell behind the ring)
//	                    event: reset    data: {"epoch":"..."} (the resume id is from an earlier parent run)
//	: heartbeat                                               (every EventsHeartbeat)
//
// Without a resume id the stream starts with the newest ?lines=N lines
// (default DefaultLogLines).

// Log stream frame types.
const (
	LogFrameLine    = "line"
	LogFrameDropped = "dropped"
	LogFrameReset   = "reset"
)

// logsFollowBatch bounds the lines written between two flushes.
const logsFollowBatch = 256

// LogFollower is what the follow stream needs from the supervisor; a
// Services that does not implement it answers follow requests 501.
type LogFollower interface {
	// LogTail returns the ring's epoch and the cursor of the newest n lines.
	LogTail(name string, n int) (epoch string, from uint64, err error)
	// LogsSince returns lines from a cursor without blocking.
	LogsSince(name, epoch string, from uint64, limit int) (supervisor.LogBatch, error)
}

var _ LogFollower = (*supervisor.Supervisor)(nil)

// LogDropped is the data of a `dropped` frame.
type LogDropped struct {
	Missed uint64 `json:"missed"`
}

// LogReset is the data of a `reset` frame.
type LogReset struct {
	Epoch string `json:"epoch"`
}

// logIDRe is <epoch>-<seq>.
var logIDRe = regexp.MustCompile(`^([0-9a-f]{1,16})-([0-9]{1,20})$`)

// ParseLogID splits a log stream id into the ring's epoch and the line's Seq.
func ParseLogID(id string) (epoch string, seq uint64, err error) {
	m := logIDRe.FindStringSubmatch(id)
	if m == nil {
		return "", 0, fmt.Errorf("log line id %q is not <epoch>-<seq>", id)
	}
	seq, err = strconv.ParseUint(m[2], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("log line id %q: %w", id, err)
	}
	return m[1], seq, nil
}

// isLogFollow reports whether r asks for a log stream, which outlives any
// per-request timeout. It runs before routing, so it matches the path itself.
func isLogFollow(r *http.Request) bool {
	p := r.URL.Path
	return r.Method == http.MethodGet && strings.HasPrefix(p, "/api/v1/services/") && strings.HasSuffix(p, "/logs") &&
		truthy(r.URL.Query().Get("follow"))
}

func truthy(v string) bool { return v == "1" || v == "true" }

// handleLogsFollow streams the lines of service name, starting after the
// Last-Event-ID (or ?since=ID) or with its newest n lines.
func (s *Server) handleLogsFollow(w http.ResponseWriter, r *http.Request, name string, n int) {
	f, ok := s.opts.Services.(LogFollower)
	if !ok {
		httpx.Error(w, http.StatusNotImplemented, "", "this node cannot follow logs")
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("since")
	}
	var epoch string
	var from uint64
	var err error
	if last != "" {
		var seq uint64
		if epoch, seq, err = ParseLogID(last); err != nil {
			httpx.Errorf(w, http.StatusBadRequest, "bad_log_id", "Last-Event-ID: %v", err)
			return
		}
		from = seq + 1
	} else if epoch, from, err = f.LogTail(name, n); err != nil {
		writeServiceError(w, "logs", name, err)
		return
	}
	b, err := f.LogsSince(name, epoch, from, logsFollowBatch)
	if err != nil {
		writeServiceError(w, "logs", name, err)
		return
	}

	send := startSSE(w)
	beat := time.NewTicker(s.heartbeat)
	defer beat.Stop()
	for {
		if !send(func(w io.Writer) error { return writeLogBatch(w, b) }) {
			return
		}
		if b.Wait != nil {
			select {
			case <-b.Wait:
			case <-beat.C:
				if !send(func(w io.Writer) error { _, err := io.WriteString(w, ": heartbeat\n\n"); return err }) {
					return
				}
			case <-s.sseStop:
				return
			case <-r.Context().Done():
				return
			}
		}
		if b, err = f.LogsSince(name, b.Epoch, b.Next, logsFollowBatch); err != nil {
			_ = send(func(w io.Writer) error { _, err := io.WriteString(w, ": stream ended\n\n"); return err })
			return
		}
	}
}

// writeLogBatch writes a batch's notices, then its lines.
func writeLogBatch(w io.Writer, b supervisor.LogBatch) error {
	if b.Reset {
		if err := writeLogFrame(w, "", LogFrameReset, LogReset{Epoch: b.Epoch}); err != nil {
			return err
		}
	}
	if b.Missed > 0 {
		if err := writeLogFrame(w, "", LogFrameDropped, LogDropped{Missed: b.Missed}); err != nil {
			return err
		}
	}
	for _, l := range b.Lines {
		id := b.Epoch + "-" + strconv.FormatUint(l.Seq, 10)
		if err := writeLogFrame(w, id, LogFrameLine, logLineOf(l)); err != nil {
			return err
		}
	}
	return nil
}

func writeLogFrame(w io.Writer, id, typ string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", typ, err)
	}
	if id != "" {
		_, err = fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", id, typ, b)
	} else {
		_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b)
	}
	return err
}
