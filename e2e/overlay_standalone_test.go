package e2e

import (
	"strings"
	"testing"
)

// TestOverlayStandalone runs the real svc-overlay by hand, as an operator
// would: it is ready with no peers, and /overlay/info names its node id and
// a dialable loopback address ending in /p2p/<node id>.
func TestOverlayStandalone(t *testing.T) {
	s := startStandalone(t, "svc-overlay")
	var info struct {
		NodeID    string   `json:"node_id"`
		Addrs     []string `json:"addrs"`
		Peers     int      `json:"peers"`
		Connected int      `json:"connected"`
		Version   string   `json:"version"`
	}
	if code := getJSON(t, s.base+"/overlay/info", &info); code != 200 {
		t.Fatalf("GET /overlay/info: %d", code)
	}
	if !strings.HasPrefix(info.NodeID, "12D3KooW") || info.Peers != 0 || info.Connected != 0 || info.Version == "" {
		t.Fatalf("info = %+v", info)
	}
	if len(info.Addrs) == 0 {
		t.Fatal("no addrs")
	}
	for _, a := range info.Addrs {
		if !strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") || !strings.HasSuffix(a, "/p2p/"+info.NodeID) {
			t.Fatalf("addr %q: want /ip4/127.0.0.1/tcp/<port>/p2p/%s", a, info.NodeID)
		}
	}
	var peers struct {
		Peers []any `json:"peers"`
	}
	if code := getJSON(t, s.base+"/overlay/peers", &peers); code != 200 || len(peers.Peers) != 0 {
		t.Fatalf("GET /overlay/peers: %d %v", code, peers)
	}
}
