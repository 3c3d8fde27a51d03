package storage

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/address"
	"github.com/macronode/macronode/pkg/fsx"
)

// tempFile is the part of *os.File that Put writes through. It is an
// interface only so tests can inject ENOSPC/EDQUOT on write or fsync.
type tempFile interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

// DiskStore keeps blobs as files under dir:
//
//	dir/LOCK                                     flock held while the store is open
//	dir/objects/<hex[0:2]>/<64 hex>        the blobs, sharded 256 ways
//	dir/tmp/put-*                          uploads in progress
//	dir/quarantine/<64 hex>.<unix nanos>   blobs that failed verification
//
// The 256 shard directories are created when the store opens (one fsync of
// objects/ covers them all), so a Put never pays for a mkdir and the fsync
// of a new directory's parent. 256 keeps that start-up cost and the
// listing's directory walk small; a million blobs make about 4,000 entries
// per shard, which ext4's hashed directories look up in constant time. A
// store written with the former two-level layout (<hex[0:2]>/<hex[2:4]>/)
// is moved to this one when it opens (migrateLayout).
//
// tmp/ lives on the same file system as objects/, so the final rename is
// atomic. New blobs enter objects/ only by a no-replace rename, so a name
// there changes its file only when Quarantine takes it away; it holds mu, which makes its "is this still the copy that
// failed?" check and its rename one step. Nothing else takes a lock: the
// counters are atomic and the file system arbitrates concurrent writers.
// The LOCK file keeps a second process off the same directory.
type DiskStore struct {
	dir, objDir, tmpDir, quarDir string
	log                          hclog.Logger

	objects atomic.Int64
	bytes   atomic.Int64
	closed  atomic.Bool
	lock    *os.File // holds the flock on dir/LOCK; nil where flock is unsupported

	mu sync.Mutex // serialises remove (stat + rename of a stored blob to quarantine/)

	// Hooks, swapped by tests to simulate a full disk or count fsyncs.
	createTemp func(dir, pattern string) (tempFile, error)
	rename     func(oldpath, newpath string) error // must fail with fs.ErrExist if newpath exists
	syncDir    func(dir string) error
}

// OpenDisk opens (creating with mode 0700 when missing) a disk store rooted
// at dir, locks it (a second OpenDisk of the same dir, in this process or
// another, fails with ErrInUse until Close), removes stray temp files left
// by a crash, and counts the stored blobs by walking objects/ — one readdir
// per shard and one lstat per blob, which takes well under a second per
// 100k blobs on a warm cache.
func OpenDisk(dir string, log hclog.Logger) (*DiskStore, error) {
	if dir == "" {
		return nil, errors.New("open disk store: empty data dir")
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	d := &DiskStore{
		dir:     dir,
		objDir:  filepath.Join(dir, "objects"),
		tmpDir:  filepath.Join(dir, "tmp"),
		quarDir: filepath.Join(dir, "quarantine"),
		log:     log,
		createTemp: func(dir, pattern string) (tempFile, error) {
			return os.CreateTemp(dir, pattern)
		},
		rename:  renameNoReplace,
		syncDir: fsx.SyncDir,
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return nil, fmt.Errorf("open disk store: %w", err)
	}
	lock, err := lockDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("open disk store: %w", err)
	}
	d.lock = lock
	if err := d.prepare(); err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("open disk store: %w", err)
	}
	return d, nil
}

// prepare creates the sub-directories and the 256 shards, moves a
// two-level store to the one-level layout, cleans tmp/ and counts the
// blobs; it runs with the directory locked.
func (d *DiskStore) prepare() error {
	for _, p := range []string{d.objDir, d.tmpDir, d.quarDir} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
	}
	if err := d.mkShards(); err != nil {
		return err
	}
	// Make the freshly created directory entries durable before any Put
	// relies on them (cheap, once per start).
	for _, p := range []string{d.objDir, filepath.Dir(d.dir), d.dir} {
		if err := fsx.SyncDir(p); err != nil {
			return fmt.Errorf("fsync %s: %w", p, err)
		}
	}
	if err := d.migrateLayout(); err != nil {
		return err
	}
	if err := d.cleanTemp(); err != nil {
		return err
	}
	return d.count()
}

// cleanTemp removes every entry of tmp/: uploads interrupted by a crash.
func (d *DiskStore) cleanTemp() error {
	ents, err := os.ReadDir(d.tmpDir)
	if err != nil {
		return fmt.Errorf("clean temp files: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(d.tmpDir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("clean temp files: %w", err)
		}
		d.log.Info("removed stray temp file", "path", p)
	}
	return nil
}

