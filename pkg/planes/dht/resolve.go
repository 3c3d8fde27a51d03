package dht

import (
	"context"
	"sync"
	"time"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/macronode/macronode/pkg/identity"
)

const (
	// nodeCacheSize caps the provider -> node cache.
	nodeCacheSize = 4096
	// nodeCacheTTL is how long a verified mapping is trusted; the record
	// it came from may be replaced by one with a higher seq.
	nodeCacheTTL = 10 * time.Minute
	// negativeTTL is how long "no record found" is remembered, so a burst
	// of lookups does not query the DHT for the same unmapped peer.
	negativeTTL = 5 * time.Second
	// resolveTimeout bounds one GetValue of a node record.
	resolveTimeout = 3 * time.Second
)

type cacheEntry struct {
	info    nodeInfo
	expires time.Time
}

// nodeCache remembers which node stands behind a DHT peer.
type nodeCache struct {
	mu      sync.Mutex
	max     int
	ttl     time.Duration
	entries map[peer.ID]cacheEntry
}

func newNodeCache(max int, ttl time.Duration) *nodeCache {
	return &nodeCache{max: max, ttl: ttl, entries: make(map[peer.ID]cacheEntry)}
}

func (c *nodeCache) get(p peer.ID, now time.Time) (nodeInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[p]
	if !ok || now.After(e.expires) {
		return nodeInfo{}, false
	}
	return e.info, true
}

// put stores info for ttl; when full it first drops expired entries, then
// an arbitrary one (the map's iteration order), which is enough for a cache
// whose misses cost one DHT lookup.
func (c *nodeCache) put(p peer.ID, info nodeInfo, ttl time.Duration, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[p]; !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[p] = cacheEntry{info: info, expires: now.Add(ttl)}
}

// resolve maps DHT peer p to its node: through the signed record under
// /mnnode/<p> (verified, and bound to p), else through the overlay's peer
// table; an unmapped peer gets an empty nodeInfo.
func (s *Server) resolve(ctx context.Context, p peer.ID) nodeInfo {
	now := time.Now()
	if info, ok := s.nodes.get(p, now); ok {
		return info
	}
	rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	b, err := s.kad.GetValue(rctx, identity.RecordKey(p), kaddht.Quorum(1))
	if err == nil {
		rec, verr := verifyRecord(b)
		if verr == nil && rec.DHTPeerID == p.String() {
			info := nodeInfo{NodeID: rec.NodeID, OverlayAddrs: rec.OverlayAddrs}
			s.nodes.put(p, info, s.nodes.ttl, now)
			return info
		}
		s.metrics.recordsRefused.Inc()
		s.log.Warn("refused a node record", "dht_peer", p.String(), "error", verr)
	}
	if info, ok := s.peers.node(p); ok {
		return info
	}
	if ctx.Err() == nil {
		s.nodes.put(p, nodeInfo{}, negativeTTL, now)
	}
	return nodeInfo{}
}
