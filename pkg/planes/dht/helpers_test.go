package dht

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/identity"
)

// fakeOverlay is a test double of the local overlay's HTTP API: a peer table
// and this node's signed record.
type fakeOverlay struct {
	srv *httptest.Server

	mu     sync.Mutex
	peers  []overlayPeer
	record []byte
}

func newFakeOverlay(t testing.TB) *fakeOverlay {
	f := &fakeOverlay{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /overlay/peers", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		body := map[string]any{"peers": f.peers}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(body)
	})
	mux.HandleFunc("GET /overlay/record", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		rec := f.record
		f.mu.Unlock()
		if rec == nil {
			http.Error(w, `{"error":"no record yet"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(rec)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOverlay) setPeers(ps []overlayPeer) {
	f.mu.Lock()
	f.peers = ps
	f.mu.Unlock()
}

func (f *fakeOverlay) setRecord(b []byte) {
	f.mu.Lock()
	f.record = b
	f.mu.Unlock()
}

// testNode is one DHT plane with its fake overlay and its node key.
type testNode struct {
	*Server
	overlay *fakeOverlay
	nodeKey crypto.PrivKey
	nodeID  string
}

// testConfig is a DHT on loopback (TCP only: quicker to start), polling
// its overlay often.
func testConfig(dataDir string) Config {
	return Config{
		DataDir:       dataDir,
		Amnesia:       dataDir == "",
		P2PListen:     []string{"/ip4/127.0.0.1/tcp/0"},
		BootstrapPoll: 100 * time.Millisecond,
		RecordRefresh: time.Minute,
		LookupTimeout: 5 * time.Second,
	}
}

func startNode(t testing.TB, cfg Config, nodeKey crypto.PrivKey) *testNode {
	t.Helper()
	ov := newFakeOverlay(t)
	cfg.OverlayURL = ov.srv.URL
	s, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatalf("start dht: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if nodeKey == nil {
		if nodeKey, err = identity.Generate(); err != nil {
			t.Fatal(err)
		}
	}
	id, err := identity.NodeID(nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{Server: s, overlay: ov, nodeKey: nodeKey, nodeID: id.String()}
	ov.setRecord(n.signRecord(t, 1))
	return n
}

// signRecord is the record this node's overlay would serve.
func (n *testNode) signRecord(t testing.TB, seq uint64) []byte {
	t.Helper()
	b, err := identity.Sign(n.nodeKey, identity.NodeRecord{
		OverlayAddrs: []string{"/ip4/127.0.0.1/tcp/9101"},
		DHTPeerID:    n.PeerID(),
		DHTAddrs:     addrStrings(n.host.Addrs()),
		Version:      "test",
		Seq:          seq,
		ReadyPlanes:  []string{"overlay", "dht"},
	})
	if err != nil {
		t.Fatalf("sign record: %v", err)
	}
	return b
}

// asOverlayPeer is how other nodes' overlays list n.
func (n *testNode) asOverlayPeer() overlayPeer {
	return overlayPeer{NodeID: n.nodeID, Addrs: []string{"/ip4/127.0.0.1/tcp/9101"},
		DHTPeerID: n.PeerID(), DHTAddrs: addrStrings(n.host.Addrs())}
}

// startCluster starts n amnesiac DHTs whose overlays all list each other,
// and waits until every routing table holds every other node.
func startCluster(t testing.TB, n int) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = startNode(t, testConfig(""), nil)
	}
	linkAll(nodes)
	for i, nd := range nodes {
		testutil.Eventually(t, 20*time.Second, fmt.Sprintf("node %d's routing table to hold %d peers", i, n-1), func() bool {
			return nd.kad.RoutingTable().Size() >= n-1
		})
	}
	return nodes
}

// linkAll makes every node's overlay list every other node.
func linkAll(nodes []*testNode) {
	for _, a := range nodes {
		var ps []overlayPeer
		for _, b := range nodes {
			if a != b {
				ps = append(ps, b.asOverlayPeer())
			}
		}
		a.overlay.setPeers(ps)
	}
}

// do runs one request against a node's handler and decodes the JSON body.
func do(t testing.TB, s *Server, method, path string, out any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	if out != nil {
		body, _ := io.ReadAll(rec.Body)
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, strings.TrimSpace(string(body)), err)
		}
	}
	return rec.Code
}

// testAddr is a well-formed content address derived from i.
func testAddr(i int) string {
	var a [32]byte
	copy(a[:], fmt.Sprintf("macronode-test-address-%08d", i))
	return fmt.Sprintf("b3:%x", a)
}
