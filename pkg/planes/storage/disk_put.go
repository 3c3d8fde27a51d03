package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zeebo/blake3"

	"github.com/macronode/macronode/pkg/address"
)

// maxCommitAttempts bounds how often Put retries when concurrent Puts keep
// renaming bad copies into the name it wants.
const maxCommitAttempts = 3

// Put implements Store. The blob is written to tmp/ and hashed on the way.
// Then, if a file is already stored under its address, that copy is read
// back and hashed (a dedup hit costs one full read of the stored object):
// when it is good, the shard directory is fsynced (the copy may have been
// renamed in by a concurrent Put that has not fsynced it yet), the temp file
// is removed without an fsync and dedup is reported; when it is bad (wrong
// size, wrong bytes, unreadable) it is quarantined and the fresh upload
// takes its place. Otherwise the temp file is fsynced, closed, renamed
// (no-replace) into its shard (created when the store opened) and the
// shard directory is fsynced. A concurrent Put of the same content that
// wins the no-replace rename makes this one check the winner's copy as
// above.
func (d *DiskStore) Put(ctx context.Context, r io.Reader, max int64) (addr [32]byte, size int64, dedup bool, err error) {
	return d.put(ctx, r, max, nil)
}

// PutAt implements Store: Put, refusing (before anything is renamed into
// objects/) a body that does not hash to want.
func (d *DiskStore) PutAt(ctx context.Context, want [32]byte, r io.Reader, max int64) (size int64, dedup bool, err error) {
	_, size, dedup, err = d.put(ctx, r, max, &want)
	return size, dedup, err
}

// put is Put and PutAt; with want set, a body hashing elsewhere fails with
// ErrMismatch and its temp file is removed.
func (d *DiskStore) put(ctx context.Context, r io.Reader, max int64, want *[32]byte) (addr [32]byte, size int64, dedup bool, err error) {
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
	if want != nil && addr != *want {
		return addr, 0, false, fmt.Errorf("put %s: %w (got b3:%x)", address.Format(*want), ErrMismatch, addr)
	}
	final := d.path(addr)

	for attempt := 1; ; attempt++ {
		good, err := d.storedCopyGood(addr, size, final, buf)
		if err != nil {
			return addr, 0, false, fmt.Errorf("put: %w", err)
		}
		if good {
			if err := d.syncDir(filepath.Dir(final)); err != nil {
				return addr, 0, false, classify("fsync shard dir", err)
			}
			return addr, size, true, nil
		}
		if !closed {
			if err := f.Sync(); err != nil {
				return addr, 0, false, classify("fsync temp file", err)
			}
			closed = true
			if err := f.Close(); err != nil {
				return addr, 0, false, classify("close temp file", err)
			}
		}
		err = d.rename(tmp, final)
		if errors.Is(err, fs.ErrNotExist) {
			// The shard directory was removed behind the store's back.
			if err := d.mkShard(final); err != nil {
				return addr, 0, false, err
			}
			err = d.rename(tmp, final)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return addr, 0, false, classify("rename into place", err)
		}
		if attempt == maxCommitAttempts {
			return addr, 0, false, fmt.Errorf("put %s: the stored copy kept changing: %w", address.Format(addr), err)
		}
		// A concurrent Put renamed its copy in first: check that one.
	}
	done = true
	d.objects.Add(1)
	d.bytes.Add(size)
	if err := d.syncDir(filepath.Dir(final)); err != nil {
		// The object is visible but its directory entry may not survive a
		// crash; report the failure rather than claim durability.
		return addr, 0, false, classify("fsync shard dir", err)
	}
	return addr, size, false, nil
}

// storedCopyGood reports whether final holds a good copy of addr: size
// bytes that hash to addr (the whole file is read). A missing file is not
// good. A present but bad copy (wrong size, wrong bytes, unreadable) is
// quarantined — that very file only, so a good copy renamed in meanwhile by
// a concurrent Put is left alone — and reported as not good.
func (d *DiskStore) storedCopyGood(addr [32]byte, size int64, final string, buf []byte) (bool, error) {
	f, err := os.Open(final)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open stored copy: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat stored copy: %w", err)
	}
	var detail string
	if fi.Size() != size {
		detail = fmt.Sprintf("size %d, want %d", fi.Size(), size)
	} else {
		h := blake3.New()
		n, rerr := io.CopyBuffer(h, struct{ io.Reader }{f}, buf)
		var got [32]byte
		copy(got[:], h.Sum(nil))
		switch {
		case rerr != nil:
			detail = fmt.Sprintf("read error after %d bytes: %v", n, rerr)
		case n != size || got != addr:
			detail = fmt.Sprintf("read %d bytes hashing to b3:%x", n, got)
		default:
			return true, nil
		}
	}
	d.log.Error("stored copy failed verification on re-upload, replacing it", "address", address.Format(addr), "detail", detail)
	if err := d.Quarantine(addr, Version{Size: fi.Size(), file: fi}); err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	return false, nil
}
