package dht

import (
	"fmt"
	"path/filepath"

	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/macronode/macronode/pkg/identity"
)

// loadKey returns the DHT host's own key: <data dir>/dht.key, created
// (0600) on first start; under amnesia a fresh key that lives in memory
// only. It is never the node key: kad-dht takes a provider record only from
// the provider itself, so the DHT host needs a peer id of its own.
func loadKey(cfg Config) (crypto.PrivKey, error) {
	if cfg.Amnesia {
		k, err := identity.Generate()
		if err != nil {
			return nil, fmt.Errorf("generate dht key: %w", err)
		}
		return k, nil
	}
	path := filepath.Join(cfg.DataDir, KeyFile)
	k, _, err := identity.LoadOrCreate(path)
	if err != nil {
		return nil, fmt.Errorf("dht key %s: %w", path, err)
	}
	return k, nil
}

// recordValidator validates /mnnode/<dht peer id> values: signed node
// records bound to the key's peer id, the highest seq winning.
func recordValidator() record.Validator { return identity.RecordValidator{} }

// verifyRecord checks a signed node record.
func verifyRecord(b []byte) (identity.NodeRecord, error) {
	rec, err := identity.Verify(b)
	if err != nil {
		return identity.NodeRecord{}, fmt.Errorf("verify node record: %w", err)
	}
	return rec, nil
}
