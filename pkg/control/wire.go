package control

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// SocketName is the control socket's file name inside the parent's run dir.
const SocketName = "control.sock"

// MaxSocketPath is the longest Unix socket path the kernel accepts:
// sizeof(sun_path) minus its terminating NUL.
const MaxSocketPath = 107

// NewConnEncoder returns an Encoder on conn that gives every write its own
// deadline, timeout from the write, so a peer that stops reading cannot
// block a sender for longer. The Encoder serialises writes, so concurrent
// senders never mix their deadlines.
func NewConnEncoder(conn net.Conn, timeout time.Duration) *Encoder {
	return NewEncoder(deadlineWriter{conn: conn, timeout: timeout})
}

type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(b []byte) (int, error) {
	if err := w.conn.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, fmt.Errorf("set write deadline: %w", err)
	}
	return w.conn.Write(b)
}

// ReloadConfig is the payload of a reload message: the settings a child
// applies without restarting. A nil field leaves that setting as it is.
// A child ignores keys it does not know, so a newer parent may send more.
type ReloadConfig struct {
	LogLevel *string `json:"log_level,omitempty"`
}

// Encode returns the payload for Reload.
func (c ReloadConfig) Encode() (json.RawMessage, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode reload config: %w", err)
	}
	return b, nil
}

// ParseReloadConfig decodes a reload payload. An empty payload (or JSON
// null) is the zero ReloadConfig: nothing changes.
func ParseReloadConfig(raw []byte) (ReloadConfig, error) {
	var c ReloadConfig
	if len(bytes.TrimSpace(raw)) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return ReloadConfig{}, fmt.Errorf("decode reload config: %w", err)
	}
	return c, nil
}
