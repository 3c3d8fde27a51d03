package storage

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/zeebo/blake3"
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
//	dir/objects/<hex[0:2]>/<hex[2:4]>/<64 hex>   the blobs, sharded 65536 ways
//	dir/tmp/put-*                                uploads in progress
//	dir/quarantine/<64 hex>.<unix nanos>         blobs that failed verification
//
// tmp/ lives on the same file system as objects/, so the final rename is
// atomic. It holds no mutex at all: the only shared state is two atomic
// counters, and the file system arbitrates concurrent writers.
type DiskStore struct {
	dir, objDir, tmpDir, quarDir string
	log                          hclog.Logger

	objects atomic.Int64
	bytes   atomic.Int64
	closed  atomic.Bool

	// Hooks, swapped by tests to simulate a full disk.
	createTemp func(dir, pattern string) (tempFile, error)
	rename     func(oldpath, newpath string) error // must fail with fs.ErrExist if newpath exists
}

// OpenDisk opens (creating with mode 0700 when missing) a disk store rooted
// at dir, removes stray temp files left by a crash, and counts the stored
// blobs by walking objects/ — one readdir per shard and one lstat per blob,
// which takes well under a second per 100k blobs on a warm cache.
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
		rename: renameNoReplace,
	}
	for _, p := range []string{d.dir, d.objDir, d.tmpDir, d.quarDir} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, fmt.Errorf("open disk store: %w", err)
		}
	}
	// Make the freshly created directory entries durable before any Put
	// relies on them (cheap, once per start).
	for _, p := range []string{filepath.Dir(d.dir), d.dir} {
		if err := syncDir(p); err != nil {
			return nil, fmt.Errorf("open disk store: fsync %s: %w", p, err)
		}
	}
	if err := d.cleanTemp(); err != nil {
		return nil, fmt.Errorf("open disk store: %w", err)
	}
	if err := d.count(); err != nil {
		return nil, fmt.Errorf("open disk store: %w", err)
	}
	return d, nil
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
		a, perr := ParseAddress(AddressPrefix + e.Name())
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
	return filepath.Join(h[0:2], h[2:4], h)
}

func (d *DiskStore) path(a [32]byte) string { return filepath.Join(d.objDir, d.relPath(a)) }

// Put implements Store. The blob is written to tmp/, hashed on the way, and
// then: if a blob with the same address and size already exists, the temp
// file is removed and dedup is reported (without an fsync); otherwise the
// temp file is fsynced, closed, renamed (no-replace) into its shard and the
// shard directory (and any newly created parent) is fsynced. A concurrent
// Put of the same content loses the no-replace rename and reports dedup.
func (d *DiskStore) Put(ctx context.Context, r io.Reader, max int64) (addr [32]byte, size int64, dedup bool, err error) {
	if d.closed.Load() {
		return addr, 0, false, ErrClosed
	}
	f, err := d.createTemp(d.tmpDir, "put-*")
	if err != nil {
		return addr, 0, false, classify("create temp file", err)
	}
	tmp := f.Name()
	closed, done := false, false
	defer func() {
		if !closed {
			_ = f.Close()
		}
		if !done {
			if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				d.log.Error("remove temp file", "path", tmp, "error", rerr)
			}
		}
	}()

	h := blake3.New()
	bp := putBufs.Get().(*[]byte)
	defer putBufs.Put(bp)
	buf := *bp
	for {
		if err := ctx.Err(); err != nil {
			return addr, 0, false, fmt.Errorf("put: %w", err)
		}
		n, eof, rerr := fill(r, buf)
		if n > 0 {
			size += int64(n)
			if size > max {
				return addr, 0, false, fmt.Errorf("put: %w: more than %d bytes", ErrTooLarge, max)
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return addr, 0, false, classify("write temp file", err)
			}
			_, _ = h.Write(buf[:n])
		}
		if rerr != nil {
			return addr, 0, false, rerr
		}
		if eof {
			break
		}
	}
	copy(addr[:], h.Sum(nil))
	final := d.path(addr)

	if fi, err := os.Stat(final); err == nil {
		if fi.Size() == size {
			return addr, size, true, nil
		}
		// Same address, different size: the stored copy is damaged. Take it
		// out of service and store the fresh one in its place.
		d.log.Error("stored object has wrong size, replacing it", "address", FormatAddress(addr), "size", fi.Size(), "want", size)
		if err := d.Quarantine(addr); err != nil && !errors.Is(err, ErrNotFound) {
			return addr, 0, false, fmt.Errorf("put: %w", err)
		}
	}

	if err := f.Sync(); err != nil {
		return addr, 0, false, classify("fsync temp file", err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return addr, 0, false, classify("close temp file", err)
	}
	if err := d.mkShard(final); err != nil {
		return addr, 0, false, err
	}
	if err := d.rename(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return addr, size, true, nil
		}
		return addr, 0, false, classify("rename into place", err)
	}
	done = true
	d.objects.Add(1)
	d.bytes.Add(size)
	if err := syncDir(filepath.Dir(final)); err != nil {
		// The object is visible but its directory entry may not survive a
		// crash; report the failure rather than claim durability.
		return addr, 0, false, classify("fsync shard dir", err)
	}
	return addr, size, false, nil
}

