// Package oap is the wire format of OAP/1, the overlay's blob protocol
// (libp2p protocol /macronode/oap/1, SPEC §8 overlay).
//
// A stream carries frames: a 6-byte header {type u8, flags u8, length u32
// big endian} and length bytes of payload. The reader checks the type, the
// flags and the length against its limit before it allocates anything. A
// stream opens with HELLO, answered by ACCEPT or REJECT; then the client
// sends requests one at a time: GET_BLOB is answered by BLOB{size}, DATA
// frames carrying exactly size bytes, and END; or by NOT_FOUND or ERROR.
// STAT is answered by SIZE, NOT_FOUND or ERROR. No flag is defined (frames
// are never compressed): a frame with any flag set is refused.
package oap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ProtocolID is OAP/1's libp2p protocol id.
const ProtocolID = "/macronode/oap/1"

// Version is the protocol version a HELLO carries.
const Version = 1

// HeaderLen is the size of a frame header.
const HeaderLen = 6

// MinMaxFrame is the smallest frame limit a peer may announce.
const MinMaxFrame = 1 << 10

// Type is a frame type.
type Type uint8

// Frame types.
const (
	TypeHello    Type = 0x01 // client: {version u16, max_frame u32, node_id}
	TypeAccept   Type = 0x02 // server: {max_frame u32}
	TypeReject   Type = 0x03 // server: {reason}
	TypeGetBlob  Type = 0x10 // client: {offset u64, address}
	TypeBlob     Type = 0x11 // server: {size u64}, the bytes that follow
	TypeData     Type = 0x12 // server: a chunk of the blob
	TypeEnd      Type = 0x13 // server: the blob is complete
	TypeNotFound Type = 0x14 // server: no such blob
	TypeStat     Type = 0x15 // client: {address}
	TypeSize     Type = 0x16 // server: {size u64}
	TypeError    Type = 0x17 // server: {reason}: the request failed
)

var typeNames = map[Type]string{
	TypeHello: "HELLO", TypeAccept: "ACCEPT", TypeReject: "REJECT",
	TypeGetBlob: "GET_BLOB", TypeBlob: "BLOB", TypeData: "DATA", TypeEnd: "END",
	TypeNotFound: "NOT_FOUND", TypeStat: "STAT", TypeSize: "SIZE", TypeError: "ERROR",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(0x%02x)", uint8(t))
}

// Errors of the frame reader; each means the stream must be closed.
var (
	ErrUnknownType = errors.New("unknown frame type")
	ErrBadFlags    = errors.New("frame flags set")
	ErrTooLarge    = errors.New("frame larger than the limit")
	ErrTruncated   = errors.New("truncated frame")
)

// Frame is one decoded frame. Payload is only valid until the next Read.
type Frame struct {
	Type    Type
	Payload []byte
}

// Reader reads frames of at most max payload bytes from a stream.
type Reader struct {
	r   io.Reader
	max uint32
	hdr [HeaderLen]byte
	buf []byte
}

// NewReader returns a Reader that refuses frames longer than max.
func NewReader(r io.Reader, max uint32) *Reader {
	return &Reader{r: r, max: max}
}

// Read reads the next frame. It returns io.EOF when the stream ends cleanly
// between frames, and an error wrapping ErrTruncated, ErrUnknownType,
// ErrBadFlags or ErrTooLarge for a bad frame (read no further then). The
// payload buffer is reused: it grows to the largest frame read so far.
func (r *Reader) Read() (Frame, error) {
	if n, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return Frame{}, io.EOF
		}
		return Frame{}, fmt.Errorf("%w: header: %w", ErrTruncated, err)
	}
	t := Type(r.hdr[0])
	if _, ok := typeNames[t]; !ok {
		return Frame{}, fmt.Errorf("%w: 0x%02x", ErrUnknownType, r.hdr[0])
	}
	if r.hdr[1] != 0 {
		return Frame{}, fmt.Errorf("%w: 0x%02x on %s", ErrBadFlags, r.hdr[1], t)
	}
	n := binary.BigEndian.Uint32(r.hdr[2:])
	if n > r.max {
		return Frame{}, fmt.Errorf("%w: %s of %d bytes, limit %d", ErrTooLarge, t, n, r.max)
	}
	if uint32(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	p := r.buf[:n]
	if _, err := io.ReadFull(r.r, p); err != nil {
		return Frame{}, fmt.Errorf("%w: %s payload: %w", ErrTruncated, t, err)
	}
	return Frame{Type: t, Payload: p}, nil
}

// Writer writes frames of at most max payload bytes.
type Writer struct {
	w   io.Writer
	max uint32
	buf []byte
}

// NewWriter returns a Writer that refuses to send frames longer than max
// (the peer's announced limit).
func NewWriter(w io.Writer, max uint32) *Writer {
	return &Writer{w: w, max: max}
}

// SetMax changes the limit, once the peer's is known.
func (w *Writer) SetMax(max uint32) { w.max = max }

// Write sends one frame in a single write.
func (w *Writer) Write(t Type, payload []byte) error {
	if uint64(len(payload)) > uint64(w.max) {
		return fmt.Errorf("write %s: %w: %d bytes, limit %d", t, ErrTooLarge, len(payload), w.max)
	}
	n := HeaderLen + len(payload)
	if cap(w.buf) < n {
		w.buf = make([]byte, n)
	}
	b := w.buf[:n]
	b[0], b[1] = byte(t), 0
	binary.BigEndian.PutUint32(b[2:], uint32(len(payload)))
	copy(b[HeaderLen:], payload)
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", t, err)
	}
	return nil
}
