package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/identity"
	"github.com/macronode/macronode/pkg/supervisor"
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

// keyFD is the descriptor the overlay child reads its node key from: the
// first one after its listener, which systemd's convention puts at fd 3
// (Spec.HoldListener).
func keyFD(sp supervisor.Spec) int {
	if sp.HoldListener {
		return 4
	}
	return 3
}

// HandNodeKey makes the overlay's spec (if any) inherit key on the fd after
// its listener (keyFD) at every spawn, through a pipe the parent fills and
// closes, and points the child at it with --identity-file /dev/fd/N. The
// key never appears in the child's environment or argv, and under amnesia
// never on disk.
func HandNodeKey(specs []supervisor.Spec, key crypto.PrivKey) error {
	b, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	for i := range specs {
		if specs[i].Name != "overlay" {
			continue
		}
		specs[i].Args = append(specs[i].Args, "--identity-file", fmt.Sprintf("/dev/fd/%d", keyFD(specs[i])))
		specs[i].ExtraFiles = func() ([]*os.File, error) { return keyPipe(b) }
	}
	return nil
}

// keyPipe returns the read end of a pipe that holds b, then EOF. A key is
// far smaller than a pipe's buffer, so the write never blocks.
func keyPipe(b []byte) ([]*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("key pipe: %w", err)
	}
	_, werr := w.Write(b)
	if err := errors.Join(werr, w.Close()); err != nil {
		r.Close()
		return nil, fmt.Errorf("key pipe: %w", err)
	}
	return []*os.File{r}, nil
}
