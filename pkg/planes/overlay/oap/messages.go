package oap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrMalformed is wrapped by the decoders for a payload of the wrong shape.
var ErrMalformed = errors.New("malformed payload")

// Size limits of the variable parts of payloads.
const (
	maxNodeID  = 128 // a peer id in text form is ~52 bytes
	MaxReason  = 256
	addressLen = len(AddressPrefix) + 64
)

// AddressPrefix starts every content address: "b3:" and 64 lowercase hex
// digits of the BLAKE3 hash.
const AddressPrefix = "b3:"

// ValidAddress reports whether s is a content address.
func ValidAddress(s string) bool {
	if len(s) != addressLen || s[:len(AddressPrefix)] != AddressPrefix {
		return false
	}
	for _, c := range []byte(s[len(AddressPrefix):]) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Hello opens a stream: the client's protocol version, the largest frame it
// reads, and its node id (which must be the peer the secure channel
// authenticated).
type Hello struct {
	Version  uint16
	MaxFrame uint32
	NodeID   string
}

// Encode returns the HELLO payload.
func (h Hello) Encode() []byte {
	b := make([]byte, 6, 6+len(h.NodeID))
	binary.BigEndian.PutUint16(b, h.Version)
	binary.BigEndian.PutUint32(b[2:], h.MaxFrame)
	return append(b, h.NodeID...)
}

// DecodeHello parses a HELLO payload. It checks the shape only (a node id
// of 1..128 printable bytes, max_frame at least MinMaxFrame); the version
// and the node id are for the caller to judge.
func DecodeHello(p []byte) (Hello, error) {
	if len(p) < 7 {
		return Hello{}, fmt.Errorf("%w: HELLO of %d bytes", ErrMalformed, len(p))
	}
	h := Hello{
		Version:  binary.BigEndian.Uint16(p),
		MaxFrame: binary.BigEndian.Uint32(p[2:]),
		NodeID:   string(p[6:]),
	}
	if len(h.NodeID) > maxNodeID {
		return Hello{}, fmt.Errorf("%w: HELLO node id longer than %d bytes", ErrMalformed, maxNodeID)
	}
	for _, c := range []byte(h.NodeID) {
		if c <= ' ' || c > '~' {
			return Hello{}, fmt.Errorf("%w: HELLO node id is not printable ASCII", ErrMalformed)
		}
	}
	if h.MaxFrame < MinMaxFrame {
		return Hello{}, fmt.Errorf("%w: HELLO max_frame %d below %d", ErrMalformed, h.MaxFrame, MinMaxFrame)
	}
	return h, nil
}

// EncodeU32 and the other helpers below encode the fixed-size payloads:
// ACCEPT{max_frame}, BLOB{size} and SIZE{n}.
func EncodeU32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// EncodeU64 encodes BLOB{size} and SIZE{n}.
func EncodeU64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// DecodeU32 decodes ACCEPT{max_frame}.
func DecodeU32(p []byte) (uint32, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("%w: want 4 bytes, got %d", ErrMalformed, len(p))
	}
	return binary.BigEndian.Uint32(p), nil
}

// DecodeU64 decodes BLOB{size} and SIZE{n}.
func DecodeU64(p []byte) (uint64, error) {
	if len(p) != 8 {
		return 0, fmt.Errorf("%w: want 8 bytes, got %d", ErrMalformed, len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}

// GetBlob asks for a blob from Offset on.
type GetBlob struct {
	Offset  uint64
	Address string
}

// Encode returns the GET_BLOB payload.
func (g GetBlob) Encode() []byte {
	return append(binary.BigEndian.AppendUint64(nil, g.Offset), g.Address...)
}

// DecodeGetBlob parses a GET_BLOB payload; the address must be valid.
func DecodeGetBlob(p []byte) (GetBlob, error) {
	if len(p) < 8 {
		return GetBlob{}, fmt.Errorf("%w: GET_BLOB of %d bytes", ErrMalformed, len(p))
	}
	g := GetBlob{Offset: binary.BigEndian.Uint64(p), Address: string(p[8:])}
	if !ValidAddress(g.Address) {
		return GetBlob{}, fmt.Errorf("%w: GET_BLOB address is not b3:<64 hex>", ErrMalformed)
	}
	return g, nil
}

// DecodeStat parses a STAT payload (the address).
func DecodeStat(p []byte) (string, error) {
	if !ValidAddress(string(p)) {
		return "", fmt.Errorf("%w: STAT address is not b3:<64 hex>", ErrMalformed)
	}
	return string(p), nil
}

// EncodeReason truncates a REJECT or ERROR reason to MaxReason bytes of
// valid UTF-8.
func EncodeReason(s string) []byte {
	if len(s) > MaxReason {
		s = s[:MaxReason]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return []byte(s)
}

// DecodeReason parses a REJECT or ERROR payload.
func DecodeReason(p []byte) (string, error) {
	if len(p) > MaxReason || !utf8.Valid(p) {
		return "", fmt.Errorf("%w: reason longer than %d bytes or not UTF-8", ErrMalformed, MaxReason)
	}
	return string(p), nil
}