// count walks objects/ and initialises the object and byte counters. Files
// whose name does not match their shard are logged and left alone.
func (d *DiskStore) count() error {
	var objects, bytes int64
	err := filepath.WalkDir(d.objDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(d.objDir, p)
		a, perr := address.Parse(address.Prefix + e.Name())
		if perr != nil || rel != d.relPath(a) || !e.Type().IsRegular() {
			d.log.Warn("ignoring unexpected file in objects dir", "path", p)
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		objects++
		bytes += fi.Size()
		return nil
	})
	if err != nil {
		return fmt.Errorf("count objects: %w", err)
	}
	d.objects.Store(objects)
	d.bytes.Store(bytes)
	return nil
}

func (d *DiskStore) relPath(a [32]byte) string {
	h := hex.EncodeToString(a[:])
	return filepath.Join(h[0:2], h)
}

func (d *DiskStore) path(a [32]byte) string { return filepath.Join(d.objDir, d.relPath(a)) }

// linkNoReplace is the portable no-replace rename: link fails with EEXIST
// when newpath exists; the temp name is removed after a successful link.
func linkNoReplace(oldpath, newpath string) error {
	if err := os.Link(oldpath, newpath); err != nil {
		return err
	}
	if err := os.Remove(oldpath); err != nil {
		return fmt.Errorf("remove temp name after link: %w", err)
	}
	return nil
}

// Open implements Store; the reader is the *os.File itself and the Version
// comes from fstat on it, so it describes the very file being read.
func (d *DiskStore) Open(addr [32]byte) (io.ReadSeekCloser, Version, error) {
	if d.closed.Load() {
		return nil, Version{}, ErrClosed
	}
	f, err := os.Open(d.path(addr))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Version{}, fmt.Errorf("open %s: %w", address.Format(addr), ErrNotFound)
	}
	if err != nil {
		return nil, Version{}, fmt.Errorf("open %s: %w", address.Format(addr), err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, Version{}, fmt.Errorf("stat %s: %w", address.Format(addr), err)
	}
	return f, Version{Size: fi.Size(), file: fi}, nil
}

// Quarantine implements Store: the stored file is renamed to
// quarantine/<hex>.<unix nanos> (kept for inspection, never served again),
// but only if it is still the file v was read from (os.SameFile).
func (d *DiskStore) Quarantine(addr [32]byte, v Version) error {
	h := hex.EncodeToString(addr[:])
	dst := filepath.Join(d.quarDir, h+"."+strconv.FormatInt(time.Now().UnixNano(), 10))
	return d.remove(addr, dst, v)
}

// remove moves the blob to dst, keeping the counters right even when two
// callers race for the same blob, and only when the stored file is the copy
// want. mu makes the check and the rename one step: no other code path takes
// a file away from its name, and renames into objects/ never replace.
func (d *DiskStore) remove(addr [32]byte, dst string, want Version) error {
	if d.closed.Load() {
		return ErrClosed
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.path(addr)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("quarantine %s: %w", address.Format(addr), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("quarantine %s: %w", address.Format(addr), err)
	}
	if !want.sameCopy(Version{Size: fi.Size(), file: fi}) {
		return fmt.Errorf("quarantine %s: the copy that was read has been replaced since: %w", address.Format(addr), ErrNotFound)
	}
	err = os.Rename(p, dst)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("quarantine %s: %w", address.Format(addr), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("quarantine %s: %w", address.Format(addr), err)
	}
	d.objects.Add(-1)
	d.bytes.Add(-fi.Size())
	if err := d.syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("quarantine %s: fsync shard dir: %w", address.Format(addr), err)
	}
	if err := d.syncDir(d.quarDir); err != nil {
		return fmt.Errorf("quarantine %s: fsync quarantine dir: %w", address.Format(addr), err)
	}
	return nil
}

// Usage implements Store.
func (d *DiskStore) Usage() (objects, bytes int64) { return d.objects.Load(), d.bytes.Load() }

// Dir returns the store's root directory.
func (d *DiskStore) Dir() string { return d.dir }

// Close implements Store: it releases the data dir's lock. Every
// successful Put is already durable, so there is nothing to flush.
func (d *DiskStore) Close() error {
	if !d.closed.CompareAndSwap(false, true) || d.lock == nil {
		return nil
	}
	if err := d.lock.Close(); err != nil {
		return fmt.Errorf("close disk store: release lock: %w", err)
	}
	return nil
}

// check reports whether the objects directory is still usable (for Ready).
func (d *DiskStore) check() error {
	if d.closed.Load() {
		return ErrClosed
	}
	if _, err := os.Stat(d.objDir); err != nil {
		return fmt.Errorf("objects dir: %w", err)
	}
	return nil
}
