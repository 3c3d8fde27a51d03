package storage

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/address"
	"github.com/macronode/macronode/pkg/fsx"
)

// TestLateQuarantineSparesFreshUpload: GET1 reads a corrupt copy; before it
// quarantines, GET2 quarantines that copy and a client uploads the content
// again (201). GET1's quarantine must leave the fresh, good copy alone.
func TestLateQuarantineSparesFreshUpload(t *testing.T) {
	srv, reg := newServer(t, Config{})
	data := randBytes(t, 100_000)
	var nested atomic.Bool
	var p *plane
	srv.hookBeforeQuarantine = func() {
		if !nested.CompareAndSwap(false, true) {
			return // GET2's own quarantine goes ahead
		}
		resp, body, _ := p.do(t, http.MethodGet, "/o/"+address.Format(blake3.Sum256(data)), nil)
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("GET2: status %d %s, want 500", resp.StatusCode, body)
		}
		if res := p.put(t, data); res.status != http.StatusCreated {
			t.Errorf("re-upload: status %d, want 201", res.status)
		}
	}
	p = serve(t, srv, reg)
	addr := p.put(t, data).body.Address
	flipByte(t, objectPath(p.dir, addr), 500)

	resp, body, _ := p.do(t, http.MethodGet, "/o/"+addr, nil) // GET1
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("GET1: status %d, want 500", resp.StatusCode)
	}
	var eb errBody
	mustJSONError(t, resp, body, &eb)
	if !nested.Load() {
		t.Fatal("the quarantine hook never ran")
	}
	resp, body, err := p.do(t, http.MethodGet, "/o/"+addr, nil)
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET after the race: status %d err %v: the fresh copy was quarantined", resp.StatusCode, err)
	}
	if q := files(t, filepath.Join(p.dir, "quarantine")); len(q) != 1 {
		t.Fatalf("quarantine holds %v, want only the corrupt copy", q)
	}
	if got := testutil.Metric(t, p.reg, "macronode_storage_verify_failures_total"); got != 1 {
		t.Fatalf("verify_failures_total = %v, want 1", got)
	}
	if o := testutil.Metric(t, p.reg, "macronode_storage_objects"); o != 1 {
		t.Fatalf("objects gauge = %v, want 1", o)
	}
}

// TestReuploadHealsCorruptCopy: a dedup hit on a stored copy of the right
// size but wrong bytes must not throw the good upload away.
func TestReuploadHealsCorruptCopy(t *testing.T) {
	p := newPlane(t, Config{})
	data := randBytes(t, 300_000)
	addr := p.put(t, data).body.Address
	flipByte(t, objectPath(p.dir, addr), 150_000)
	if res := p.put(t, data); res.status != http.StatusCreated {
		t.Fatalf("re-upload over a corrupt copy: status %d, want 201", res.status)
	}
	resp, body, err := p.do(t, http.MethodGet, "/o/"+addr, nil)
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET: status %d err %v", resp.StatusCode, err)
	}
	if q := files(t, filepath.Join(p.dir, "quarantine")); len(q) != 1 {
		t.Fatalf("quarantine holds %v, want the corrupt copy", q)
	}
	if got := files(t, filepath.Join(p.dir, "tmp")); len(got) != 0 {
		t.Fatalf("temp files left: %v", got)
	}
	if got := testutil.Metric(t, p.reg, "macronode_storage_dedup_hits_total"); got != 0 {
		t.Fatalf("dedup_hits_total = %v, want 0", got)
	}
	if o, b := testutil.Metric(t, p.reg, "macronode_storage_objects"), testutil.Metric(t, p.reg, "macronode_storage_bytes"); o != 1 || b != 300_000 {
		t.Fatalf("gauges objects=%v bytes=%v", o, b)
	}
	// And a further upload is an ordinary dedup hit.
	if res := p.put(t, data); res.status != http.StatusOK {
		t.Fatalf("third upload: status %d, want 200", res.status)
	}
}

// syncCounter wraps d.syncDir and counts fsyncs per directory.
type syncCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func countSyncs(d *DiskStore) *syncCounter {
	c := &syncCounter{n: map[string]int{}}
	d.syncDir = func(dir string) error {
		c.mu.Lock()
		c.n[dir]++
		c.mu.Unlock()
		return fsx.SyncDir(dir)
	}
	return c
}

func (c *syncCounter) count(dir string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[dir]
}

// TestDedupMakesEntryDurable: a dedup hit fsyncs the shard directory before
// it is acknowledged, both when the copy was there before the upload and
// when a concurrent Put renamed it in first (the ErrExist branch).
func TestDedupMakesEntryDurable(t *testing.T) {
	ctx := context.Background()
	t.Run("already stored", func(t *testing.T) {
		d, err := OpenDisk(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		data := randBytes(t, 5000)
		addr, _, _, err := d.Put(ctx, bytes.NewReader(data), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		c := countSyncs(d)
		if _, _, dedup, err := d.Put(ctx, bytes.NewReader(data), 1<<20); err != nil || !dedup {
			t.Fatalf("second Put: dedup=%v err=%v", dedup, err)
		}
		if n := c.count(filepath.Dir(d.path(addr))); n != 1 {
			t.Fatalf("shard dir fsynced %d times on a dedup hit, want 1", n)
		}
	})
	t.Run("lost the rename", func(t *testing.T) {
		d, err := OpenDisk(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		data := randBytes(t, 5000)
		// A concurrent Put gets its copy in between our check and our
		// rename, and has not fsynced the shard dir yet.
		d.rename = func(oldpath, newpath string) error {
			if err := os.WriteFile(newpath, data, 0o600); err != nil {
				return err
			}
			return renameNoReplace(oldpath, newpath)
		}
		c := countSyncs(d)
		addr, size, dedup, err := d.Put(ctx, bytes.NewReader(data), 1<<20)
		if err != nil || !dedup || size != 5000 {
			t.Fatalf("Put = %d dedup=%v err=%v, want a dedup hit", size, dedup, err)
		}
		if n := c.count(filepath.Dir(d.path(addr))); n != 1 {
			t.Fatalf("shard dir fsynced %d times after losing the rename, want 1", n)
		}
		if got := files(t, d.tmpDir); len(got) != 0 {
			t.Fatalf("temp files left: %v", got)
		}
	})
	t.Run("lost the rename to a corrupt copy", func(t *testing.T) {
		d, err := OpenDisk(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		data := randBytes(t, 5000)
		bad := bytes.Clone(data)
		bad[10] ^= 1
		var once sync.Once
		d.rename = func(oldpath, newpath string) error {
			var err error
			once.Do(func() { err = os.WriteFile(newpath, bad, 0o600) })
			if err != nil {
				return err
			}
			return renameNoReplace(oldpath, newpath)
		}
		addr, _, dedup, err := d.Put(ctx, bytes.NewReader(data), 1<<20)
		if err != nil || dedup {
			t.Fatalf("Put: dedup=%v err=%v, want the corrupt copy replaced", dedup, err)
		}
		if got, _ := os.ReadFile(d.path(addr)); !bytes.Equal(got, data) {
			t.Fatal("stored copy is not the upload")
		}
		if q := files(t, d.quarDir); len(q) != 1 {
			t.Fatalf("quarantine holds %v", q)
		}
	})
}
