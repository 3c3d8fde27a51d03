package main

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// hopTracker rebuilds, from kad-dht's query events, how each queried peer
// was discovered. A peer taken from the looker's own routing table is at
// depth 1 (one RPC away); a peer first named in the closer-peers answer of
// a peer at depth d is at depth d+1. The depth of a peer is thus the number
// of sequential request/response rounds on the path that led to it.
type hopTracker struct {
	depth   map[peer.ID]int
	queried []peer.ID // in the order kad-dht sent them queries
}

// newHopTracker starts with the peers the query is seeded from: the
// looker's nearest routing-table peers to the key.
func newHopTracker(seeds []peer.ID) *hopTracker {
	t := &hopTracker{depth: make(map[peer.ID]int, 64)}
	for _, p := range seeds {
		t.depth[p] = 1
	}
	return t
}

func (t *hopTracker) observe(ev *routing.QueryEvent) {
	switch ev.Type {
	case routing.SendingQuery:
		if _, ok := t.depth[ev.ID]; !ok {
			t.depth[ev.ID] = 1
		}
		t.queried = append(t.queried, ev.ID)
	case routing.PeerResponse:
		d, ok := t.depth[ev.ID]
		if !ok {
			d = 1
			t.depth[ev.ID] = d
		}
		for _, ai := range ev.Responses {
			if ai == nil {
				continue
			}
			if _, ok := t.depth[ai.ID]; !ok {
				t.depth[ai.ID] = d + 1
			}
		}
	}
}

// hops is the smallest depth among queried peers for which holds is true
// (the peers holding the provider record), and whether there was one.
func (t *hopTracker) hops(holds func(peer.ID) bool) (int, bool) {
	best, found := 0, false
	for _, p := range t.queried {
		d := t.depth[p]
		if (!found || d < best) && holds(p) {
			best, found = d, true
		}
	}
	return best, found
}

// lookupResult is one find-providers lookup.
type lookupResult struct {
	ok      bool          // the expected provider was returned
	late    bool          // not ok, and the lookup's deadline ended it
	hops    int           // see hopTracker; 0: the looker held the record itself
	hopsOK  bool          // hops is known (a record holder was identified)
	queried int           // peers sent a GET_PROVIDERS
	elapsed time.Duration // until the provider arrived, or the timeout
}

// findProvider asks from for the providers of key, stops at the first,
// and reports whether it is want, with hops and peers queried.
func (n *network) findProvider(ctx context.Context, from *node, key cid.Cid, want peer.ID, timeout time.Duration) lookupResult {
	mh := key.Hash()
	var res lookupResult
	if holdsRecord(ctx, from, key, want) {
		start := time.Now()
		res.ok, res.late = n.findOnce(ctx, from, key, want, timeout, nil)
		res.elapsed = time.Since(start)
		res.hopsOK = res.ok
		return res
	}
	seeds := from.kad.RoutingTable().NearestPeers(kb.ConvertKey(string(mh)), kbBucketSize)
	tr := newHopTracker(seeds)
	start := time.Now()
	res.ok, res.late = n.findOnce(ctx, from, key, want, timeout, tr)
	res.elapsed = time.Since(start)
	res.queried = len(tr.queried)
	if res.ok {
		res.hops, res.hopsOK = tr.hops(func(p peer.ID) bool {
			nd := n.lookup(p)
			return nd != nil && holdsRecord(ctx, nd, key, want)
		})
		// An ADD_PROVIDER is sent without waiting for its answer, so the
		// record may reach the looker after the check above and be
		// answered from its own store.
		if !res.hopsOK && holdsRecord(ctx, from, key, want) {
			res.hops, res.hopsOK = 0, true
		}
	}
	return res
}

// kbBucketSize is kad-dht's default k, which the simulation keeps.
const kbBucketSize = 20

// findOnce runs one FindProvidersAsync(count 1) and feeds its query events
// to tr (when not nil) until the query has ended. It returns whether want
// was found and, if not, whether the deadline ended the lookup.
func (n *network) findOnce(ctx context.Context, from *node, key cid.Cid, want peer.ID, timeout time.Duration, tr *hopTracker) (found, late bool) {
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan struct{})
	if tr != nil {
		var events <-chan *routing.QueryEvent
		qctx, events = routing.RegisterForQueryEvents(qctx)
		go func() {
			defer close(done)
			for ev := range events { // closed once qctx is done
				tr.observe(ev)
			}
		}()
	} else {
		close(done)
	}
	for ai := range from.kad.FindProvidersAsync(qctx, key, 1) {
		if ai.ID == want {
			found = true
		}
	}
	late = !found && qctx.Err() != nil
	cancel()
	<-done
	return found, late
}

// holdsRecord says whether nd's provider store names want for key.
func holdsRecord(ctx context.Context, nd *node, key cid.Cid, want peer.ID) bool {
	provs, err := nd.kad.ProviderStore().GetProviders(ctx, key.Hash())
	if err != nil {
		return false
	}
	for _, p := range provs {
		if p.ID == want {
			return true
		}
	}
	return false
}
