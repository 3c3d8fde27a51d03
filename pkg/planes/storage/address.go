package storage

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/zeebo/blake3"
)

// AddressPrefix starts every content address: the hash algorithm's name.
const AddressPrefix = "b3:"

// addressLen is the length of a well-formed address: "b3:" + 64 hex digits.
const addressLen = len(AddressPrefix) + 64

// ErrBadAddress is returned (wrapped) by ParseAddress for anything that is not
// exactly "b3:" followed by 64 lowercase hexadecimal digits.
var ErrBadAddress = errors.New("bad address")

// ParseAddress parses a content address of the form "b3:<64 lowercase hex>".
// Upper-case hex, a missing or different prefix, a wrong length and any other
// character (path separators, dots, spaces, percent escapes) are rejected, so a
// parsed address is always safe to turn into a file name.
func ParseAddress(s string) ([32]byte, error) {
	var a [32]byte
	if len(s) != addressLen {
		return a, fmt.Errorf("%w: want %q followed by 64 lowercase hex digits, got %d characters", ErrBadAddress, AddressPrefix, len(s))
	}
	if s[:len(AddressPrefix)] != AddressPrefix {
		return a, fmt.Errorf("%w: missing %q prefix", ErrBadAddress, AddressPrefix)
	}
	h := s[len(AddressPrefix):]
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return a, fmt.Errorf("%w: character %d is %q, want lowercase hex", ErrBadAddress, len(AddressPrefix)+i, c)
		}
	}
	if _, err := hex.Decode(a[:], []byte(h)); err != nil {
		return a, fmt.Errorf("%w: %w", ErrBadAddress, err)
	}
	return a, nil
}

// FormatAddress renders a as "b3:<64 lowercase hex>"; ParseAddress inverts it.
func FormatAddress(a [32]byte) string {
	var buf [addressLen]byte
	copy(buf[:], AddressPrefix)
	hex.Encode(buf[len(AddressPrefix):], a[:])
	return string(buf[:])
}

// AddressOf returns the BLAKE3-256 content address of b.
func AddressOf(b []byte) [32]byte { return blake3.Sum256(b) }
