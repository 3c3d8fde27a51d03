package overlay

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/identity"
)

func TestGossipPropagation(t *testing.T) {
	dhtKey, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	dhtID, _ := identity.NodeID(dhtKey)
	dht := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"peer_id":"` + dhtID.String() + `","addrs":["/ip4/127.0.0.1/tcp/9201/p2p/` + dhtID.String() + `"]}`))
	}))
	t.Cleanup(dht.Close)

	a := newNode(t, func(c *Config) { c.DHTURL = dht.URL })
	b := newNode(t, func(c *Config) { c.Bootstrap = []string{a.p2pAddr()} })
	c := newNode(t, func(c *Config) { c.Bootstrap = []string{a.p2pAddr()} })
	nodes := []*node{a, b, c}

	// Every node learns both others' records, and C reaches B (and B, C)
	// through the addresses gossip led it to.
	eventually(t, 20*time.Second, "every node knows and is connected to the two others", func() bool {
		for _, n := range nodes {
			peers := n.peersView(t)
			withRecord := 0
			for _, p := range peers {
				if p.Seq > 0 && p.Connected && slices.Contains(p.ReadyPlanes, "overlay") {
					withRecord++
				}
			}
			if withRecord != 2 {
				return false
			}
		}
		return true
	})
	for _, p := range c.peersView(t) {
		if p.NodeID != a.srv.NodeID().String() {
			continue
		}
		if p.DHTPeerID != dhtID.String() || !slices.Equal(p.DHTAddrs, []string{"/ip4/127.0.0.1/tcp/9201"}) ||
			!slices.Equal(p.ReadyPlanes, []string{"overlay", "dht"}) {
			t.Fatalf("C's view of A lacks A's dht: %+v", p)
		}
		if p.Agent != "macronode/test" || len(p.Addrs) != 2 {
			t.Fatalf("C's view of A: %+v", p)
		}
	}
	eventually(t, 10*time.Second, "RTTs measured", func() bool {
		for _, p := range b.peersView(t) {
			if p.RTTms == nil {
				return false
			}
		}
		return true
	})
	if got := testutil.Metric(t, c.reg, "macronode_overlay_peers", "state", "connected"); got != 2 {
		t.Fatalf("C's connected peers gauge = %v, want 2", got)
	}
}

// rogue is a bare libp2p host with gossipsub that publishes whatever a test
// gives it on the node-record topic, with no validator of its own.
type rogue struct {
	topic *pubsub.Topic
	stop  func()
}

func newRogue(t *testing.T, target *node) *rogue {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ps, err := pubsub.NewGossipSub(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(Topic)
	if err != nil {
		t.Fatal(err)
	}
	r := &rogue{topic: topic, stop: func() {
		_ = topic.Close()
		cancel()
		_ = h.Close()
	}}
	t.Cleanup(r.stop)
	if err := h.Connect(ctx, target.info()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the target in the rogue's topic peers", func() bool {
		return slices.Contains(topic.ListPeers(), target.srv.NodeID())
	})
	return r
}

func (r *rogue) publish(t *testing.T, data []byte) {
	t.Helper()
	if err := r.topic.Publish(context.Background(), data); err != nil {
		t.Fatal(err)
	}
}

func TestGossipRefusesBadRecords(t *testing.T) {
	a := newNode(t, nil)
	r := newRogue(t, a)
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := identity.NodeID(key)
	record := func(seq uint64) []byte {
		raw, err := identity.Sign(key, identity.NodeRecord{OverlayAddrs: []string{"/ip4/127.0.0.1/tcp/1"}, Version: "x", Seq: seq, ReadyPlanes: []string{"overlay"}})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	seqOf := func() uint64 {
		for _, p := range a.peersView(t) {
			if p.NodeID == id.String() {
				return p.Seq
			}
		}
		return 0
	}
	count := func(result, reason string) func() bool {
		return func() bool {
			return testutil.Metric(t, a.reg, "macronode_overlay_gossip_records_total", "result", result, "reason", reason) == 1
		}
	}

	// A record relayed by the rogue, signed by its own node: accepted.
	r.publish(t, record(10))
	eventually(t, 10*time.Second, "record accepted", count("accepted", "new"))
	if seqOf() != 10 {
		t.Fatalf("seq %d, want 10", seqOf())
	}

	flipped := bytes.Clone(record(11))
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name, reason string
		data         []byte
	}{
		{"bad signature", "bad_signature", flipped},
		{"older seq", "old_seq", record(5)},
		{"junk", "malformed", []byte("not a record")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.publish(t, tt.data)
			eventually(t, 10*time.Second, tt.reason+" counted", count("rejected", tt.reason))
			if seqOf() != 10 {
				t.Fatalf("seq %d after a refused record, want 10", seqOf())
			}
		})
	}
	// A newer one still gets through.
	r.publish(t, record(12))
	eventually(t, 10*time.Second, "newer record accepted", func() bool { return seqOf() == 12 })
}

// TestNewDoesNotWaitForTheDHT: under the parent the DHT plane starts after
// the overlay, on a socket the parent already holds, so a connect to it
// succeeds and nobody answers. New must not ask the DHT (the record loop
// does, later): no connection reaches the DHT's socket during New.
func TestNewDoesNotWaitForTheDHT(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0") // bound, never accepted
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	n := newNode(t, func(c *Config) {
		c.DHTURL = "http://" + held.Addr().String()
		c.PollInterval = time.Hour
	})
	if got := n.srv.signedRecord(); got == nil {
		t.Fatal("no own record after New")
	}
	_ = held.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
	if c, err := held.Accept(); err == nil {
		c.Close()
		t.Fatal("New connected to the DHT plane's socket; it must leave that to the record loop")
	}
}
