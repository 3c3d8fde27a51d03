package mailbox

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The reference shapes: what encoding/json wrote for these answers.
type (
	ackAnswer struct {
		N       int             `json:"acked"`
		Results []receiptResult `json:"results"`
	}
	nackAnswer struct {
		N       int             `json:"nacked"`
		Results []receiptResult `json:"results"`
	}
	extendAnswer struct {
		N       int             `json:"extended"`
		Results []receiptResult `json:"results"`
	}
	receiveAnswer struct {
		Messages []delivery `json:"messages"`
	}
)

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var oddStrings = []string{"", "plain-0123", `quote"back\slash`, "<tag>&amp;", "tab\tnl\n\x01", "héllo ☃", "bad utf8 \xff\xfe", "\u2028sep"}

func TestAppendDeliveriesMatchesEncodingJSON(t *testing.T) {
	cases := map[string][]delivery{
		"nil":   nil,
		"empty": {},
		"one": {{ID: "000000000000002a", Body: []byte("hello"), Receipt: "r1", Deliveries: 3,
			EnqueuedAt: "2026-12-01T07:00:00.123456789Z"}},
		"nil and empty bodies": {{ID: "1", Body: nil}, {ID: "2", Body: []byte{}}, {ID: "3", Body: []byte{0, 0xff, 0xfe, 1}}},
		"big body":             {{ID: "4", Body: bytes.Repeat([]byte{0xab, 1, 2}, 3000), Deliveries: 4294967295}},
	}
	for _, s := range oddStrings {
		cases["odd "+s] = []delivery{{ID: s, Receipt: s, EnqueuedAt: s, Body: []byte(s)}}
	}
	for name, msgs := range cases {
		want := mustJSON(t, receiveAnswer{msgs})
		if got := appendDeliveries(nil, msgs); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

func TestAppendSettleMatchesEncodingJSON(t *testing.T) {
	results := [][]receiptResult{nil, {}, {{Receipt: "r", Status: statusAcked}, {Receipt: "x", Status: "stale"}}}
	for _, s := range oddStrings {
		results = append(results, []receiptResult{{Receipt: s, Status: s}})
	}
	for _, rs := range results {
		for _, c := range []struct {
			kind receiptsKind
			ref  any
		}{
			{kindAck, ackAnswer{7, rs}},
			{kindNack, nackAnswer{7, rs}},
			{kindExtend, extendAnswer{7, rs}},
		} {
			want := mustJSON(t, c.ref)
			if got := appendSettle(nil, c.kind, 7, rs); !bytes.Equal(got, want) {
				t.Errorf("kind %v:\n got %s\nwant %s", c.kind, got, want)
			}
		}
	}
}

func BenchmarkReceiveAnswer(b *testing.B) {
	msgs := []delivery{{ID: "000000000000002a", Body: make([]byte, 256), Receipt: "000000000000002a.1.8f3a9c2d7e6b5a41",
		Deliveries: 1, EnqueuedAt: "2026-12-01T07:00:00.123456789Z"}}
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(receiveAnswer{msgs}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = appendDeliveries(buf[:0], msgs)
		}
	})
}
