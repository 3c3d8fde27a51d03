package oap

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader reads frames from arbitrary bytes until an error: it must never
// panic, never return a payload over the limit, and end with io.EOF or one
// of the reader's own errors. Seeds: testdata/fuzz/FuzzReader.
func FuzzReader(f *testing.F) {
	f.Add(frame(TypeHello, 0, Hello{Version: 1, MaxFrame: 4096, NodeID: "12D3KooW"}.Encode()))
	f.Add(append(frame(TypeBlob, 0, EncodeU64(3)), frame(TypeData, 0, []byte("abc"))...))
	f.Add([]byte{0x12, 0, 0xff, 0xff, 0xff, 0xff})
	const max = 4096
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b), max)
		for range len(b) + 1 {
			fr, err := r.Read()
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, ErrTruncated) || errors.Is(err, ErrUnknownType) ||
					errors.Is(err, ErrBadFlags) || errors.Is(err, ErrTooLarge) {
					return
				}
				t.Fatalf("unexpected error kind: %v", err)
			}
			if len(fr.Payload) > max {
				t.Fatalf("payload of %d bytes over the limit", len(fr.Payload))
			}
		}
		t.Fatal("more frames than input bytes")
	})
}

// FuzzDecodeHello decodes arbitrary HELLO payloads: no panic, and anything
// accepted re-encodes to the same bytes. Seeds: testdata/fuzz/FuzzDecodeHello.
func FuzzDecodeHello(f *testing.F) {
	f.Add(Hello{Version: 1, MaxFrame: 1 << 20, NodeID: "12D3KooWExample"}.Encode())
	f.Add([]byte{0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHello(b)
		if err != nil {
			return
		}
		if !bytes.Equal(h.Encode(), b) {
			t.Fatalf("re-encoding %+v differs from the input", h)
		}
	})
}
