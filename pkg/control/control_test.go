package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	msgs := []Message{
		Hello("storage", 42, "tok", "0.1.0"),
		Ready("127.0.0.1:9300"),
		Health(false, "disk full"),
		Heartbeat(),
		Goodbye("shutdown"),
		Shutdown(time.Unix(1700000000, 0)),
		Reload(json.RawMessage(`{"log_level":"debug"}`)),
	}
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	for _, m := range msgs {
		if err := enc.Send(m); err != nil {
			t.Fatalf("send %s: %v", m.Type, err)
		}
	}
	dec := NewDecoder(&buf)
	for _, want := range msgs {
		got, err := dec.Next()
		if err != nil {
			t.Fatalf("next (want %s): %v", want.Type, err)
		}
		a, _ := json.Marshal(want)
		b, _ := json.Marshal(got)
		if !bytes.Equal(a, b) {
			t.Errorf("round trip: got %s want %s", b, a)
		}
	}
	if _, err := dec.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after last message: got %v, want io.EOF", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"not json", "hello there\n", ErrMalformed},
		{"no type", `{"pid":1}` + "\n", ErrMalformed},
		{"unknown type", `{"type":"launch"}` + "\n", ErrMalformed},
		{"unknown field", `{"type":"heartbeat","x":1}` + "\n", ErrMalformed},
		{"ping is not a message", `{"type":"ping"}` + "\n", ErrMalformed},
		{"hello without token", `{"type":"hello","service":"s","pid":1,"protocol":1}` + "\n", ErrMalformed},
		{"hello wrong protocol", `{"type":"hello","service":"s","pid":1,"token":"t","protocol":9}` + "\n", ErrMalformed},
		{"ready without addr", `{"type":"ready"}` + "\n", ErrMalformed},
		{"health without ok", `{"type":"health"}` + "\n", ErrMalformed},
		{"shutdown without deadline", `{"type":"shutdown"}` + "\n", ErrMalformed},
		{"trailing data", `{"type":"heartbeat"} {"type":"heartbeat"}` + "\n", ErrMalformed},
		{"stray closing brace", `{"type":"heartbeat"}}` + "\n", ErrMalformed},
		{"truncated", `{"type":"heartbeat"}`, ErrMalformed},
		{"oversized", strings.Repeat("x", MaxMessageBytes+10) + "\n", ErrTooLarge},
		{"wrong field type", `{"type":"hello","service":"s","pid":"1","token":"t","protocol":1}` + "\n", ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDecoder(strings.NewReader(tc.in)).Next()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMaxSizeBoundary(t *testing.T) {
	// A message of exactly MaxMessageBytes including newline is accepted.
	m := Goodbye("")
	base, _ := json.Marshal(m)
	pad := MaxMessageBytes - 1 - len(base) - len(`,"reason":""`)
	m.Reason = strings.Repeat("r", pad)
	var buf bytes.Buffer
	if err := NewEncoder(&buf).Send(m); err != nil {
		t.Fatalf("send max-size: %v", err)
	}
	if buf.Len() != MaxMessageBytes {
		t.Fatalf("encoded %d bytes, want %d", buf.Len(), MaxMessageBytes)
	}
	if _, err := NewDecoder(&buf).Next(); err != nil {
		t.Fatalf("decode max-size: %v", err)
	}
	m.Reason += "r"
	if err := NewEncoder(io.Discard).Send(m); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("send over max: got %v, want ErrTooLarge", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","service":"storage","pid":7,"token":"abc","version":"0.1.0","protocol":1}`,
		`{"type":"ready","addr":"127.0.0.1:9300"}`,
		`{"type":"health","ok":true,"detail":"fine"}`,
		`{"type":"heartbeat"}`,
		`{"type":"goodbye","reason":"bye"}`,
		`{"type":"shutdown","deadline":"2026-01-01T00:00:00Z"}`,
		`{"type":"reload","config":{"a":1}}`,
		`{"type":`, `null`, `[]`, "\x00\xff",
	} {
		f.Add([]byte(s + "\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := NewDecoder(bytes.NewReader(data))
		for i := 0; i < 100; i++ {
			m, err := dec.Next()
			if err != nil {
				return
			}
			// Anything accepted must re-encode and decode to the same message.
			var buf bytes.Buffer
			if err := NewEncoder(&buf).Send(m); err != nil {
				if errors.Is(err, ErrTooLarge) {
					continue
				}
				t.Fatalf("re-encode accepted message: %v", err)
			}
			if _, err := NewDecoder(&buf).Next(); err != nil {
				t.Fatalf("re-decode accepted message %q: %v", buf.String(), err)
			}
		}
	})
}
