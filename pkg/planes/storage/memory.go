package storage

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/zeebo/blake3"

	"github.com/macronode/macronode/pkg/address"
)

// slabBytes is the size of the pieces a memory blob is kept in, so that an
// upload never needs one contiguous allocation of its whole size.
const slabBytes = 64 << 10

// memObject is an immutable blob: full slabs of slabBytes, the last one
// trimmed to its length.
type memObject struct {
	slabs [][]byte
	size  int64
}

// ReadAt implements io.ReaderAt over the slabs.
func (o *memObject) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at %d: negative offset", off)
	}
	n := 0
	for n < len(p) && off < o.size {
		s := o.slabs[off/slabBytes]
		c := copy(p[n:], s[off%slabBytes:])
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

type memReader struct{ *io.SectionReader }

func (memReader) Close() error { return nil }

// MemStore keeps blobs in RAM (amnesia mode) up to a byte cap. Bytes of
// uploads in progress count against the cap as they arrive, so concurrent
// uploads cannot overshoot it; a Put that would cross it fails with ErrFull.
// The cap counts blob bytes, not Go allocator overhead. Because the address
// is only known at the end, a re-upload of stored content also needs room
// for its bytes while in flight (near the cap it can get ErrFull).
type MemStore struct {
	max      int64
	reserved atomic.Int64 // committed + in-flight bytes, checked against max
	closed   atomic.Bool

	mu    sync.RWMutex
	objs  map[[32]byte]*memObject
	bytes int64 // committed bytes, under mu
}

// NewMemory returns an empty memory store holding at most maxBytes of blobs.
func NewMemory(maxBytes int64) *MemStore {
	return &MemStore{max: maxBytes, objs: make(map[[32]byte]*memObject)}
}

// Put implements Store.
func (m *MemStore) Put(ctx context.Context, r io.Reader, max int64) (addr [32]byte, size int64, dedup bool, err error) {
	return m.put(ctx, r, max, nil)
}

// PutAt implements Store.
func (m *MemStore) PutAt(ctx context.Context, want [32]byte, r io.Reader, max int64) (size int64, dedup bool, err error) {
	_, size, dedup, err = m.put(ctx, r, max, &want)
	return size, dedup, err
}

// put is Put and PutAt; with want set, a body hashing elsewhere fails with
// ErrMismatch and its bytes are released.
func (m *MemStore) put(ctx context.Context, r io.Reader, max int64, want *[32]byte) (addr [32]byte, size int64, dedup bool, err error) {
	if m.closed.Load() {
		return addr, 0, false, ErrClosed
	}
	var slabs [][]byte
	defer func() {
		if err != nil || dedup {
			m.reserved.Add(-size)
		}
	}()
	h := blake3.New()
	bp := putBufs.Get().(*[]byte)
	defer putBufs.Put(bp)
	buf := *bp
	for {
		if err := ctx.Err(); err != nil {
			return addr, size, false, fmt.Errorf("put: %w", err)
		}
		n, eof, rerr := fill(r, buf)
		if n > 0 {
			if size+int64(n) > max {
				return addr, size, false, fmt.Errorf("put: %w: more than %d bytes", ErrTooLarge, max)
			}
			if m.reserved.Add(int64(n)) > m.max {
				m.reserved.Add(-int64(n))
				return addr, size, false, fmt.Errorf("put: %w: memory store cap of %d bytes reached", ErrFull, m.max)
			}
			size += int64(n)
			_, _ = h.Write(buf[:n])
			slabs = appendSlabs(slabs, buf[:n])
		}
		if rerr != nil {
			return addr, size, false, rerr
		}
		if eof {
			break
		}
	}
	copy(addr[:], h.Sum(nil))
	if want != nil && addr != *want {
		return addr, size, false, fmt.Errorf("put %s: %w (got b3:%x)", address.Format(*want), ErrMismatch, addr)
	}
	if k := len(slabs) - 1; k >= 0 && cap(slabs[k]) > len(slabs[k]) {
		slabs[k] = append([]byte(nil), slabs[k]...)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed.Load() {
		return addr, size, false, ErrClosed
	}
	if _, ok := m.objs[addr]; ok {
		return addr, size, true, nil
	}
	m.objs[addr] = &memObject{slabs: slabs, size: size}
	m.bytes += size
	return addr, size, false, nil
}

// appendSlabs copies p onto the end of slabs, starting new slabs of
// slabBytes capacity as needed.
func appendSlabs(slabs [][]byte, p []byte) [][]byte {
	for len(p) > 0 {
		k := len(slabs) - 1
		if k < 0 || len(slabs[k]) == slabBytes {
			slabs = append(slabs, make([]byte, 0, slabBytes))
			k++
		}
		c := min(len(p), slabBytes-len(slabs[k]))
		slabs[k] = append(slabs[k], p[:c]...)
		p = p[c:]
	}
	return slabs
}

func (m *MemStore) get(addr [32]byte) (*memObject, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	m.mu.RLock()
	o, ok := m.objs[addr]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("open %s: %w", address.Format(addr), ErrNotFound)
	}
	return o, nil
}

// Open implements Store; the Version names the immutable object read.
func (m *MemStore) Open(addr [32]byte) (io.ReadSeekCloser, Version, error) {
	o, err := m.get(addr)
	if err != nil {
		return nil, Version{}, err
	}
	return memReader{io.NewSectionReader(o, 0, o.size)}, Version{Size: o.size, obj: o}, nil
}

// Quarantine implements Store: a memory blob has no place to be kept for
// inspection, so it is dropped — if it is still the object v was read from.
func (m *MemStore) Quarantine(addr [32]byte, v Version) error {
	if m.closed.Load() {
		return ErrClosed
	}
	m.mu.Lock()
	o, ok := m.objs[addr]
	if ok && v.obj != o {
		m.mu.Unlock()
		return fmt.Errorf("quarantine %s: the copy that was read has been replaced since: %w", address.Format(addr), ErrNotFound)
	}
	if ok {
		delete(m.objs, addr)
		m.bytes -= o.size
		m.reserved.Add(-o.size)
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("quarantine %s: %w", address.Format(addr), ErrNotFound)
	}
	return nil
}

// Usage implements Store.
func (m *MemStore) Usage() (objects, bytes int64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int64(len(m.objs)), m.bytes
}

// Close implements Store: the blobs are released.
func (m *MemStore) Close() error {
	m.closed.Store(true)
	m.mu.Lock()
	m.objs = make(map[[32]byte]*memObject)
	m.bytes = 0
	m.mu.Unlock()
	return nil
}
