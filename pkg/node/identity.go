package node

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/identity"
)

// NodeKeyFile is the node key's file name under data_dir.
const NodeKeyFile = "node.key"

// NodeKeyPath is where the node key of cfg lives: <data_dir>/node.key.
func NodeKeyPath(cfg *config.Config) string { return filepath.Join(cfg.DataDir, NodeKeyFile) }

// LoadNodeKey returns the node's ed25519 key (SPEC §8 identity), whose
// libp2p peer id is the node id. It is <data_dir>/node.key, created with
// mode 0600 on first start. Under amnesia it is a fresh key held only in
// memory: nothing is read from or written to disk, so every run of an
// amnesiac node has a new node id.
func LoadNodeKey(cfg *config.Config) (crypto.PrivKey, error) {
	if cfg == nil {
		return nil, errors.New("node key: no configuration")
	}
	if cfg.Amnesia {
		key, err := identity.Generate()
		if err != nil {
			return nil, fmt.Errorf("node key: %w", err)
		}
		return key, nil
	}
	if cfg.DataDir == "" {
		return nil, errors.New("node key: data_dir is empty")
	}
	key, _, err := identity.LoadOrCreate(NodeKeyPath(cfg))
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	return key, nil
}
