package dht

import (
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func TestKeyFor(t *testing.T) {
	good := "b3:" + strings.Repeat("ab", 32)
	tests := []struct {
		name, addr string
		ok         bool
	}{
		{"well formed", good, true},
		{"zeros", "b3:" + strings.Repeat("0", 64), true},
		{"upper-case hex", "b3:" + strings.Repeat("AB", 32), false},
		{"no prefix", strings.Repeat("ab", 32), false},
		{"other hash", "sha256:" + strings.Repeat("ab", 32), false},
		{"short", "b3:" + strings.Repeat("ab", 31), false},
		{"long", good + "00", false},
		{"not hex", "b3:" + strings.Repeat("zz", 32), false},
		{"path", "b3:../" + strings.Repeat("a", 61), false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := KeyFor(tc.addr)
			if (err == nil) != tc.ok {
				t.Fatalf("KeyFor(%q) error = %v, want ok=%v", tc.addr, err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if c.Version() != 1 || c.Type() != cid.Raw {
				t.Fatalf("cid %s: version %d codec %#x, want 1 and raw", c, c.Version(), c.Type())
			}
			d, err := mh.Decode(c.Hash())
			if err != nil || d.Code != mh.BLAKE3 || d.Length != 32 {
				t.Fatalf("multihash %v (err %v): want blake3 (0x1e), 32 bytes", d, err)
			}
			back, err := AddressOf(c)
			if err != nil || back != tc.addr {
				t.Fatalf("AddressOf = %q, %v; want %q", back, err, tc.addr)
			}
		})
	}
}

func TestAddressOfRefusesOtherCIDs(t *testing.T) {
	sha, err := mh.Sum([]byte("x"), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	short, err := mh.Encode([]byte("short"), mh.BLAKE3)
	if err != nil {
		t.Fatal(err)
	}
	good, err := KeyFor(testAddr(1))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]cid.Cid{
		"sha2-256":         cid.NewCidV1(cid.Raw, sha),
		"short blake3":     cid.NewCidV1(cid.Raw, short),
		"dag-pb codec":     cid.NewCidV1(cid.DagProtobuf, good.Hash()),
		"cidv0 of sha-256": cid.NewCidV0(sha),
	}
	for name, c := range tests {
		if a, err := AddressOf(c); err == nil {
			t.Errorf("%s: AddressOf(%s) = %q, want an error", name, c, a)
		}
	}
}
