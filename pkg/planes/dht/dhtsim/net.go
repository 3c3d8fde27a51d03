package main

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/macronode/macronode/pkg/identity"
	"github.com/macronode/macronode/pkg/planes/dht"
)

// node is one simulated DHT server: a mocknet host and its kad-dht.
type node struct {
	h   host.Host
	kad *kaddht.IpfsDHT
}

// network is the simulated population on one mocknet. Only joined nodes
// are in live: lookups and provides start from them.
type network struct {
	mn    mocknet.Mocknet
	seeds []peer.AddrInfo

	mu       sync.Mutex
	all      map[peer.ID]*node // every node on the mocknet, joined or joining
	members  map[peer.ID]bool  // every host on the mocknet, linked to each other
	live     []*node           // joined and not left
	nextIP   uint32
	rng      *mrand.Rand
	joinMode string // joinSelf or joinRefresh
}

func newNetwork(seed uint64, join string) *network {
	return &network{
		joinMode: join,
		mn:       mocknet.New(),
		all:      map[peer.ID]*node{},
		members:  map[peer.ID]bool{},
		rng:      mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// Join modes: how a new node fills its routing table.
const (
	// joinSelf is Kademlia's join: after the seeds, one lookup of the
	// node's own ID. kad-dht's automatic refreshes are off; the routing
	// table also fills as other nodes query this one.
	joinSelf = "self"
	// joinRefresh is what the plane does: kad-dht's automatic refresh
	// (a self lookup and a random lookup per bucket, run again after the
	// first one), and the join waits for one full refresh.
	joinRefresh = "refresh"
)

// kadOptions are the plane's kad-dht settings that matter on a mocknet:
// server mode, the /macronode protocol prefix and the plane's validators.
func kadOptions(bootstrap []peer.AddrInfo, join string) []kaddht.Option {
	opts := []kaddht.Option{
		kaddht.Mode(kaddht.ModeServer),
		kaddht.ProtocolPrefix(dht.ProtocolPrefix),
		kaddht.Validator(record.NamespacedValidator{
			"pk":               record.PublicKeyValidator{},
			identity.Namespace: identity.RecordValidator{},
		}),
		kaddht.BootstrapPeers(bootstrap...),
	}
	if join == joinSelf {
		opts = append(opts, kaddht.DisableAutoRefresh())
	}
	return opts
}

// add puts a new host on the mocknet, links it to every node there (a
// link is the possibility of a connection, not a connection) and starts
// its kad-dht. The node is not live until join has run.
func (n *network) add() (*node, error) {
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	n.mu.Lock()
	n.nextIP++
	ip := n.nextIP
	seeds := n.seeds
	n.mu.Unlock()
	addr, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", byte(ip>>16), byte(ip>>8), byte(ip)))
	if err != nil {
		return nil, fmt.Errorf("node address: %w", err)
	}
	h, err := n.mn.AddPeer(sk, addr)
	if err != nil {
		return nil, fmt.Errorf("mocknet peer: %w", err)
	}
	if err := n.linkMember(h.ID()); err != nil {
		_ = h.Close()
		return nil, err
	}
	kad, err := kaddht.New(h, kadOptions(seeds, n.joinMode)...)
	if err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("kad-dht: %w", err)
	}
	nd := &node{h: h, kad: kad}
	n.mu.Lock()
	n.all[h.ID()] = nd
	n.mu.Unlock()
	return nd, nil
}

// linkMember links id to every member of the network and makes it one.
// Links are made and removed under the lock, so that two nodes added at
// the same time are linked to each other, and no node is linked to one
// that has left.
func (n *network) linkMember(id peer.ID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for o := range n.members {
		if _, err := n.mn.LinkPeers(id, o); err != nil {
			return fmt.Errorf("link %s to %s: %w", id, o, err)
		}
	}
	n.members[id] = true
	return nil
}

// join bootstraps nd: it connects to the seeds, waits until one is in its
// routing table, and fills the table as joinMode says; then nd is live.
func (n *network) join(ctx context.Context, nd *node) error {
	n.mu.Lock()
	seeds := n.seeds
	n.mu.Unlock()
	connected := 0
	for _, s := range seeds {
		if s.ID == nd.h.ID() {
			continue
		}
		if err := nd.h.Connect(ctx, s); err == nil {
			connected++
		}
	}
	if connected > 0 {
		// A connected seed enters the routing table once identify has
		// shown that it speaks the DHT protocol: wait for that.
		if err := waitFor(ctx, rtJoinWait, func() bool { return nd.kad.RoutingTable().Size() > 0 }); err != nil {
			return fmt.Errorf("%s: no seed entered the routing table: %w", nd.h.ID(), err)
		}
		if err := n.fillTable(ctx, nd); err != nil {
			return fmt.Errorf("join %s: %w", nd.h.ID(), err)
		}
	}
	n.mu.Lock()
	n.live = append(n.live, nd)
	n.mu.Unlock()
	return nil
}

// fillTable runs the join's lookups (see joinSelf and joinRefresh).
func (n *network) fillTable(ctx context.Context, nd *node) error {
	if n.joinMode == joinSelf {
		if _, err := nd.kad.GetClosestPeers(ctx, string(nd.h.ID())); err != nil {
			return fmt.Errorf("self lookup: %w", err)
		}
		return nil
	}
	select {
	case err := <-nd.kad.RefreshRoutingTable():
		if err != nil {
			return fmt.Errorf("refresh routing table: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addSeed adds a node that later nodes bootstrap from.
func (n *network) addSeed(ctx context.Context) error {
	nd, err := n.add()
	if err != nil {
		return err
	}
	if err := n.join(ctx, nd); err != nil {
		return err
	}
	n.mu.Lock()
	n.seeds = append(n.seeds, peer.AddrInfo{ID: nd.h.ID(), Addrs: nd.h.Addrs()})
	n.mu.Unlock()
	return nil
}

// leaveRandom takes a random live node for which ok is true off the
// network for good: no node can dial it any more (its links are gone), its
// connections close, its kad-dht stops. It returns false if no node fits.
// ok runs under the network's lock.
func (n *network) leaveRandom(ok func(*node) bool) (bool, error) {
	n.mu.Lock()
	i := n.pickLocked(ok)
	if i < 0 {
		n.mu.Unlock()
		return false, nil
	}
	nd := n.live[i]
	n.live = append(n.live[:i], n.live[i+1:]...)
	delete(n.all, nd.h.ID())
	delete(n.members, nd.h.ID())
	for o := range n.members {
		_ = n.mn.UnlinkPeers(nd.h.ID(), o) // every member is linked to nd: see linkMember
	}
	n.mu.Unlock()
	errKad := nd.kad.Close()
	errHost := nd.h.Close()
	if errKad != nil {
		return true, fmt.Errorf("close kad-dht: %w", errKad)
	}
	if errHost != nil {
		return true, fmt.Errorf("close host: %w", errHost)
	}
	return true, nil
}

// pick returns a random live node for which ok is true, or nil. ok runs
// under the network's lock.
func (n *network) pick(ok func(*node) bool) *node {
	n.mu.Lock()
	defer n.mu.Unlock()
	if i := n.pickLocked(ok); i >= 0 {
		return n.live[i]
	}
	return nil
}

// pickLocked is the index in live of a random node for which ok is true,
// or -1 when a bounded number of draws finds none.
func (n *network) pickLocked(ok func(*node) bool) int {
	for range 64 {
		if len(n.live) == 0 {
			return -1
		}
		i := n.rng.IntN(len(n.live))
		if ok(n.live[i]) {
			return i
		}
	}
	return -1
}

// lookup returns the live-or-joining node with this id, or nil if it left.
func (n *network) lookup(id peer.ID) *node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.all[id]
}

// liveCount is the number of joined nodes.
func (n *network) liveCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.live)
}

// snapshot is the live nodes now.
func (n *network) snapshot() []*node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*node(nil), n.live...)
}

// close stops every node and the mocknet.
func (n *network) close() error {
	n.mu.Lock()
	nodes := make([]*node, 0, len(n.all))
	for _, nd := range n.all {
		nodes = append(nodes, nd)
	}
	n.all, n.live = map[peer.ID]*node{}, nil
	n.mu.Unlock()
	for _, nd := range nodes {
		_ = nd.kad.Close()
	}
	if err := n.mn.Close(); err != nil {
		return fmt.Errorf("close mocknet: %w", err)
	}
	return nil
}

// rtJoinWait bounds the wait for a first routing-table entry.
const rtJoinWait = 10 * time.Second

// waitFor polls cond every few milliseconds until it holds, d passes or
// ctx ends.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
