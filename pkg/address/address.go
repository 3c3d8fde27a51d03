// Package address is macronode's content address: the BLAKE3-256 hash of
// a blob, written "b3:<64 lowercase hex>". Storage keys blobs by it and the
// index binds names to it; both parse it here. It imports only the standard
// library and the BLAKE3 implementation.
package address

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/zeebo/blake3"
)

// Prefix starts every content address: the hash algorithm's name.
const Prefix = "b3:"

// addressLen is the length of a well-formed address: "b3:" + 64 hex digits.
const addressLen = len(Prefix) + 64

// ErrBad is returned (wrapped) by Parse for anything that is not
// exactly "b3:" followed by 64 lowercase hexadecimal digits.
var ErrBad = errors.New("bad address")

// Parse parses a content address of the form "b3:<64 lowercase hex>".
// Upper-case hex, a missing or different prefix, a wrong length and any other
// character (path separators, dots, spaces, percent escapes) are rejected, so a
// parsed address is always safe to turn into a file name.
func Parse(s string) ([32]byte, error) {
	var a [32]byte
	if len(s) != addressLen {
		return a, fmt.Errorf("%w: want %q followed by 64 lowercase hex digits, got %d characters", ErrBad, Prefix, len(s))
	}
	if s[:len(Prefix)] != Prefix {
		return a, fmt.Errorf("%w: missing %q prefix", ErrBad, Prefix)
	}
	h := s[len(Prefix):]
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return a, fmt.Errorf("%w: character %d is %q, want lowercase hex", ErrBad, len(Prefix)+i, c)
		}
	}
	if _, err := hex.Decode(a[:], []byte(h)); err != nil {
		return a, fmt.Errorf("%w: %w", ErrBad, err)
	}
	return a, nil
}

// Format renders a as "b3:<64 lowercase hex>"; Parse inverts it.
func Format(a [32]byte) string {
	var buf [addressLen]byte
	copy(buf[:], Prefix)
	hex.Encode(buf[len(Prefix):], a[:])
	return string(buf[:])
}

// Of returns the BLAKE3-256 content address of b.
func Of(b []byte) [32]byte { return blake3.Sum256(b) }

// Validate reports whether s is a well-formed address (see Parse).
func Validate(s string) error {
	_, err := Parse(s)
	return err
}
