package identity

import (
	"bytes"
	"testing"
)

// FuzzVerify feeds Verify arbitrary bytes: it must never panic, and whatever
// it accepts must pass the record's field checks and verify the same way
// again. The seed corpus under testdata/fuzz/FuzzVerify holds a signed
// record, one with a flipped signature bit, one signed by another key and
// junk.
func FuzzVerify(f *testing.F) {
	priv, dht := mustKey(f), mustKey(f)
	f.Add(mustSign(f, priv, sampleRecord(f, priv, dht, 1)))
	f.Add([]byte{})
	f.Add([]byte("\x0a\x24\x08\x01\x12\x20"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := Verify(b)
		if err != nil {
			return
		}
		if err := rec.validate(); err != nil {
			t.Fatalf("Verify accepted an invalid record: %v", err)
		}
		again, err := Verify(bytes.Clone(b))
		if err != nil || again.NodeID != rec.NodeID || again.Seq != rec.Seq {
			t.Fatalf("Verify is not deterministic: %v", err)
		}
	})
}
