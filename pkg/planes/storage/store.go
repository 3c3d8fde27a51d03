package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/macronode/macronode/pkg/fsx"
)

// Store is a content-addressed blob store. The disk store (OpenDisk) and the
// memory store (NewMemory) implement it; the HTTP handler uses only this
// interface. Every method is safe for concurrent use.
type Store interface {
	// Put streams r into the store while hashing it with BLAKE3 and returns
	// the content address and size. It never holds the whole blob in a
	// single buffer. dedup is true when the blob was already present: nothing
	// new is stored (the disk store first checks the stored copy's bytes and
	// replaces a damaged one, reporting dedup false). Reading more than max bytes fails with ErrTooLarge;
	// running out of space fails with ErrFull; an error from r is wrapped in
	// ErrRead. On any error nothing is left behind.
	Put(ctx context.Context, r io.Reader, max int64) (addr [32]byte, size int64, dedup bool, err error)
	// PutAt is Put for a caller that knows the address: the body is
	// streamed and hashed the same way, and kept only if it hashes to want;
	// otherwise it fails with ErrMismatch and nothing is left behind.
	PutAt(ctx context.Context, want [32]byte, r io.Reader, max int64) (size int64, dedup bool, err error)
	// List returns up to limit stored addresses greater than after (from
	// the first one when after is nil), in ascending order. It never holds
	// more than limit addresses plus one shard directory listing.
	List(after *[32]byte, limit int) ([][32]byte, error)
	// Open returns a reader positioned at the start of the blob and the
	// Version of the stored copy it reads (its size and identity). The bytes
	// are NOT verified against the address; callers that serve them must
	// hash them (see Server). ErrNotFound when absent.
	Open(addr [32]byte) (io.ReadSeekCloser, Version, error)
	// Quarantine takes the stored copy v (as returned by Open) that failed
	// verification out of service: the disk store moves it under quarantine/
	// for inspection, the memory store drops it. It acts only if that very
	// copy is still the one stored under addr: when it has been quarantined
	// already, or replaced by a fresh upload since it was opened, nothing is
	// touched and the error wraps ErrNotFound. Later Opens of a quarantined
	// blob answer ErrNotFound.
	Quarantine(addr [32]byte, v Version) error
	// Usage returns the number of blobs stored and their total size.
	Usage() (objects, bytes int64)
	// Close releases the store; later calls fail with ErrClosed. Idempotent.
	Close() error
}

// Version identifies one stored copy of a blob as it was when opened: its
// size and, for the disk store, the file (device and inode) with its
// modification and change times; for the memory store, the object itself.
// The handler uses it to quarantine exactly the copy that failed
// verification, never a good copy uploaded since, and to remember copies it
// has already verified. The zero Version matches nothing.
type Version struct {
	Size int64

	file os.FileInfo // disk store: fstat of the opened file
	obj  *memObject  // memory store: the immutable object
}

// sameCopy reports whether v and o name the same stored copy (the same file
// or memory object), modified since or not.
func (v Version) sameCopy(o Version) bool {
	switch {
	case v.obj != nil:
		return v.obj == o.obj
	case v.file != nil && o.file != nil:
		return os.SameFile(v.file, o.file)
	}
	return false
}

// unchanged reports whether v and o name the same stored copy with the same
// size, modification time and (on Linux) change time: nothing has written
// to it in between, as far as the file system's clock can tell.
func (v Version) unchanged(o Version) bool {
	if !v.sameCopy(o) || v.Size != o.Size {
		return false
	}
	if v.file == nil {
		return true // memory objects are immutable
	}
	return v.file.ModTime().Equal(o.file.ModTime()) && changeTime(v.file) == changeTime(o.file)
}

// Errors returned (wrapped) by Store implementations. Test with errors.Is.
var (
	ErrNotFound = errors.New("object not found")
	ErrTooLarge = errors.New("object too large")
	ErrFull     = errors.New("storage full")
	ErrRead     = errors.New("read request body")
	ErrClosed   = errors.New("store closed")
	// ErrMismatch: a PutAt body does not hash to the address it was sent for.
	ErrMismatch = errors.New("body does not hash to the address")
	// ErrInUse: another process (or another DiskStore) holds the data dir.
	ErrInUse = errors.New("data dir in use")
)

// classify adds ErrFull to the chain of a disk error that means "no space",
// keeping the original for the message and for errors.Is.
func classify(op string, err error) error {
	if fsx.NoSpace(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrFull, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// putBufBytes is the size of the copy buffer used by Put: large enough that
// BLAKE3 hashes many 1 KiB chunks in parallel (SIMD) and that writes to the
// temp file are few.
const putBufBytes = 256 << 10

var putBufs = sync.Pool{New: func() any { b := make([]byte, putBufBytes); return &b }}

// fill reads from r until buf is full or r ends. eof is true when r ended;
// err is only a real read error (wrapped in ErrRead).
func fill(r io.Reader, buf []byte) (n int, eof bool, err error) {
	for n < len(buf) {
		m, rerr := r.Read(buf[n:])
		n += m
		if rerr == io.EOF {
			return n, true, nil
		}
		if rerr != nil {
			return n, false, fmt.Errorf("%w: %w", ErrRead, rerr)
		}
	}
	return n, false, nil
}
