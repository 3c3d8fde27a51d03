package oap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func frame(t Type, flags byte, payload []byte) []byte {
	b := []byte{byte(t), flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[2:], uint32(len(payload)))
	return append(b, payload...)
}

// countingReader counts the bytes handed out, to show that an oversized
// frame is refused before its payload is read (or allocated).
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReader(t *testing.T) {
	const max = 1024
	huge := []byte{byte(TypeData), 0, 0xff, 0xff, 0xff, 0xff}
	tests := []struct {
		name     string
		in       []byte
		wantType Type
		wantLen  int
		wantErr  error
	}{
		{"empty stream is a clean end", nil, 0, 0, io.EOF},
		{"hello", frame(TypeHello, 0, []byte("abcdefg")), TypeHello, 7, nil},
		{"empty payload", frame(TypeEnd, 0, nil), TypeEnd, 0, nil},
		{"exactly the limit", frame(TypeData, 0, make([]byte, max)), TypeData, max, nil},
		{"one over the limit", frame(TypeData, 0, make([]byte, max+1)), 0, 0, ErrTooLarge},
		{"4 GiB length", huge, 0, 0, ErrTooLarge},
		{"unknown type", frame(0x7f, 0, nil), 0, 0, ErrUnknownType},
		{"flags set", frame(TypeData, 1, nil), 0, 0, ErrBadFlags},
		{"half a header", []byte{byte(TypeData), 0, 0}, 0, 0, ErrTruncated},
		{"short payload", frame(TypeData, 0, make([]byte, 10))[:12], 0, 0, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(tt.in)}
			f, err := NewReader(cr, max).Read()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Read: %v, want %v", err, tt.wantErr)
				}
				if errors.Is(err, ErrTooLarge) && cr.n > HeaderLen {
					t.Fatalf("read %d bytes of an oversized frame, want the header only", cr.n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if f.Type != tt.wantType || len(f.Payload) != tt.wantLen {
				t.Fatalf("got %s/%d, want %s/%d", f.Type, len(f.Payload), tt.wantType, tt.wantLen)
			}
		})
	}
}

func TestWriterReaderRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, 16)
	msgs := []struct {
		t Type
		p []byte
	}{
		{TypeStat, []byte("x")}, {TypeData, bytes.Repeat([]byte{7}, 16)}, {TypeEnd, nil},
	}
	for _, m := range msgs {
		if err := w.Write(m.t, m.p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write(TypeData, make([]byte, 17)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Write over the peer's limit: %v, want ErrTooLarge", err)
	}
	r := NewReader(&buf, 16)
	for _, m := range msgs {
		f, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		if f.Type != m.t || !bytes.Equal(f.Payload, m.p) {
			t.Fatalf("got %s %x, want %s %x", f.Type, f.Payload, m.t, m.p)
		}
	}
	if _, err := r.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestDecodeHello(t *testing.T) {
	good := Hello{Version: Version, MaxFrame: 1 << 20, NodeID: "12D3KooWExample"}
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"round trip", good.Encode(), true},
		{"empty", nil, false},
		{"no node id", Hello{Version: 1, MaxFrame: 1 << 20}.Encode(), false},
		{"tiny max frame", Hello{Version: 1, MaxFrame: 10, NodeID: "x"}.Encode(), false},
		{"long node id", Hello{Version: 1, MaxFrame: 1 << 20, NodeID: strings.Repeat("a", maxNodeID+1)}.Encode(), false},
		{"control bytes in node id", Hello{Version: 1, MaxFrame: 1 << 20, NodeID: "a\nb"}.Encode(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := DecodeHello(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("DecodeHello: %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && h != good {
				t.Fatalf("got %+v, want %+v", h, good)
			}
		})
	}
}

func TestRequestsAndValues(t *testing.T) {
	addr := AddressPrefix + strings.Repeat("ab", 32)
	g, err := DecodeGetBlob(GetBlob{Offset: 42, Address: addr}.Encode())
	if err != nil || g.Offset != 42 || g.Address != addr {
		t.Fatalf("GET_BLOB round trip: %+v, %v", g, err)
	}
	bad := []string{"", "b3:", addr[:len(addr)-1], strings.ToUpper(addr), "b2:" + addr[3:], addr[:len(addr)-1] + "g"}
	for _, a := range bad {
		if ValidAddress(a) {
			t.Errorf("ValidAddress(%q) = true", a)
		}
		if _, err := DecodeStat([]byte(a)); err == nil {
			t.Errorf("DecodeStat(%q) accepted", a)
		}
		if _, err := DecodeGetBlob(GetBlob{Address: a}.Encode()); err == nil {
			t.Errorf("DecodeGetBlob(%q) accepted", a)
		}
	}
	if v, err := DecodeU64(EncodeU64(1 << 40)); err != nil || v != 1<<40 {
		t.Fatalf("u64 round trip: %d, %v", v, err)
	}
	if _, err := DecodeU64([]byte{1}); err == nil {
		t.Fatal("DecodeU64 of 1 byte accepted")
	}
	if v, err := DecodeU32(EncodeU32(77)); err != nil || v != 77 {
		t.Fatalf("u32 round trip: %d, %v", v, err)
	}
	long := strings.Repeat("é", MaxReason) // 2 bytes each
	r, err := DecodeReason(EncodeReason(long))
	if err != nil || len(r) > MaxReason {
		t.Fatalf("long reason: %d bytes, %v", len(r), err)
	}
	if _, err := DecodeReason([]byte{0xff}); err == nil {
		t.Fatal("DecodeReason accepted invalid UTF-8")
	}
}
