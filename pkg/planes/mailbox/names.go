package mailbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxBoxNameLen is the longest box name a client may choose. The dead-letter
// box of such a box ("{box}.dlq") may be up to 4 bytes longer.
const MaxBoxNameLen = 128

// DLQSuffix marks a dead-letter box.
const DLQSuffix = ".dlq"

// ValidateBox reports whether name is a valid box name: 1..128 bytes of
// [A-Za-z0-9._-], not starting with '.'. A dead-letter box name
// ("{valid box}.dlq") is valid too, even when that makes it longer than 128.
func ValidateBox(name string) error {
	base := name
	if len(name) > MaxBoxNameLen && strings.HasSuffix(name, DLQSuffix) {
		base = strings.TrimSuffix(name, DLQSuffix)
	}
	if base == "" {
		return errors.New("box name is empty")
	}
	if len(base) > MaxBoxNameLen {
		return fmt.Errorf("box name is %d bytes, longer than %d", len(base), MaxBoxNameLen)
	}
	if base[0] == '.' {
		return errors.New("box name must not start with '.'")
	}
	for i := 0; i < len(base); i++ {
		c := base[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("box name has byte %q at %d; allowed are A-Z a-z 0-9 . _ -", c, i)
		}
	}
	return nil
}

// isDLQ reports whether the box is a dead-letter box.
func isDLQ(name string) bool { return strings.HasSuffix(name, DLQSuffix) }

// formatID renders a message sequence number as its public id.
func formatID(seq uint64) string {
	const hex = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hex[seq&0xf]
		seq >>= 4
	}
	return string(b[:])
}

// parseID is the inverse of formatID.
func parseID(id string) (uint64, bool) {
	if len(id) != 16 {
		return 0, false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(id, 16, 64)
	return v, err == nil
}

// newReceipt makes the token for one delivery: id, delivery count and 64
// random bits, so every delivery's receipt is distinct and unguessable.
func newReceipt(seq uint64, deliveries uint32) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return formatID(seq) + "." + strconv.FormatUint(uint64(deliveries), 10) + "." + hex.EncodeToString(b[:])
}

// receiptSeq extracts the message sequence number from a receipt. It only
// checks the shape; whether the receipt is current is decided by comparing it
// with the message's stored receipt.
func receiptSeq(r string) (uint64, bool) {
	id, rest, ok := strings.Cut(r, ".")
	if !ok {
		return 0, false
	}
	n, rnd, ok := strings.Cut(rest, ".")
	if !ok || n == "" || len(rnd) != 16 {
		return 0, false
	}
	if _, err := strconv.ParseUint(n, 10, 32); err != nil {
		return 0, false
	}
	return parseID(id)
}
