package mailbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Log record kinds. A segment is a sequence of records:
//
//	crc32c(4) | length(4) | kind(1) | payload(length-1)
//
// The CRC (Castagnoli) covers length, kind and payload. Payloads:
//
//	recPut:     seq(8) metaLen(2) meta body
//	recMeta:    seq(8) meta
//	recDel:     seq(8)
//	recIdem:    keyLen(2) key created(8) seq(8)
//	recIdemDel: keyLen(2) key
//	recSeq:     highest seq ever used(8), first record of every segment
const (
	recPut byte = iota + 1
	recMeta
	recDel
	recIdem
	recIdemDel
	recSeq
)

const (
	recHeader = 9 // crc(4) + length(4) + kind(1)
	// maxRecord bounds a record's length field, so a corrupt length is
	// recognised as such before any allocation.
	maxRecord = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadRecord = errors.New("bad log record")

// appendRecord appends one framed record to buf; parts are concatenated
// into the payload.
func appendRecord(buf []byte, kind byte, parts ...[]byte) []byte {
	n := 1
	for _, p := range parts {
		n += len(p)
	}
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	buf = append(buf, kind)
	for _, p := range parts {
		buf = append(buf, p...)
	}
	binary.BigEndian.PutUint32(buf[start:], crc32.Checksum(buf[start+4:], castagnoli))
	return buf
}

// parseRecord reads the record at the start of b. It returns the kind, the
// payload (aliasing b) and the record's full length, or errBadRecord when
// b holds no complete record with a matching CRC (a torn or corrupt tail).
func parseRecord(b []byte) (kind byte, payload []byte, n int, err error) {
	if len(b) < recHeader {
		return 0, nil, 0, fmt.Errorf("%w: %d bytes left, header needs %d", errBadRecord, len(b), recHeader)
	}
	l := binary.BigEndian.Uint32(b[4:])
	if l < 1 || l > maxRecord || int(l) > len(b)-8 {
		return 0, nil, 0, fmt.Errorf("%w: length %d with %d bytes left", errBadRecord, l, len(b)-8)
	}
	n = 8 + int(l)
	if crc32.Checksum(b[4:n], castagnoli) != binary.BigEndian.Uint32(b) {
		return 0, nil, 0, fmt.Errorf("%w: checksum mismatch", errBadRecord)
	}
	return b[8], b[9:n], n, nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }

func u16(v int) []byte { return binary.BigEndian.AppendUint16(make([]byte, 0, 2), uint16(v)) }

// putRecord is the payload prefix of a recPut up to the body.
func putPrefix(seq uint64, meta []byte) []byte {
	b := make([]byte, 0, 10+len(meta))
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(meta)))
	return append(b, meta...)
}

// decodePut splits a recPut payload; bodyAt is the body's offset in it.
func decodePut(p []byte) (seq uint64, meta []byte, bodyAt int, err error) {
	if len(p) < 10 {
		return 0, nil, 0, fmt.Errorf("%w: put of %d bytes", errBadRecord, len(p))
	}
	ml := int(binary.BigEndian.Uint16(p[8:]))
	if len(p) < 10+ml {
		return 0, nil, 0, fmt.Errorf("%w: put meta truncated", errBadRecord)
	}
	return binary.BigEndian.Uint64(p), p[10 : 10+ml], 10 + ml, nil
}

// decodeKey splits a payload that starts with keyLen(2) key.
func decodeKey(p []byte) (key string, rest []byte, err error) {
	if len(p) < 2 {
		return "", nil, fmt.Errorf("%w: key of %d bytes", errBadRecord, len(p))
	}
	kl := int(binary.BigEndian.Uint16(p))
	if len(p) < 2+kl {
		return "", nil, fmt.Errorf("%w: key truncated", errBadRecord)
	}
	return string(p[2 : 2+kl]), p[2+kl:], nil
}
