package mailbox

import (
	"encoding/binary"
	"fmt"
	"time"
)

// record is the stored state of one message (the meta bucket value).
type record struct {
	box        string
	enqueuedAt int64 // unix nanoseconds
	visibleAt  int64 // unix nanoseconds; in the future = leased or delayed
	deliveries uint32
	receipt    string // set while leased
}

const recordVersion = 1

func (r record) encode() []byte {
	b := make([]byte, 0, 1+8+8+4+1+len(r.box)+1+len(r.receipt))
	b = append(b, recordVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(r.enqueuedAt))
	b = binary.BigEndian.AppendUint64(b, uint64(r.visibleAt))
	b = binary.BigEndian.AppendUint32(b, r.deliveries)
	b = append(b, byte(len(r.box)))
	b = append(b, r.box...)
	b = append(b, byte(len(r.receipt)))
	b = append(b, r.receipt...)
	return b
}

func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) < 1+8+8+4+1 || b[0] != recordVersion {
		return r, fmt.Errorf("record of %d bytes: bad header", len(b))
	}
	r.enqueuedAt = int64(binary.BigEndian.Uint64(b[1:]))
	r.visibleAt = int64(binary.BigEndian.Uint64(b[9:]))
	r.deliveries = binary.BigEndian.Uint32(b[17:])
	rest := b[21:]
	n := int(rest[0])
	if len(rest) < 1+n+1 {
		return r, fmt.Errorf("record of %d bytes: box name truncated", len(b))
	}
	r.box = string(rest[1 : 1+n])
	rest = rest[1+n:]
	n = int(rest[0])
	if len(rest) != 1+n {
		return r, fmt.Errorf("record of %d bytes: receipt truncated", len(b))
	}
	r.receipt = string(rest[1:])
	if err := ValidateBox(r.box); err != nil {
		return r, fmt.Errorf("record box: %w", err)
	}
	return r, nil
}

func encodeIdem(created time.Time, seq uint64) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(created.UnixNano()))
	return binary.BigEndian.AppendUint64(b, seq)
}
