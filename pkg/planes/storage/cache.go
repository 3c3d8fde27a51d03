package storage

import (
	"container/list"
	"sync"
)

// verifiedCacheEntries bounds the verified-copy cache: at most this many
// recently verified blobs are remembered (a few hundred bytes each).
const verifiedCacheEntries = 4096

// verifiedCache remembers which stored copies hashed correctly recently, so
// that repeated or parallel range reads (and small full GETs) of an
// unchanged blob do not hash the whole file every time. An entry is keyed
// by address and holds the copy's Version: a lookup hits only when the copy
// now opened is the same file (device, inode) with the same size,
// modification time and, on Linux, change time. A replaced or rewritten
// file therefore misses and is verified afresh. It is an LRU of fixed size;
// safe for concurrent use.
type verifiedCache struct {
	mu  sync.Mutex
	max int
	lru *list.List // front = most recently used; values are *cacheEntry
	idx map[[32]byte]*list.Element
}

type cacheEntry struct {
	addr [32]byte
	v    Version
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, lru: list.New(), idx: make(map[[32]byte]*list.Element)}
}

// verified reports whether the copy v of addr was verified and has not
// changed since. A stale entry (the copy changed) is dropped.
func (c *verifiedCache) verified(addr [32]byte, v Version) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.idx[addr]
	if !ok {
		return false
	}
	if !e.Value.(*cacheEntry).v.unchanged(v) {
		c.lru.Remove(e)
		delete(c.idx, addr)
		return false
	}
	c.lru.MoveToFront(e)
	return true
}

// add records that the copy v of addr hashed correctly.
func (c *verifiedCache) add(addr [32]byte, v Version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.idx[addr]; ok {
		e.Value.(*cacheEntry).v = v
		c.lru.MoveToFront(e)
		return
	}
	c.idx[addr] = c.lru.PushFront(&cacheEntry{addr: addr, v: v})
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.idx, old.Value.(*cacheEntry).addr)
	}
}

// forget drops addr (after it failed verification).
func (c *verifiedCache) forget(addr [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.idx[addr]; ok {
		c.lru.Remove(e)
		delete(c.idx, addr)
	}
}

// len returns the number of entries (for tests).
func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
