package identity

import (
	"errors"
	"fmt"

	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Namespace is the DHT value namespace of node records.
const Namespace = "mnnode"

// ErrKeyMismatch is wrapped by RecordValidator when a record's DHTPeerID is
// not the peer id its DHT key names.
var ErrKeyMismatch = errors.New("record's dht_peer_id does not match the key")

// RecordKey is the DHT key under which the node whose DHT host is dhtPeer
// stores its signed node record: "/mnnode/<dht peer id>", the peer id in its
// usual text form (as peer.ID.String writes it).
func RecordKey(dhtPeer peer.ID) string {
	return "/" + Namespace + "/" + dhtPeer.String()
}

// RecordValidator validates node records stored in the DHT (go-libp2p-record's
// Validator, for kad-dht's NamespacedValidator under Namespace). A value is
// valid when Verify accepts it (so only a node's own key signs for its node
// id) and its DHTPeerID is the key's peer id. Select picks the highest Seq.
type RecordValidator struct{}

var _ record.Validator = RecordValidator{}

// Validate reports whether value is a valid node record for key.
func (RecordValidator) Validate(key string, value []byte) error {
	_, err := verifyForKey(key, value)
	return err
}

// Select returns the index of the valid record with the highest Seq; of
// equal ones, the first. It fails only when no value is valid.
func (RecordValidator) Select(key string, values [][]byte) (int, error) {
	best, bestSeq := -1, uint64(0)
	var firstErr error
	for i, v := range values {
		rec, err := verifyForKey(key, v)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if best < 0 || rec.Seq > bestSeq {
			best, bestSeq = i, rec.Seq
		}
	}
	if best < 0 {
		if firstErr == nil {
			firstErr = errors.New("no values")
		}
		return 0, fmt.Errorf("select node record for %q: %w", key, firstErr)
	}
	return best, nil
}

// verifyForKey parses key as /mnnode/<dht peer id>, verifies value and checks
// that it names that DHT peer.
func verifyForKey(key string, value []byte) (NodeRecord, error) {
	ns, rest, err := record.SplitKey(key)
	if err != nil {
		return NodeRecord{}, fmt.Errorf("node record key %q: %w", key, err)
	}
	if ns != Namespace {
		return NodeRecord{}, fmt.Errorf("node record key %q: namespace is not %q", key, Namespace)
	}
	want, err := peer.Decode(rest)
	if err != nil {
		return NodeRecord{}, fmt.Errorf("node record key %q: %w", key, err)
	}
	rec, err := Verify(value)
	if err != nil {
		return NodeRecord{}, err
	}
	if rec.DHTPeerID != want.String() {
		return NodeRecord{}, fmt.Errorf("%w: key names %s, record %q", ErrKeyMismatch, want, rec.DHTPeerID)
	}
	return rec, nil
}