// mkShard creates the two shard directories above final when missing and
// fsyncs the parent of each one it creates.
func (d *DiskStore) mkShard(final string) error {
	inner := filepath.Dir(final)
	outer := filepath.Dir(inner)
	for _, p := range []string{outer, inner} {
		err := os.Mkdir(p, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return classify("create shard dir", err)
		}
		if err := syncDir(filepath.Dir(p)); err != nil {
			return classify("fsync shard parent", err)
		}
	}
	return nil
}

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

// syncDir fsyncs a directory so that entries added to or removed from it are
// durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open implements Store; the reader is the *os.File itself.
func (d *DiskStore) Open(addr [32]byte) (io.ReadSeekCloser, int64, error) {
	if d.closed.Load() {
		return nil, 0, ErrClosed
	}
	f, err := os.Open(d.path(addr))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("open %s: %w", FormatAddress(addr), ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", FormatAddress(addr), err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, fmt.Errorf("stat %s: %w", FormatAddress(addr), err)
	}
	return f, fi.Size(), nil
}

// Stat implements Store.
func (d *DiskStore) Stat(addr [32]byte) (int64, error) {
	if d.closed.Load() {
		return 0, ErrClosed
	}
	fi, err := os.Stat(d.path(addr))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("stat %s: %w", FormatAddress(addr), ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", FormatAddress(addr), err)
	}
	return fi.Size(), nil
}

// Has implements Store.
func (d *DiskStore) Has(addr [32]byte) (bool, error) {
	_, err := d.Stat(addr)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Delete implements Store: unlink, then fsync the shard directory.
func (d *DiskStore) Delete(addr [32]byte) error {
	return d.remove(addr, "", "delete")
}

// Quarantine implements Store: the blob is renamed to
// quarantine/<hex>.<unix nanos> (kept for inspection, never served again).
func (d *DiskStore) Quarantine(addr [32]byte) error {
	h := hex.EncodeToString(addr[:])
	dst := filepath.Join(d.quarDir, h+"."+strconv.FormatInt(time.Now().UnixNano(), 10))
	return d.remove(addr, dst, "quarantine")
}

// remove unlinks the blob (dst == "") or moves it to dst, keeping the
// counters right even when two callers race for the same blob.
func (d *DiskStore) remove(addr [32]byte, dst, op string) error {
	if d.closed.Load() {
		return ErrClosed
	}
	p := d.path(addr)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s: %w", op, FormatAddress(addr), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, FormatAddress(addr), err)
	}
	if dst == "" {
		err = os.Remove(p)
	} else {
		err = os.Rename(p, dst)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s: %w", op, FormatAddress(addr), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, FormatAddress(addr), err)
	}
	d.objects.Add(-1)
	d.bytes.Add(-fi.Size())
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("%s %s: fsync shard dir: %w", op, FormatAddress(addr), err)
	}
	if dst != "" {
		if err := syncDir(d.quarDir); err != nil {
			return fmt.Errorf("%s %s: fsync quarantine dir: %w", op, FormatAddress(addr), err)
		}
	}
	return nil
}

// Usage implements Store.
func (d *DiskStore) Usage() (objects, bytes int64) { return d.objects.Load(), d.bytes.Load() }

// Dir returns the store's root directory.
func (d *DiskStore) Dir() string { return d.dir }

// Close implements Store. Every successful Put is already durable, so there
// is nothing to flush.
func (d *DiskStore) Close() error {
	d.closed.Store(true)
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
