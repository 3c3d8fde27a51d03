package events

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newBus(t *testing.T, size int) *Bus {
	t.Helper()
	b, err := New("b00t", size)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		boot string
		seq  uint64
		bad  bool
	}{
		{id: "abc-1", boot: "abc", seq: 1},
		{id: "abc-0", boot: "abc", seq: 0},
		{id: "a-b-17", bad: true},
		{id: "", bad: true},
		{id: "abc", bad: true},
		{id: "-5", bad: true},
		{id: "abc-", bad: true},
		{id: "abc-x1", bad: true},
		{id: "abc--1", bad: true},
		{id: "abc-99999999999999999999999", bad: true},
	} {
		boot, seq, err := ParseID(tc.id)
		if tc.bad {
			if !errors.Is(err, ErrBadID) {
				t.Errorf("ParseID(%q) err = %v, want ErrBadID", tc.id, err)
			}
			continue
		}
		if err != nil || boot != tc.boot || seq != tc.seq {
			t.Errorf("ParseID(%q) = %q, %d, %v; want %q, %d", tc.id, boot, seq, err, tc.boot, tc.seq)
		}
	}
}

func TestNewRejectsBadBoot(t *testing.T) {
	for _, boot := range []string{"", "a-b"} {
		if _, err := New(boot, 0); err == nil {
			t.Errorf("New(%q) accepted", boot)
		}
	}
}

func ids(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func TestResume(t *testing.T) {
	b := newBus(t, 5)
	for i := range 8 { // seq 1..8; the ring keeps 4..8
		b.Publish(Spawned, "svc", map[string]int{"n": i})
	}
	for _, tc := range []struct {
		last   string
		want   []string
		reason string // gap reason, "" for none
	}{
		{last: "b00t-8", want: nil},
		{last: "b00t-6", want: []string{"b00t-7", "b00t-8"}},
		{last: "b00t-3", want: []string{"b00t-4", "b00t-5", "b00t-6", "b00t-7", "b00t-8"}},
		{last: "b00t-2", reason: "expired"},
		{last: "other-3", reason: "other boot"},
		{last: "b00t-9", reason: "ahead"},
	} {
		t.Run(tc.last, func(t *testing.T) {
			s, err := b.Subscribe(tc.last, false, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := ids(s.Replay); fmt.Sprint(got) != fmt.Sprint(tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("replay %v, want %v", got, tc.want)
			}
			switch {
			case tc.reason == "" && s.Gap != nil:
				t.Errorf("unexpected gap %+v", s.Gap)
			case tc.reason != "" && (s.Gap == nil || s.Gap.Reason != tc.reason || s.Gap.Oldest != "b00t-4"):
				t.Errorf("gap %+v, want reason %q oldest b00t-4", s.Gap, tc.reason)
			}
		})
	}
	if _, err := b.Subscribe("junk", false, 0); !errors.Is(err, ErrBadID) {
		t.Errorf("junk id: err = %v", err)
	}
}

func TestSubscribeAllAndLive(t *testing.T) {
	b := newBus(t, 0)
	b.Publish(Spawned, "a", nil)
	s, err := b.Subscribe("", true, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Replay) != 1 || s.Replay[0].Data != nil {
		t.Fatalf("replay %+v", s.Replay)
	}
	live, err := b.Subscribe("", false, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if len(live.Replay) != 0 {
		t.Fatalf("live-only subscriber got a replay: %+v", live.Replay)
	}
	ev := b.Publish(Ready, "a", map[string]string{"addr": "x"})
	for _, sub := range []*Sub{s, live} {
		select {
		case got := <-sub.C():
			if got.ID != ev.ID || string(got.Data) != `{"addr":"x"}` || got.Service != "a" || got.Type != Ready {
				t.Errorf("got %+v", got)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no live event")
		}
	}
}

// A subscriber that never reads is dropped when its queue overflows, and
// the publisher never waits for it.
func TestSlowSubscriberDropped(t *testing.T) {
	b := newBus(t, 0)
	slow, err := b.Subscribe("", false, 2)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := b.Subscribe("", false, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	start := time.Now()
	for range 5000 {
		b.Publish(Spawned, "a", nil)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("publishing 5000 events took %v", d)
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("slow subscriber not dropped")
	}
	if b.Dropped() != 1 || b.Subscribers() != 1 {
		t.Errorf("dropped %d, subscribers %d; want 1, 1", b.Dropped(), b.Subscribers())
	}
	if len(fast.C()) != 5000 {
		t.Errorf("fast subscriber has %d events, want 5000", len(fast.C()))
	}
	slow.Close() // idempotent after a drop
}

func TestCloseEndsSubscriptions(t *testing.T) {
	b := newBus(t, 0)
	s, err := b.Subscribe("", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	<-s.Done()
	late, err := b.Subscribe("", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	<-late.Done()
}

func TestPublishUnencodable(t *testing.T) {
	b := newBus(t, 0)
	ev := b.Publish(Fault, "a", map[string]any{"f": func() {}})
	if len(ev.Data) == 0 || !strings.HasPrefix(string(ev.Data), `{"encode_error":`) {
		t.Errorf("data %s", ev.Data)
	}
}

func TestReadSSE(t *testing.T) {
	in := ": hello\n\nid: b-1\nevent: spawned\ndata: {\"a\":1}\n\nevent: gap\ndata: x\ndata: y\n\ndata: plain\n\n"
	var got []Frame
	if err := ReadSSE(strings.NewReader(in), func(f Frame) error { got = append(got, f); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []Frame{{Comment: "hello"}, {ID: "b-1", Type: "spawned", Data: `{"a":1}`}, {Type: "gap", Data: "x\ny"}, {Type: "message", Data: "plain"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frames %+v, want %+v", got, want)
	}
	stop := errors.New("stop")
	if err := ReadSSE(strings.NewReader(in), func(Frame) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("err %v", err)
	}
}
