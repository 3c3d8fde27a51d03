package dht

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/identity"
)

type providersBody struct {
	Providers []Provider `json:"providers"`
}

// findFrom asks node n for the providers of addr until want's DHT peer is
// among them, and returns that entry.
func findFrom(t *testing.T, n *testNode, addr string, want *testNode) Provider {
	t.Helper()
	var found Provider
	testutil.Eventually(t, 20*time.Second, "provider "+want.PeerID()+" to be found", func() bool {
		var body providersBody
		if code := do(t, n.Server, http.MethodGet, "/dht/providers/"+addr, &body); code != http.StatusOK {
			t.Fatalf("GET providers: status %d", code)
		}
		for _, p := range body.Providers {
			if p.PeerID == want.PeerID() {
				found = p
				return true
			}
		}
		return false
	})
	return found
}

func TestProvideOnOneFindOnAnother(t *testing.T) {
	nodes := startCluster(t, 4)
	for _, n := range nodes {
		// Each node's record reaches peers once its routing table is full.
		testutil.Eventually(t, 10*time.Second, "node record stored", func() bool {
			return promtest.ToFloat64(n.metrics.recordsPut) > 0
		})
	}
	tests := []struct {
		name   string
		query  string
		status int
	}{
		{"queued to the reprovider", "", http.StatusAccepted},
		{"sync", "?sync=1", http.StatusOK},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := testAddr(100 + i)
			var res map[string]string
			if code := do(t, nodes[0].Server, http.MethodPost, "/dht/providers/"+addr+tc.query, &res); code != tc.status {
				t.Fatalf("POST providers: status %d, want %d (%v)", code, tc.status, res)
			}
			// The record was pushed to the other nodes, not only kept by
			// the provider (which every lookup in a 4-node DHT reaches).
			testutil.Eventually(t, 30*time.Second, "the provider record to reach every other node", func() bool {
				for _, n := range nodes[1:] {
					if !hasProvider(t, n.Server, addr, nodes[0].host.ID()) {
						return false
					}
				}
				return true
			})
			p := findFrom(t, nodes[3], addr, nodes[0])
			if p.NodeID != nodes[0].nodeID || !slices.Equal(p.OverlayAddrs, []string{"/ip4/127.0.0.1/tcp/9101"}) {
				t.Fatalf("provider %+v: want node id %s mapped through its record", p, nodes[0].nodeID)
			}
		})
	}
}

func TestAPIRefusesBadInput(t *testing.T) {
	n := startNode(t, testConfig(""), nil)
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/dht/providers/b3:nothex", http.StatusBadRequest},
		{http.MethodGet, "/dht/providers/sha256:00", http.StatusBadRequest},
		{http.MethodGet, "/dht/providers/" + testAddr(1) + "?limit=0", http.StatusBadRequest},
		{http.MethodGet, "/dht/providers/" + testAddr(1) + "?limit=x", http.StatusBadRequest},
		{http.MethodGet, "/dht/providers/" + testAddr(1) + "?limit=1000", http.StatusBadRequest},
		{http.MethodDelete, "/dht/providers/" + testAddr(1), http.StatusMethodNotAllowed},
		{http.MethodGet, "/dht/nope", http.StatusNotFound},
	}
	for _, tc := range tests {
		var body map[string]any
		if code := do(t, n.Server, tc.method, tc.path, &body); code != tc.status || body["error"] == nil {
			t.Errorf("%s %s: status %d body %v, want %d with a JSON error", tc.method, tc.path, code, body, tc.status)
		}
	}
}

// TestLoneNode: a node with no peers is ready, answers /dht/info, and lists
// itself for what it provides; its record stays local.
func TestLoneNode(t *testing.T) {
	n := startNode(t, testConfig(""), nil)
	if err := n.Ready(); err != nil {
		t.Fatalf("lone node not ready: %v", err)
	}
	var info Info
	if code := do(t, n.Server, http.MethodGet, "/dht/info", &info); code != http.StatusOK {
		t.Fatalf("GET info: %d", code)
	}
	if info.PeerID != n.PeerID() || len(info.Addrs) == 0 || info.RoutingTable != 0 {
		t.Fatalf("info %+v: want own peer id, addresses and an empty routing table", info)
	}
	addr := testAddr(7)
	if code := do(t, n.Server, http.MethodPost, "/dht/providers/"+addr, nil); code != http.StatusAccepted {
		t.Fatalf("POST providers: %d", code)
	}
	findFrom(t, n, addr, n)
	testutil.Eventually(t, 20*time.Second, "own record to be stored locally", func() bool {
		return n.resolve(context.Background(), n.host.ID()).NodeID == n.nodeID
	})
	var peers map[string][]PeerEntry
	if code := do(t, n.Server, http.MethodGet, "/dht/peers", &peers); code != http.StatusOK || len(peers["peers"]) != 0 {
		t.Fatalf("GET peers: %d %v, want an empty table", code, peers)
	}
}

