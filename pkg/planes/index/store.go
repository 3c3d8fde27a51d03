package index

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned by the store when a name is not bound.
var ErrNotFound = errors.New("name not found")

// errClosed is returned by a store that has been closed.
var errClosed = errors.New("index store is closed")

// Record is one name's current binding, as the API returns it.
type Record struct {
	Name      string    `json:"name"`
	Address   string    `json:"address"`
	Version   uint64    `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// checkFunc decides a conditional write from the current record; exists is
// false when the name is unbound. A non-nil error aborts the write.
type checkFunc func(cur Record, exists bool) error

// store is the index's persistence: bbolt on disk, or memory in amnesia
// mode. Versions survive deletion (a tombstone keeps the last one), so a
// name deleted and created again continues from its old version and a stale
// If-Match can never succeed against the new binding.
type store interface {
	get(name string) (Record, error)
	// put binds name to address; created reports a new binding.
	put(name, address string, now time.Time, check checkFunc) (rec Record, created bool, err error)
	del(name string, check checkFunc) error
	// list returns up to limit records whose names start with prefix and
	// sort strictly after after, in byte order.
	list(prefix, after string, limit int) ([]Record, error)
	// count is the number of bound names.
	count() int
	close() error
}

// memStore is the amnesia store: everything in RAM, nothing on disk.
type memStore struct {
	mu     sync.RWMutex
	recs   map[string]Record
	sorted []string          // bound names in byte order
	tombs  map[string]uint64 // last version of deleted names
	closed bool
}

func newMemStore() *memStore {
	return &memStore{recs: make(map[string]Record), tombs: make(map[string]uint64)}
}

func (m *memStore) get(name string) (Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return Record{}, errClosed
	}
	rec, ok := m.recs[name]
	if !ok {
		return Record{}, ErrNotFound
	}
	return rec, nil
}

func (m *memStore) put(name, address string, now time.Time, check checkFunc) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Record{}, false, errClosed
	}
	cur, exists := m.recs[name]
	if err := check(cur, exists); err != nil {
		return Record{}, false, err
	}
	prev := cur.Version
	if !exists {
		prev = m.tombs[name]
	}
	rec := Record{Name: name, Address: address, Version: prev + 1, UpdatedAt: now.UTC()}
	m.recs[name] = rec
	if !exists {
		delete(m.tombs, name)
		i, _ := slices.BinarySearch(m.sorted, name)
		m.sorted = slices.Insert(m.sorted, i, name)
	}
	return rec, !exists, nil
}

func (m *memStore) del(name string, check checkFunc) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	cur, exists := m.recs[name]
	if !exists {
		return ErrNotFound
	}
	if err := check(cur, true); err != nil {
		return err
	}
	delete(m.recs, name)
	m.tombs[name] = cur.Version
	if i, ok := slices.BinarySearch(m.sorted, name); ok {
		m.sorted = slices.Delete(m.sorted, i, i+1)
	}
	return nil
}

func (m *memStore) list(prefix, after string, limit int) ([]Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, errClosed
	}
	start := prefix
	if after >= prefix {
		start = after
	}
	i, _ := slices.BinarySearch(m.sorted, start)
	out := make([]Record, 0, min(limit, 64))
	for ; i < len(m.sorted) && len(out) < limit; i++ {
		n := m.sorted[i]
		if !strings.HasPrefix(n, prefix) {
			break
		}
		if n <= after {
			continue
		}
		out = append(out, m.recs[n])
	}
	return out, nil
}

func (m *memStore) count() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.recs)
}

func (m *memStore) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.recs, m.sorted, m.tombs = nil, nil, nil
	return nil
}
