package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/identity"
	"github.com/macronode/macronode/pkg/supervisor"
)

func keyID(t *testing.T, cfg *config.Config) peer.ID {
	t.Helper()
	key, err := LoadNodeKey(cfg)
	if err != nil {
		t.Fatalf("LoadNodeKey: %v", err)
	}
	id, err := identity.NodeID(key)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestLoadNodeKeyPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // not there yet: created
	cfg := &config.Config{DataDir: dir}
	first := keyID(t, cfg)
	fi, err := os.Stat(filepath.Join(dir, NodeKeyFile))
	if err != nil {
		t.Fatalf("key file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", fi.Mode().Perm())
	}
	if again := keyID(t, cfg); again != first {
		t.Errorf("second load: node id %s, want %s (the key must survive restarts)", again, first)
	}
	// What LoadNodeKey created is what the CLI and the children read.
	key, err := identity.Load(NodeKeyPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := identity.NodeID(key); id != first {
		t.Errorf("key file holds %s, want %s", id, first)
	}
}

func TestLoadNodeKeyAmnesia(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{DataDir: dir, Amnesia: true}
	a, b := keyID(t, cfg), keyID(t, cfg)
	if a == b {
		t.Errorf("two amnesiac runs share node id %s", a)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("amnesia wrote to data_dir: %v", entries)
	}
}

func TestLoadNodeKeyErrors(t *testing.T) {
	junk := t.TempDir()
	if err := os.WriteFile(filepath.Join(junk, NodeKeyFile), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  *config.Config
	}{
		{"nil config", nil},
		{"no data dir", &config.Config{}},
		{"junk key file", &config.Config{DataDir: junk}},
		{"data dir is a file", &config.Config{DataDir: notDir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if key, err := LoadNodeKey(tc.cfg); err == nil {
				t.Fatalf("LoadNodeKey succeeded with %v", key.Type())
			}
		})
	}
	// A junk key file is refused, never replaced: it may be an operator's mistake to fix.
	b, err := os.ReadFile(filepath.Join(junk, NodeKeyFile))
	if err != nil || string(b) != "not a key" {
		t.Errorf("junk key file changed: %q, %v", b, err)
	}
}

func TestHandNodeKeyOnlyToOverlay(t *testing.T) {
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	specs := []supervisor.Spec{{Name: "storage"}, {Name: "overlay", Args: []string{"--listen", "x"}}, {Name: "dht"}}
	if err := HandNodeKey(specs, key); err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		if sp.Name != "overlay" {
			if sp.ExtraFiles != nil || len(sp.Args) != 0 {
				t.Errorf("%s got the node key: %+v", sp.Name, sp)
			}
			continue
		}
		if got := strings.Join(sp.Args, " "); got != "--listen x --identity-file /dev/fd/3" {
			t.Errorf("overlay args %q", got)
		}
		for range 2 { // every spawn gets a fresh, full pipe
			files, err := sp.ExtraFiles()
			if err != nil || len(files) != 1 {
				t.Fatalf("ExtraFiles = %v, %v", files, err)
			}
			got, err := identity.Read(files[0])
			files[0].Close()
			if err != nil || !got.Equals(key) {
				t.Fatalf("key read from the pipe = %v, %v", got, err)
			}
		}
	}
}
