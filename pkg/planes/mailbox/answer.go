package mailbox

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
)

// The receive and settle answers are appended by hand into pooled buffers:
// they are on every message's path, and encoding/json's reflection and
// allocations cost more there than the fixed shapes need. The output is
// byte for byte what encoding/json writes for the same values.

var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeAnswer writes the answer appendTo builds, from a pooled buffer.
func writeAnswer(w http.ResponseWriter, appendTo func([]byte) []byte) {
	bp := answerBufs.Get().(*[]byte)
	b := appendTo((*bp)[:0])
	writeRaw(w, http.StatusOK, append(b, '\n'))
	if cap(b) <= 64<<10 { // keep the pool's buffers small
		*bp = b[:0]
		answerBufs.Put(bp)
	}
}

// appendDeliveries appends {"messages":[...]}.
func appendDeliveries(b []byte, msgs []delivery) []byte {
	b = append(b, `{"messages":`...)
	if msgs == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendJSONString(b, m.ID)
		b = append(b, `,"body":`...)
		if m.Body == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, m.Body)
			b = append(b, '"')
		}
		b = append(b, `,"receipt":`...)
		b = appendJSONString(b, m.Receipt)
		b = append(b, `,"deliveries":`...)
		b = strconv.AppendUint(b, uint64(m.Deliveries), 10)
		b = append(b, `,"enqueued_at":`...)
		b = appendJSONString(b, m.EnqueuedAt)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendSettle appends {"<verb>ed":n,"results":[...]}.
func appendSettle(b []byte, kind receiptsKind, n int, results []receiptResult) []byte {
	switch kind {
	case kindNack:
		b = append(b, `{"nacked":`...)
	case kindExtend:
		b = append(b, `{"extended":`...)
	default:
		b = append(b, `{"acked":`...)
	}
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `,"results":`...)
	if results == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i, r := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"receipt":`...)
		b = appendJSONString(b, r.Receipt)
		b = append(b, `,"status":`...)
		b = appendJSONString(b, r.Status)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendJSONString appends s quoted as encoding/json does: printable ASCII
// that needs no escape is copied, anything else goes through
// encoding/json (which also escapes <, > and &).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
