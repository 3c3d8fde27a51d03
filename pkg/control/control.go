// Package control is the wire protocol between the macronode parent and its
// children, spoken over a Unix socket (SPEC §6). It is a leaf package that both
// sides share: the supervisor (server) and the child runtime (client).
//
// Messages are single-line JSON objects terminated by '\n', at most
// MaxMessageBytes long including the newline. Every message has a "type".
// Child to parent: hello, ready, health, heartbeat, goodbye.
// Parent to child: shutdown, reload. (Heartbeats prove a child alive; the
// parent never asks for one.)
//
// A peer that sends a malformed or oversized message has its connection
// closed; Decoder reports such input as an error wrapping ErrMalformed or
// ErrTooLarge and never panics.
package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// ProtocolVersion is the version a child announces in hello.
const ProtocolVersion = 1

// MaxMessageBytes is the largest message, newline included.
const MaxMessageBytes = 64 << 10

// Environment variables the parent sets on every child.
const (
	EnvSocket  = "MACRONODE_CONTROL_SOCKET"
	EnvService = "MACRONODE_SERVICE"
	EnvToken   = "MACRONODE_CONTROL_TOKEN"
)

// HeartbeatInterval is how often a supervised child sends a heartbeat.
const HeartbeatInterval = time.Second

// Type names a message.
type Type string

// Message types.
const (
	TypeHello     Type = "hello"
	TypeReady     Type = "ready"
	TypeHealth    Type = "health"
	TypeHeartbeat Type = "heartbeat"
	TypeGoodbye   Type = "goodbye"
	TypeShutdown  Type = "shutdown"
	TypeReload    Type = "reload"
)

// Errors returned by the Decoder.
var (
	ErrTooLarge  = errors.New("control message too large")
	ErrMalformed = errors.New("malformed control message")
)

// Message is the union of all message fields; which are meaningful depends on
// Type (see the constructors below).
type Message struct {
	Type Type `json:"type"`

	// hello
	Service  string `json:"service,omitempty"`
	PID      int    `json:"pid,omitempty"`
	Token    string `json:"token,omitempty"`
	Version  string `json:"version,omitempty"`
	Protocol int    `json:"protocol,omitempty"`

	// ready: Addr serves the plane; MetricsAddr, when set, is where the
	// child serves /metrics and /version instead (the gateway's internal
	// listener, bound by the child on a port the kernel picked).
	Addr        string `json:"addr,omitempty"`
	MetricsAddr string `json:"metrics_addr,omitempty"`

	// health: OK is a pointer so that "ok":false is distinguishable from absent.
	OK     *bool  `json:"ok,omitempty"`
	Detail string `json:"detail,omitempty"`

	// goodbye
	Reason string `json:"reason,omitempty"`

	// shutdown: the wall-clock time by which the child must have exited.
	Deadline *time.Time `json:"deadline,omitempty"`

	// reload: opaque plane configuration.
	Config json.RawMessage `json:"config,omitempty"`
}

// Hello is the first message a child sends.
func Hello(service string, pid int, token, version string) Message {
	return Message{Type: TypeHello, Service: service, PID: pid, Token: token, Version: version, Protocol: ProtocolVersion}
}

// Ready tells the parent the child serves on addr.
func Ready(addr string) Message { return Message{Type: TypeReady, Addr: addr} }

// ReadyWithMetrics is Ready for a child whose /metrics is not on addr.
func ReadyWithMetrics(addr, metricsAddr string) Message {
	return Message{Type: TypeReady, Addr: addr, MetricsAddr: metricsAddr}
}

// Health reports the child's own view of its health.
func Health(ok bool, detail string) Message {
	return Message{Type: TypeHealth, OK: &ok, Detail: detail}
}

// Heartbeat is sent every HeartbeatInterval.
func Heartbeat() Message { return Message{Type: TypeHeartbeat} }

// Goodbye announces an orderly exit.
func Goodbye(reason string) Message { return Message{Type: TypeGoodbye, Reason: reason} }

// Shutdown asks the child to drain and exit by deadline.
func Shutdown(deadline time.Time) Message {
	d := deadline.UTC()
	return Message{Type: TypeShutdown, Deadline: &d}
}

// Reload hands the child new configuration.
func Reload(cfg json.RawMessage) Message { return Message{Type: TypeReload, Config: cfg} }

// Validate checks that the message is well-formed for its type.
func (m *Message) Validate() error {
	switch m.Type {
	case TypeHello:
		switch {
		case m.Service == "":
			return fmt.Errorf("%w: hello without service", ErrMalformed)
		case m.PID <= 0:
			return fmt.Errorf("%w: hello without pid", ErrMalformed)
		case m.Token == "":
			return fmt.Errorf("%w: hello without token", ErrMalformed)
		case m.Protocol != ProtocolVersion:
			return fmt.Errorf("%w: unsupported protocol %d (want %d)", ErrMalformed, m.Protocol, ProtocolVersion)
		}
	case TypeReady:
		if m.Addr == "" {
			return fmt.Errorf("%w: ready without addr", ErrMalformed)
		}
	case TypeHealth:
		if m.OK == nil {
			return fmt.Errorf("%w: health without ok", ErrMalformed)
		}
	case TypeShutdown:
		if m.Deadline == nil {
			return fmt.Errorf("%w: shutdown without deadline", ErrMalformed)
		}
	case TypeHeartbeat, TypeGoodbye, TypeReload:
	case "":
		return fmt.Errorf("%w: missing type", ErrMalformed)
	default:
		return fmt.Errorf("%w: unknown type %q", ErrMalformed, m.Type)
	}
	return nil
}

// Decode parses and validates one message (without its trailing newline).
func Decode(line []byte) (Message, error) {
	var m Message
	if len(line) >= MaxMessageBytes {
		return m, ErrTooLarge
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// Token, not More: More misses a stray closing '}' or ']'.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Message{}, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	if err := m.Validate(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// Decoder reads messages from a stream.
type Decoder struct {
	r *bufio.Reader
}

// NewDecoder reads from r with a buffer of MaxMessageBytes.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, MaxMessageBytes)}
}

// Next returns the next message. At end of stream it returns io.EOF. An
// oversized line yields ErrTooLarge and bad JSON ErrMalformed; after either the
// stream is out of sync and the caller must close the connection.
func (d *Decoder) Next() (Message, error) {
	line, err := d.r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return Message{}, ErrTooLarge
	case errors.Is(err, io.EOF) && len(line) > 0:
		return Message{}, fmt.Errorf("%w: truncated message", ErrMalformed)
	case err != nil:
		return Message{}, err
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	return Decode(line)
}

// Encoder writes messages; it is safe for concurrent use.
type Encoder struct {
	mu sync.Mutex
	w  io.Writer
}

// NewEncoder writes to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Send writes one message followed by a newline, in one Write call.
func (e *Encoder) Send(m Message) error {
	buf, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", m.Type, err)
	}
	if len(buf)+1 > MaxMessageBytes {
		return fmt.Errorf("encode %s: %w", m.Type, ErrTooLarge)
	}
	buf = append(buf, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.w.Write(buf); err != nil {
		return fmt.Errorf("send %s: %w", m.Type, err)
	}
	return nil
}
