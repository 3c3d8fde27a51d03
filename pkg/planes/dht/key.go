package dht

import (
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/macronode/macronode/pkg/address"
)

// KeyFor returns the DHT key of a content address "b3:<64 hex>": a CIDv1
// with the raw codec (0x55) and a blake3 multihash (0x1e) of the 32-byte
// digest. Anything that is not a well-formed address is refused.
func KeyFor(addr string) (cid.Cid, error) {
	digest, err := address.Parse(addr)
	if err != nil {
		return cid.Undef, fmt.Errorf("dht key of %q: %w", addr, err)
	}
	h, err := mh.Encode(digest[:], mh.BLAKE3)
	if err != nil {
		return cid.Undef, fmt.Errorf("dht key of %q: %w", addr, err)
	}
	return cid.NewCidV1(cid.Raw, h), nil
}

// AddressOf inverts KeyFor: the content address a DHT key stands for. It
// refuses keys that are not CIDv1(raw, blake3-256).
func AddressOf(c cid.Cid) (string, error) {
	if c.Version() != 1 || c.Type() != cid.Raw {
		return "", fmt.Errorf("cid %s: want CIDv1 with the raw codec", c)
	}
	d, err := mh.Decode(c.Hash())
	if err != nil {
		return "", fmt.Errorf("cid %s: %w", c, err)
	}
	if d.Code != mh.BLAKE3 || len(d.Digest) != 32 {
		return "", fmt.Errorf("cid %s: want a 32-byte blake3 multihash", c)
	}
	return address.Format([32]byte(d.Digest)), nil
}
