package storage

import (
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeebo/blake3"
)

// Every shard exists once the store is open, so no Put has to create one.
func TestOpenCreatesShards(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDisk(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ents, err := os.ReadDir(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != shardCount {
		t.Fatalf("%d entries in objects/, want %d shards", len(ents), shardCount)
	}
	for i, e := range ents {
		if !e.IsDir() || e.Name() != shardName(i) {
			t.Fatalf("entry %d is %q (dir %v), want shard %q", i, e.Name(), e.IsDir(), shardName(i))
		}
	}
}

// A store written with the two-level layout opens with its blobs moved to
// one level; what cannot move stays where it is, and nothing is lost.
func TestOpenMigratesTwoLevelLayout(t *testing.T) {
	dir := t.TempDir()
	oldPath := func(h string) string { return filepath.Join(dir, "objects", h[:2], h[2:4], h) }
	write := func(p string, data []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	blobs := [][]byte{[]byte("first blob"), []byte("second blob"), []byte("both layouts")}
	hexes := make([]string, len(blobs))
	for i, b := range blobs {
		sum := blake3.Sum256(b)
		hexes[i] = hex.EncodeToString(sum[:])
		write(oldPath(hexes[i]), b)
	}
	// The third is stored under both layouts already: the one-level copy
	// wins, the old one stays for the operator.
	write(filepath.Join(dir, "objects", hexes[2][:2], hexes[2]), blobs[2])
	stray := filepath.Join(filepath.Dir(oldPath(hexes[0])), "notes.txt")
	write(stray, []byte("x"))

	d, err := OpenDisk(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, b := range blobs {
		rc, _, err := d.Open(blake3.Sum256(b))
		if err != nil {
			t.Fatalf("blob %d after migration: %v", i, err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, b) {
			t.Fatalf("blob %d reads %q, want %q", i, got, b)
		}
	}
	if n, _ := d.Usage(); n != int64(len(blobs)) {
		t.Fatalf("Usage counts %d objects, want %d", n, len(blobs))
	}
	cases := []struct {
		path   string
		exists bool
	}{
		{oldPath(hexes[0]), false},
		{stray, true}, // and so its inner dir stays
		{filepath.Dir(oldPath(hexes[1])), false},
		{oldPath(hexes[2]), true},
	}
	for _, c := range cases {
		_, err := os.Lstat(c.path)
		if got := err == nil; got != c.exists {
			t.Errorf("%s exists = %v, want %v (%v)", c.path, got, c.exists, err)
		}
	}
	got, err := d.List(nil, 10)
	if err != nil || len(got) != len(blobs) {
		t.Fatalf("List = %d addresses (%v), want %d", len(got), err, len(blobs))
	}
}
