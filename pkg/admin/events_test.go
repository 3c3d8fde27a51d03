package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/events"
)

var errStop = errors.New("enough frames")

// openStream opens the event stream; once it returns, the server has
// subscribed (it answers only after subscribing).
func openStream(t *testing.T, n *testNode, query string, hdr map[string]string) *http.Response {
	t.Helper()
	return openPath(t, n, EventsPath+query, hdr)
}

// openPath GETs path (a stream) with hdr, for at most 10 seconds.
func openPath(t *testing.T, n *testNode, path string, hdr map[string]string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", n.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// stream opens the event stream with hdr and returns the first n frames
// (comments included when withComments).
func stream(t *testing.T, n *testNode, query string, hdr map[string]string, count int, withComments bool) (*http.Response, []events.Frame) {
	t.Helper()
	resp := openStream(t, n, query, hdr)
	return resp, readFrames(t, resp, count, withComments)
}

func readFrames(t *testing.T, resp *http.Response, count int, withComments bool) []events.Frame {
	t.Helper()
	var frames []events.Frame
	if resp.StatusCode != http.StatusOK || count == 0 {
		return nil
	}
	err := events.ReadSSE(resp.Body, func(f events.Frame) error {
		if f.Comment != "" && !withComments {
			return nil
		}
		frames = append(frames, f)
		if len(frames) == count {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("stream ended after %d frames: %v", len(frames), err)
	}
	return frames
}

func newBus(t *testing.T) *events.Bus {
	t.Helper()
	b, err := events.New("boot1", 5)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func frameIDs(fs []events.Frame) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Type+"/"+f.ID)
	}
	return strings.Join(out, " ")
}

func TestEventsResumeAndGap(t *testing.T) {
	bus := newBus(t)
	n := start(t, Options{Services: &fakeServices{}, Events: bus})
	for range 7 { // seq 1..7; the ring keeps 3..7
		bus.Publish(events.Spawned, "storage", map[string]int{"pid": 1})
	}
	for _, tc := range []struct {
		name  string
		query string
		hdr   map[string]string
		count int
		want  string
	}{
		{name: "resume", hdr: map[string]string{"Last-Event-ID": "boot1-5"}, count: 2, want: "spawned/boot1-6 spawned/boot1-7"},
		{name: "since query", query: "?since=boot1-6", count: 1, want: "spawned/boot1-7"},
		{name: "expired", hdr: map[string]string{"Last-Event-ID": "boot1-1"}, count: 1, want: "gap/"},
		{name: "other boot", hdr: map[string]string{"Last-Event-ID": "boot0-6"}, count: 1, want: "gap/"},
		{name: "history", query: "?history=1", count: 5, want: "spawned/boot1-3 spawned/boot1-4 spawned/boot1-5 spawned/boot1-6 spawned/boot1-7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, frames := stream(t, n, tc.query, tc.hdr, tc.count, false)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if got := frameIDs(frames); got != tc.want {
				t.Errorf("frames %q, want %q", got, tc.want)
			}
			if frames[0].Type == events.Gap && !strings.Contains(frames[0].Data, `"oldest":"boot1-3"`) {
				t.Errorf("gap data %s", frames[0].Data)
			}
			if frames[0].Type != events.Gap {
				ev, err := frames[0].Event()
				if err != nil || ev.Service != "storage" || string(ev.Data) != `{"pid":1}` {
					t.Errorf("event %+v, %v", ev, err)
				}
			}
		})
	}
}

func TestEventsBadID(t *testing.T) {
	n := start(t, Options{Services: &fakeServices{}, Events: newBus(t)})
	for _, id := range []string{"junk", "boot1-", "boot1-x", "-3"} {
		r := n.do(t, "GET", EventsPath, map[string]string{"Last-Event-ID": id}, "")
		if r.code != http.StatusBadRequest || !strings.Contains(string(r.body), "bad_event_id") {
			t.Errorf("%q: %d %s", id, r.code, r.body)
		}
	}
}

// Live events arrive as they are published, with heartbeat comments between.
func TestEventsLiveAndHeartbeat(t *testing.T) {
	bus := newBus(t)
	n := start(t, Options{Services: &fakeServices{}, Events: bus, EventsHeartbeat: 20 * time.Millisecond})
	resp := openStream(t, n, "", nil)
	bus.Publish(events.Exited, "index", map[string]string{"signal": "killed"})
	frames := readFrames(t, resp, 1, false)
	if frames[0].Type != events.Exited || frames[0].ID != "boot1-1" {
		t.Fatalf("frame %+v", frames[0])
	}
	_, frames = stream(t, n, "", nil, 1, true)
	if frames[0].Comment != "heartbeat" {
		t.Fatalf("frame %+v, want a heartbeat comment", frames[0])
	}
}

func TestEventsNoFollowEnds(t *testing.T) {
	bus := newBus(t)
	bus.Publish(events.Ready, "a", nil)
	n := start(t, Options{Services: &fakeServices{}, Events: bus})
	r := n.get(t, EventsPath+"?follow=0")
	if r.code != http.StatusOK || !strings.Contains(string(r.body), "id: boot1-1\nevent: ready\n") {
		t.Fatalf("%d %s", r.code, r.body)
	}
}

// Shutdown ends open streams instead of waiting for them.
func TestEventsEndOnShutdown(t *testing.T) {
	bus := newBus(t)
	n := start(t, Options{Services: &fakeServices{}, Events: bus})
	resp := openStream(t, n, "", nil)
	done := make(chan error, 1)
	go func() { done <- events.ReadSSE(resp.Body, func(events.Frame) error { return nil }) }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ev := bus.Publish(events.Spawned, "x", nil); ev.Seq != 2 { // 1 was the shutdown event
		t.Errorf("seq %d", ev.Seq)
	}
}

func TestEventsTokenRequired(t *testing.T) {
	cfg := testConfig()
	cfg.AdminToken = "sekrit"
	n := start(t, Options{Services: &fakeServices{}, Events: newBus(t), Config: func() *config.Config { return cfg }})
	if r := n.get(t, EventsPath+"?follow=0"); r.code != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.code)
	}
	if r := n.do(t, "GET", EventsPath+"?follow=0", map[string]string{"Authorization": "Bearer sekrit"}, ""); r.code != http.StatusOK {
		t.Errorf("token: %d %s", r.code, r.body)
	}
}
