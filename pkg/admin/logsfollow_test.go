package admin

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/events"
	"github.com/macronode/macronode/pkg/supervisor"
)

// fakeFollower is fakeServices with a log of storage lines (Seq = index+1,
// epoch "e1") of which lines before keepFrom count as rotated out.
type fakeFollower struct {
	fakeServices
	fmu      sync.Mutex
	lines    []supervisor.LogLine
	keepFrom uint64
	wake     chan struct{}
}

func (f *fakeFollower) add(texts ...string) {
	f.fmu.Lock()
	defer f.fmu.Unlock()
	for _, t := range texts {
		f.lines = append(f.lines, supervisor.LogLine{Seq: uint64(len(f.lines) + 1), Stream: "stdout", Text: t})
	}
	if f.wake != nil {
		close(f.wake)
		f.wake = nil
	}
}

func (f *fakeFollower) LogTail(name string, n int) (string, uint64, error) {
	if name != "storage" {
		return "", 0, supervisor.ErrUnknownService
	}
	f.fmu.Lock()
	defer f.fmu.Unlock()
	return "e1", uint64(max(len(f.lines)+1-n, int(f.keepFrom), 1)), nil
}

func (f *fakeFollower) LogsSince(name, epoch string, from uint64, limit int) (supervisor.LogBatch, error) {
	if name != "storage" {
		return supervisor.LogBatch{}, supervisor.ErrUnknownService
	}
	f.fmu.Lock()
	defer f.fmu.Unlock()
	b := supervisor.LogBatch{Epoch: "e1"}
	oldest := max(f.keepFrom, 1)
	if epoch != "e1" {
		b.Reset, from = true, oldest
	} else if from < oldest {
		b.Missed, from = oldest-from, oldest
	}
	end := min(uint64(len(f.lines)), from-1+uint64(limit))
	if from <= end {
		b.Lines = append(b.Lines, f.lines[from-1:end]...)
	} else {
		if f.wake == nil {
			f.wake = make(chan struct{})
		}
		b.Wait = f.wake
	}
	b.Next = from + uint64(len(b.Lines))
	return b, nil
}

func followFrames(fs []events.Frame) string {
	var out []string
	for _, f := range fs {
		switch {
		case f.Comment != "":
			out = append(out, ":"+f.Comment)
		case f.Type == LogFrameLine:
			out = append(out, f.ID)
		default:
			out = append(out, f.Type+f.Data)
		}
	}
	return strings.Join(out, " ")
}

const logsPath = "/api/v1/services/storage/logs"

func TestLogsFollow(t *testing.T) {
	f := &fakeFollower{keepFrom: 2}
	f.add("one", "two", "three", "four", "five")
	n := start(t, Options{Services: f})
	for _, tc := range []struct {
		name  string
		query string
		hdr   map[string]string
		count int
		want  string
	}{
		{name: "tail", query: "?follow=1&lines=2", count: 2, want: "e1-4 e1-5"},
		{name: "default tail holds all kept", query: "?follow=true", count: 4, want: "e1-2 e1-3 e1-4 e1-5"},
		{name: "resume", query: "?follow=1", hdr: map[string]string{"Last-Event-ID": "e1-3"}, count: 2, want: "e1-4 e1-5"},
		{name: "since query", query: "?follow=1&since=e1-4", count: 1, want: "e1-5"},
		{name: "fell behind", query: "?follow=1&since=e1-0", count: 2, want: `dropped{"missed":1} e1-2`},
		{name: "earlier run", query: "?follow=1&since=0a-9", count: 2, want: `reset{"epoch":"e1"} e1-2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := openPath(t, n, logsPath+tc.query, tc.hdr)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if got := followFrames(readFrames(t, resp, tc.count, false)); got != tc.want {
				t.Errorf("frames %q, want %q", got, tc.want)
			}
		})
	}
}

// A line added after the stream opened arrives without a new request, and
// the stream outlives the per-request timeout, sending heartbeats.
func TestLogsFollowLive(t *testing.T) {
	f := &fakeFollower{}
	f.add("old")
	cfg := testConfig()
	cfg.WriteTimeout = config.Duration(100 * time.Millisecond)
	n := start(t, Options{Services: f, EventsHeartbeat: 20 * time.Millisecond, Config: func() *config.Config { return cfg }})
	resp := openPath(t, n, logsPath+"?follow=1&lines=1", nil)
	frames := readFrames(t, resp, 1, false)
	if got := followFrames(frames); got != "e1-1" {
		t.Fatalf("first frame %q", got)
	}
	if got := followFrames(readFrames(t, resp, 10, true)); got != strings.TrimSpace(strings.Repeat(":heartbeat ", 10)) {
		t.Fatalf("while idle: %q", got)
	}
	f.add("new")
	var got []events.Frame
	for len(got) == 0 {
		for _, fr := range readFrames(t, resp, 1, true) {
			if fr.Comment == "" {
				got = append(got, fr)
			}
		}
	}
	if got[0].ID != "e1-2" || !strings.Contains(got[0].Data, `"text":"new"`) || !strings.Contains(got[0].Data, `"seq":2`) {
		t.Errorf("live frame %+v", got[0])
	}
}

func TestLogsFollowRefused(t *testing.T) {
	f := &fakeFollower{}
	n := start(t, Options{Services: f})
	for _, tc := range []struct {
		path string
		hdr  map[string]string
		code int
		want string
	}{
		{logsPath + "?follow=1", map[string]string{"Last-Event-ID": "junk"}, http.StatusBadRequest, "bad_log_id"},
		{logsPath + "?follow=1&since=e1-x", nil, http.StatusBadRequest, "bad_log_id"},
		{logsPath + "?follow=1&lines=0", nil, http.StatusBadRequest, "lines must be"},
		{"/api/v1/services/nosuch/logs?follow=1", nil, http.StatusNotFound, "unknown_service"},
	} {
		r := n.do(t, "GET", tc.path, tc.hdr, "")
		if r.code != tc.code || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s %v: %d %s, want %d %q", tc.path, tc.hdr, r.code, r.body, tc.code, tc.want)
		}
	}
	plain := start(t, Options{Services: &fakeServices{}})
	if r := plain.do(t, "GET", logsPath+"?follow=1", nil, ""); r.code != http.StatusNotImplemented {
		t.Errorf("services without a follower: %d %s", r.code, r.body)
	}
}

func TestParseLogID(t *testing.T) {
	for _, tc := range []struct {
		id    string
		epoch string
		seq   uint64
		ok    bool
	}{
		{"0a1b2c3d-42", "0a1b2c3d", 42, true},
		{"e1-0", "e1", 0, true},
		{"E1-3", "", 0, false},
		{"e1-", "", 0, false},
		{"-3", "", 0, false},
		{"e1-3-4", "", 0, false},
		{"e1-99999999999999999999", "", 0, false},
		{fmt.Sprintf("%s-1", strings.Repeat("a", 17)), "", 0, false},
	} {
		epoch, seq, err := ParseLogID(tc.id)
		if (err == nil) != tc.ok || epoch != tc.epoch || seq != tc.seq {
			t.Errorf("ParseLogID(%q) = %q %d %v", tc.id, epoch, seq, err)
		}
	}
}