// TestForgedRecordRefused: nobody can store a record that binds a DHT peer
// to a node whose key did not sign it, or a record under another DHT peer's
// key; an unmapped provider is listed with an empty node id.
func TestForgedRecordRefused(t *testing.T) {
	nodes := startCluster(t, 3)
	a, b, mallory := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// mallory's record, stored under a's DHT peer id: the validator refuses
	// it (the record names mallory's DHT peer).
	if err := mallory.kad.PutValue(ctx, identity.RecordKey(a.host.ID()), mallory.signRecord(t, 99)); err == nil {
		t.Fatal("a record stored under another DHT peer's key was accepted")
	}
	// A record claiming a's node id, signed by mallory's node key, does not
	// even get signed; one with its signature bytes altered is refused.
	forged := slices.Clone(a.signRecord(t, 100))
	forged[len(forged)-1] ^= 0xff
	err := mallory.kad.PutValue(ctx, identity.RecordKey(a.host.ID()), forged)
	if err == nil {
		t.Fatal("a record with a broken signature was accepted")
	}
	// b maps a to a's node through a's genuine record.
	testutil.Eventually(t, 10*time.Second, "a's record to resolve on b", func() bool {
		return b.resolve(context.Background(), a.host.ID()).NodeID == a.nodeID
	})
	// A peer without a record and unknown to the overlay maps to "".
	stranger := startNode(t, testConfig(""), nil)
	stranger.overlay.setRecord(nil)
	if info := b.resolve(context.Background(), stranger.host.ID()); info.NodeID != "" {
		t.Fatalf("unmapped peer resolved to %+v", info)
	}
}

// TestRestartKeepsProvidersAndKey: a DHT restarted on its data dir keeps
// its peer id, the provider records others told it, and its own keystore.
func TestRestartKeepsProvidersAndKey(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	a := startNode(t, cfg, nil)
	b := startNode(t, testConfig(""), nil)
	linkAll([]*testNode{a, b})
	testutil.Eventually(t, 20*time.Second, "a and b to see each other", func() bool {
		return a.kad.RoutingTable().Size() == 1 && b.kad.RoutingTable().Size() == 1
	})
	told := testAddr(500)
	if code := do(t, b.Server, http.MethodPost, "/dht/providers/"+told+"?sync=1", nil); code != http.StatusOK {
		t.Fatalf("POST sync on b: %d", code)
	}
	own := testAddr(501)
	if code := do(t, a.Server, http.MethodPost, "/dht/providers/"+own, nil); code != http.StatusAccepted {
		t.Fatalf("POST on a: %d", code)
	}
	// ADD_PROVIDER is one-way: b's sync provide returns once sent, and a
	// stores the record when it has read the message.
	testutil.Eventually(t, 10*time.Second, "a to store b's provider record", func() bool {
		return hasProvider(t, a.Server, told, b.host.ID())
	})
	id := a.PeerID()
	if err := a.Close(); err != nil {
		t.Fatalf("close a: %v", err)
	}

	// Restart without any peers: what a knows now comes from its disk.
	a2, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { _ = a2.Close() })
	if a2.PeerID() != id {
		t.Fatalf("peer id after restart %s, want %s", a2.PeerID(), id)
	}
	if !hasProvider(t, a2, told, b.host.ID()) {
		t.Fatalf("provider record for %s lost across the restart", told)
	}
	if size, err := a2.keys.Size(context.Background()); err != nil || size != 1 {
		t.Fatalf("reprovider keystore after the restart holds %d keys (err %v), want the 1 a provided", size, err)
	}
}

// hasProvider reads s's local provider store only.
func hasProvider(t *testing.T, s *Server, addr string, p peer.ID) bool {
	t.Helper()
	c, err := KeyFor(addr)
	if err != nil {
		t.Fatal(err)
	}
	ais, err := s.kad.ProviderStore().GetProviders(context.Background(), c.Hash())
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("local providers: %v", err)
	}
	for _, ai := range ais {
		if ai.ID == p {
			return true
		}
	}
	return false
}

// TestWalkOfStorageProvidesEverything: after a start the DHT hands every
// address storage lists to the reprovider (storage answering 503 at first),
// and another node finds them.
func TestWalkOfStorageProvidesEverything(t *testing.T) {
	nodes := startCluster(t, 3)
	var addrs []string
	for i := range 40 {
		addrs = append(addrs, testAddr(1000+i))
	}
	st, _ := fakeStorage(t, addrs, 2)
	cfg := testConfig("")
	cfg.StorageURL = st.URL
	cfg.ListPageSize = 7
	n := startNode(t, cfg, nil)
	linkAll(append(nodes, n))
	testutil.Eventually(t, 20*time.Second, "all 40 addresses in the keystore", func() bool {
		size, err := n.keys.Size(context.Background())
		return err == nil && size == len(addrs)
	})
	findFrom(t, nodes[0], addrs[0], n)
	findFrom(t, nodes[1], addrs[len(addrs)-1], n)
}
