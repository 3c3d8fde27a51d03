package overlay

import (
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/macronode/macronode/pkg/identity"
)

// peerEntry is what the table knows of one node beyond the host's own
// peerstore: its latest node record and when it was last heard of.
type peerEntry struct {
	rec      *identity.NodeRecord // nil until a record arrives
	lastSeen time.Time
}

// peerTable holds the nodes this overlay knows: those it connected to and
// those whose records it received. Connection state, RTT and agent are read
// live from the host when the table is shown.
type peerTable struct {
	self peer.ID
	mu   sync.Mutex
	m    map[peer.ID]*peerEntry
}

func newPeerTable(self peer.ID) *peerTable {
	return &peerTable{self: self, m: make(map[peer.ID]*peerEntry)}
}

// recordResult says what offering a record to the table did.
type recordResult int

const (
	recordNew     recordResult = iota // first or newer seq: stored
	recordRefresh                     // same seq as stored: only last seen moved
	recordOld                         // older seq than stored: dropped
)

// offer stores rec for id when its Seq is not older than the stored one.
func (t *peerTable) offer(id peer.ID, rec identity.NodeRecord, now time.Time) recordResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entry(id)
	switch {
	case e.rec != nil && rec.Seq < e.rec.Seq:
		return recordOld
	case e.rec != nil && rec.Seq == e.rec.Seq:
		e.lastSeen = now
		return recordRefresh
	}
	e.rec, e.lastSeen = &rec, now
	return recordNew
}

// seen notes that id was connected or answered at now.
func (t *peerTable) seen(id peer.ID, now time.Time) {
	if id == t.self {
		return
	}
	t.mu.Lock()
	t.entry(id).lastSeen = now
	t.mu.Unlock()
}

func (t *peerTable) entry(id peer.ID) *peerEntry {
	e, ok := t.m[id]
	if !ok {
		e = &peerEntry{}
		t.m[id] = e
	}
	return e
}

// ids returns the known node ids, sorted.
func (t *peerTable) ids() []peer.ID {
	t.mu.Lock()
	out := make([]peer.ID, 0, len(t.m))
	for id := range t.m {
		out = append(out, id)
	}
	t.mu.Unlock()
	slices.Sort(out)
	return out
}

func (t *peerTable) get(id peer.ID) (peerEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[id]
	if !ok {
		return peerEntry{}, false
	}
	return *e, true
}

// expire forgets peers that are not connected and were last seen before
// cutoff, and returns them.
func (t *peerTable) expire(h host.Host, cutoff time.Time) []peer.ID {
	var gone []peer.ID
	for _, id := range t.ids() {
		if h.Network().Connectedness(id) == network.Connected {
			continue
		}
		t.mu.Lock()
		if e, ok := t.m[id]; ok && e.lastSeen.Before(cutoff) {
			delete(t.m, id)
			gone = append(gone, id)
		}
		t.mu.Unlock()
	}
	return gone
}

// PeerInfo is one row of GET /overlay/peers.
type PeerInfo struct {
	NodeID      string    `json:"node_id"`
	Addrs       []string  `json:"addrs"`
	Connected   bool      `json:"connected"`
	RTTms       *float64  `json:"rtt_ms"`
	LastSeen    time.Time `json:"last_seen"`
	Agent       string    `json:"agent"`
	ReadyPlanes []string  `json:"ready_planes"`
	DHTPeerID   string    `json:"dht_peer_id"`
	DHTAddrs    []string  `json:"dht_addrs"`
	Seq         uint64    `json:"seq"`
}

// view returns the table joined with the host's live state.
func (t *peerTable) view(h host.Host) []PeerInfo {
	ids := t.ids()
	out := make([]PeerInfo, 0, len(ids))
	for _, id := range ids {
		e, ok := t.get(id)
		if !ok {
			continue
		}
		p := PeerInfo{
			NodeID:      id.String(),
			Addrs:       []string{},
			Connected:   h.Network().Connectedness(id) == network.Connected,
			LastSeen:    e.lastSeen.UTC(),
			ReadyPlanes: []string{},
			DHTAddrs:    []string{},
		}
		if e.rec != nil {
			p.Addrs = append(p.Addrs, e.rec.OverlayAddrs...)
			p.ReadyPlanes = append(p.ReadyPlanes, e.rec.ReadyPlanes...)
			p.DHTPeerID, p.Seq = e.rec.DHTPeerID, e.rec.Seq
			p.DHTAddrs = append(p.DHTAddrs, e.rec.DHTAddrs...)
		}
		if len(p.Addrs) == 0 {
			for _, a := range h.Peerstore().Addrs(id) {
				p.Addrs = append(p.Addrs, a.String())
			}
		}
		if rtt := h.Peerstore().LatencyEWMA(id); rtt > 0 {
			ms := float64(rtt.Microseconds()) / 1000
			p.RTTms = &ms
		}
		if v, err := h.Peerstore().Get(id, "AgentVersion"); err == nil {
			if s, ok := v.(string); ok {
				p.Agent = s
			}
		}
		out = append(out, p)
	}
	return out
}

// counts returns how many peers are known and how many connected.
func (t *peerTable) counts(h host.Host) (known, connected int) {
	for _, id := range t.ids() {
		known++
		if h.Network().Connectedness(id) == network.Connected {
			connected++
		}
	}
	return known, connected
}
