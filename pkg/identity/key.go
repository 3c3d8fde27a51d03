// Package identity holds a node's identity (SPEC §8 identity): its ed25519
// node key, whose libp2p peer id is the node id, and the node record that
// the node key signs to bind the node's overlay, its DHT host and its ready
// planes together.
//
// Key files hold libp2p's protobuf encoding of the private key
// (crypto.MarshalPrivateKey), the format `ipfs key export` also writes.
// Nothing in this package logs, prints or formats a private key; errors name
// files, never their content.
package identity

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/macronode/macronode/pkg/fsx"
)

// maxKeyBytes caps what Read accepts: an ed25519 key file is 68 bytes.
const maxKeyBytes = 4 << 10

// ErrNotEd25519 is wrapped by Read and Load when the key is of another type.
var ErrNotEd25519 = errors.New("not an ed25519 key")

// Generate returns a fresh ed25519 node key.
func Generate() (crypto.PrivKey, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return priv, nil
}

// NodeID returns the node id (libp2p peer id) of key.
func NodeID(key crypto.PrivKey) (peer.ID, error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("derive node id: %w", err)
	}
	return id, nil
}

// Read decodes a key file's content from r: at most 4 KiB, an ed25519 key.
// The parent hands a child its key on an inherited descriptor, which the
// child reads once with Read (or Load("/dev/fd/3")).
func Read(r io.Reader) (crypto.PrivKey, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxKeyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	if len(b) > maxKeyBytes {
		return nil, fmt.Errorf("read key: more than %d bytes: not a key file", maxKeyBytes)
	}
	key, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("decode key: %w", err)
	}
	if key.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("decode key: %w", ErrNotEd25519)
	}
	return key, nil
}

// Load reads the key file at path.
func Load(path string) (crypto.PrivKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open key file: %w", err)
	}
	defer f.Close()
	key, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}

// Write stores key at path with mode 0600, creating missing directories with
// mode 0700. It never replaces an existing file (the error wraps
// fs.ErrExist): a key is an identity, and overwriting one loses it. The file
// appears whole or not at all: written to a temp file in the same
// directory, fsynced, then linked into place and the directory fsynced.
func Write(path string, key crypto.PrivKey) error {
	if key == nil {
		return errors.New("write key: no key")
	}
	if key.Type() != crypto.Ed25519 {
		return fmt.Errorf("write key: %w", ErrNotEd25519)
	}
	b, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create key dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return fmt.Errorf("create temp key file in %s: %w", dir, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after the link, only the temp name goes
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("chmod temp key file: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write temp key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("fsync temp key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close temp key file: %w", err)
	}
	// Link, unlike rename, fails when path exists: two processes creating
	// the same key at once cannot replace each other's.
	if err := os.Link(tmpName, path); err != nil {
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := os.Remove(tmpName); err != nil {
		return fmt.Errorf("remove temp key file: %w", err)
	}
	return fsx.SyncDir(dir)
}

// LoadOrCreate loads the key at path, or generates one and writes it there
// (see Write) when no file exists. created reports which happened. When
// another process creates the file at the same moment, its key is loaded.
func LoadOrCreate(path string) (key crypto.PrivKey, created bool, err error) {
	key, err = Load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	key, err = Generate()
	if err != nil {
		return nil, false, err
	}
	switch err := Write(path, key); {
	case err == nil:
		return key, true, nil
	case errors.Is(err, fs.ErrExist):
		key, err = Load(path)
		return key, false, err
	default:
		return nil, false, err
	}
}
