package admin

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/supervisor"
)

const testNodeID = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"

// planeServer stands in for an overlay or dht child's HTTP API.
func planeServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func answer(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
}

// hang answers only when the test ends (or the client gives up).
func hang(t *testing.T) http.HandlerFunc {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	return func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// clusterNode starts an admin plane whose overlay and dht children listen
// on the given addresses ("" leaves that plane stopped).
func clusterNode(t *testing.T, cfg *config.Config, nodeID, overlay, dht string) *testNode {
	t.Helper()
	return clusterNodeTimeout(t, cfg, nodeID, overlay, dht, 300*time.Millisecond)
}

func clusterNodeTimeout(t *testing.T, cfg *config.Config, nodeID, overlay, dht string, timeout time.Duration) *testNode {
	t.Helper()
	var snap []supervisor.Status
	for name, addr := range map[string]string{"overlay": overlay, "dht": dht} {
		if addr != "" {
			st := running(name)
			st.Listen = addr
			snap = append(snap, st)
		}
	}
	svc := &fakeServices{}
	svc.set(snap...)
	if cfg == nil {
		cfg = testConfig()
	}
	return start(t, Options{Services: svc, Config: func() *config.Config { return cfg }, NodeID: nodeID,
		PlaneTimeout: timeout})
}

const overlayInfoBody = `{"node_id":"` + testNodeID + `","addrs":["/ip4/127.0.0.1/tcp/9101/p2p/` + testNodeID +
	`"],"peers":3,"connected":2,"version":"0.1.0"}`

func TestStatusNode(t *testing.T) {
	overlayOK := func(t *testing.T) string { return planeServer(t, answer(overlayInfoBody)) }
	dhtOK := func(t *testing.T) string {
		return planeServer(t, answer(`{"peer_id":"x","addrs":[],"routing_table":7,"providers_stored":1}`))
	}
	disabled := func(plane string) *config.Config {
		c := testConfig()
		delete(c.Services, plane)
		return c
	}
	full := NodeStatus{ID: testNodeID, Addrs: []string{"/ip4/127.0.0.1/tcp/9101/p2p/" + testNodeID}, Peers: 3, Connected: 2,
		DHTRoutingTable: 7, Overlay: PlaneOK, DHT: PlaneOK}
	tests := []struct {
		name         string
		cfg          *config.Config
		nodeID       string
		overlay, dht func(t *testing.T) string // nil: the plane is stopped
		want         NodeStatus
	}{
		{"both answer", nil, testNodeID, overlayOK, dhtOK, full},
		{"id from the overlay when not given", nil, "", overlayOK, dhtOK, full},
		{"overlay hangs", nil, testNodeID, func(t *testing.T) string { return planeServer(t, hang(t)) }, dhtOK,
			NodeStatus{ID: testNodeID, Addrs: []string{}, DHTRoutingTable: 7, Overlay: PlaneUnreachable, DHT: PlaneOK}},
		{"overlay refuses connections", nil, testNodeID, closedAddr, dhtOK,
			NodeStatus{ID: testNodeID, Addrs: []string{}, DHTRoutingTable: 7, Overlay: PlaneUnreachable, DHT: PlaneOK}},
		{"overlay answers 500", nil, testNodeID, func(t *testing.T) string {
			return planeServer(t, func(w http.ResponseWriter, _ *http.Request) { httpx.Error(w, 500, "", "boom") })
		}, dhtOK, NodeStatus{ID: testNodeID, Addrs: []string{}, DHTRoutingTable: 7, Overlay: PlaneUnreachable, DHT: PlaneOK}},
		{"dht answers junk", nil, testNodeID, overlayOK, func(t *testing.T) string { return planeServer(t, answer("<html>")) },
			NodeStatus{ID: testNodeID, Addrs: full.Addrs, Peers: 3, Connected: 2, Overlay: PlaneOK, DHT: PlaneUnreachable}},
		{"both stopped", nil, testNodeID, nil, nil,
			NodeStatus{ID: testNodeID, Addrs: []string{}, Overlay: PlaneDown, DHT: PlaneDown}},
		{"dht disabled", disabled("dht"), testNodeID, overlayOK, nil,
			NodeStatus{ID: testNodeID, Addrs: full.Addrs, Peers: 3, Connected: 2, Overlay: PlaneOK, DHT: PlaneDisabled}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var overlay, dht string
			if tc.overlay != nil {
				overlay = tc.overlay(t)
			}
			if tc.dht != nil {
				dht = tc.dht(t)
			}
			n := clusterNode(t, tc.cfg, tc.nodeID, overlay, dht)
			began := time.Now()
			r := n.get(t, "/api/v1/status")
			if took := time.Since(began); took > 3*time.Second {
				t.Errorf("status took %v with a plane timeout of 300ms", took)
			}
			var got StatusResponse
			r.json(t, &got)
			if r.code != 200 {
				t.Fatalf("got %d %s", r.code, r.body)
			}
			g, w := mustJSON(t, got.Node), mustJSON(t, tc.want)
			if g != w {
				t.Errorf("node = %s\nwant   %s", g, w)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The two planes are asked at the same time: each stand-in answers only
// once the other one has been asked, which a sequential status would never
// see before its timeout.
func TestStatusAsksPlanesInParallel(t *testing.T) {
	overlayAsked, dhtAsked := make(chan struct{}), make(chan struct{})
	waitFor := func(mine, other chan struct{}, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			close(mine)
			select {
			case <-other:
				answer(body)(w, r)
			case <-r.Context().Done():
			}
		}
	}
	overlay := planeServer(t, waitFor(overlayAsked, dhtAsked, overlayInfoBody))
	dht := planeServer(t, waitFor(dhtAsked, overlayAsked, `{"routing_table":4}`))
	n := clusterNode(t, nil, testNodeID, overlay, dht)
	var got StatusResponse
	n.get(t, "/api/v1/status").json(t, &got)
	if got.Node.Overlay != PlaneOK || got.Node.DHT != PlaneOK || got.Node.DHTRoutingTable != 4 || got.Node.Peers != 3 {
		t.Fatalf("node = %+v", got.Node)
	}
}

func TestPeersRoute(t *testing.T) {
	const table = `{"peers":[
	 {"node_id":"B","addrs":["/ip4/127.0.0.1/tcp/2/p2p/B"],"connected":false,"rtt_ms":0,"last_seen":null,"agent":"macronode/0.1.0",
	  "ready_planes":null,"dht_peer_id":"","dht_addrs":null,"seq":0},
	 {"node_id":"A","addrs":["/ip4/127.0.0.1/tcp/1/p2p/A"],"connected":true,"rtt_ms":0.42,"last_seen":"2025-03-04T05:06:07Z",
	  "agent":"macronode/0.1.0","ready_planes":["overlay","dht"],"dht_peer_id":"D","dht_addrs":["/ip4/127.0.0.1/tcp/3"],"seq":17,
	  "unknown_field":"ignored"},
	 {"node_id":"C","addrs":[],"connected":true,"rtt_ms":3,"last_seen":1741064767.5,"agent":"","ready_planes":["overlay"],"seq":2}]}`
	const want = `{"peers":[` +
		`{"node_id":"A","addrs":["/ip4/127.0.0.1/tcp/1/p2p/A"],"connected":true,"rtt_ms":0.42,"last_seen":"2025-03-04T05:06:07Z",` +
		`"agent":"macronode/0.1.0","ready_planes":["overlay","dht"],"dht_peer_id":"D","dht_addrs":["/ip4/127.0.0.1/tcp/3"],"seq":17},` +
		`{"node_id":"B","addrs":["/ip4/127.0.0.1/tcp/2/p2p/B"],"connected":false,"rtt_ms":0,"agent":"macronode/0.1.0",` +
		`"ready_planes":[],"dht_addrs":[],"seq":0},` +
		`{"node_id":"C","addrs":[],"connected":true,"rtt_ms":3,"last_seen":"2025-03-04T05:06:07.5Z","agent":"","ready_planes":["overlay"],` +
		`"dht_addrs":[],"seq":2}]}`
	noOverlay := testConfig()
	delete(noOverlay.Services, "overlay")
	tests := []struct {
		name    string
		cfg     *config.Config
		overlay func(t *testing.T) string
		code    int
		want    string // the body, or a fragment of the error
	}{
		{"table", nil, func(t *testing.T) string { return planeServer(t, answer(table)) }, 200, want},
		{"empty", nil, func(t *testing.T) string { return planeServer(t, answer(`{"peers":null}`)) }, 200, `{"peers":[]}`},
		{"disabled", noOverlay, nil, 503, "disabled"},
		{"stopped", nil, nil, 503, "not running"},
		{"refused", nil, closedAddr, 503, "did not answer"},
		{"hangs", nil, func(t *testing.T) string { return planeServer(t, hang(t)) }, 503, "did not answer"},
		{"500", nil, func(t *testing.T) string {
			return planeServer(t, func(w http.ResponseWriter, _ *http.Request) { httpx.Error(w, 500, "", "boom") })
		}, 502, "500 Internal Server Error"},
		{"junk", nil, func(t *testing.T) string { return planeServer(t, answer(`{"peers":[{"seq":"x"}]}`)) }, 502, "bad answer"},
		{"bad time", nil, func(t *testing.T) string { return planeServer(t, answer(`{"peers":[{"last_seen":true}]}`)) }, 502, "bad answer"},
		{"too large", nil, func(t *testing.T) string { return planeServer(t, oversized(true)) }, 502, "more than"},
		{"too large, streamed", nil, func(t *testing.T) string { return planeServer(t, oversized(false)) }, 502, "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var overlay string
			if tc.overlay != nil {
				overlay = tc.overlay(t)
			}
			// Long enough to read planeMaxBytes under -race on a busy machine.
			timeout := 300 * time.Millisecond
			if strings.HasPrefix(tc.name, "too large") {
				timeout = 10 * time.Second
			}
			n := clusterNodeTimeout(t, tc.cfg, testNodeID, overlay, "", timeout)
			r := n.get(t, "/api/v1/peers")
			if r.code != tc.code {
				t.Fatalf("got %d %s", r.code, r.body)
			}
			if tc.code == 200 {
				if got := strings.TrimSpace(string(r.body)); got != tc.want {
					t.Fatalf("body %s\nwant %s", got, tc.want)
				}
				return
			}
			var e httpx.ErrorBody
			r.json(t, &e)
			if e.Code != httpx.CodeFor(tc.code) || !strings.Contains(e.Error, tc.want) {
				t.Fatalf("error body %s, want one mentioning %q", r.body, tc.want)
			}
		})
	}
}

// oversized answers a peer table one byte over planeMaxBytes, with a
// Content-Length or streamed without one.
func oversized(withLength bool) http.HandlerFunc {
	const head, tail = `{"peers":[],"pad":"`, `"}`
	return func(w http.ResponseWriter, _ *http.Request) {
		if withLength {
			w.Header().Set("Content-Length", strconv.Itoa(planeMaxBytes+1))
		}
		_, _ = w.Write([]byte(head))
		pad := []byte(strings.Repeat("x", 64<<10))
		for n := planeMaxBytes + 1 - len(head) - len(tail); n > 0; n -= len(pad) {
			_, _ = w.Write(pad[:min(n, len(pad))])
		}
		_, _ = w.Write([]byte(tail))
	}
}

func TestFlexTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{`"2025-03-04T05:06:07Z"`, time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC), true},
		{`"2025-03-04T06:06:07+01:00"`, time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC), true},
		{`1741064767`, time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC), true},
		{`1741064767.25`, time.Date(2025, 3, 4, 5, 6, 7, 250e6, time.UTC), true},
		{`null`, time.Time{}, true},
		{`""`, time.Time{}, true},
		{`0`, time.Time{}, true},
		{`"yesterday"`, time.Time{}, false},
		{`true`, time.Time{}, false},
		{`{}`, time.Time{}, false},
	} {
		var got flexTime
		err := json.Unmarshal([]byte(tc.in), &got)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("%s: got %v, %v; want %v (ok %v)", tc.in, got.Time, err, tc.want, tc.ok)
		}
	}
}
