package control

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func TestReloadConfigRoundTrip(t *testing.T) {
	debug := "debug"
	tests := []struct {
		name    string
		raw     string
		want    *string
		wantErr bool
	}{
		{"empty", "", nil, false},
		{"blank", "  \n", nil, false},
		{"null", "null", nil, false},
		{"no level", `{}`, nil, false},
		{"level", `{"log_level":"debug"}`, &debug, false},
		{"unknown keys are ignored", `{"log_level":"debug","future":1}`, &debug, false},
		{"not json", `{`, nil, true},
		{"wrong type", `{"log_level":3}`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReloadConfig([]byte(tt.raw))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if (got.LogLevel == nil) != (tt.want == nil) || (got.LogLevel != nil && *got.LogLevel != *tt.want) {
				t.Fatalf("LogLevel = %v, want %v", got.LogLevel, tt.want)
			}
			if err != nil {
				return
			}
			enc, err := got.Encode()
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseReloadConfig(enc)
			if err != nil || (again.LogLevel == nil) != (got.LogLevel == nil) {
				t.Fatalf("round trip of %s: %+v, %v", enc, again, err)
			}
		})
	}
}

// A peer that stops reading cannot block a sender past the timeout.
func TestConnEncoderWriteDeadline(t *testing.T) {
	a, b := net.Pipe() // unbuffered: a write waits for a read
	defer a.Close()
	defer b.Close()
	enc := NewConnEncoder(a, 50*time.Millisecond)
	start := time.Now()
	err := enc.Send(Heartbeat())
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send to a peer that does not read: %v, want a deadline error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Send took %v", took)
	}
	go func() { _, _ = NewDecoder(b).Next() }()
	if err := enc.Send(Heartbeat()); err != nil {
		t.Fatalf("Send to a reading peer: %v", err)
	}
}
