package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// propagateTimeout bounds how long an announce takes to reach another node
// through the DHT (tests poll; they never assume it is instant).
const propagateTimeout = 60 * time.Second

// nodeInfo is the "node" section of /api/v1/status.
type nodeInfo struct {
	ID              string   `json:"id"`
	Addrs           []string `json:"addrs"`
	Peers           int      `json:"peers"`
	DHTRoutingTable int      `json:"dht_routing_table"`
}

// clusterNode starts a node whose overlay and DHT listen on free loopback
// ports and that bootstraps from boot ("" for the first node).
func clusterNode(t *testing.T, boot, dataDir string) *node {
	t.Helper()
	// Fixed (free) TCP ports, as in production: a restarted overlay or dht
	// child comes back on the address its peers know.
	env := []string{
		"RON_OVERLAY_P2P_ADDR=/ip4/127.0.0.1/tcp/" + freePort(t),
		"RON_DHT_P2P_ADDR=/ip4/127.0.0.1/tcp/" + freePort(t),
	}
	if boot != "" {
		env = append(env, "RON_BOOTSTRAP="+boot)
	}
	return startNode(t, nodeOpts{env: env, dataDir: dataDir})
}

func (n *node) nodeInfo(t testing.TB) nodeInfo {
	t.Helper()
	var st struct {
		Node nodeInfo `json:"node"`
	}
	var last string
	eventually(t, 30*time.Second, func() (bool, string) {
		code, err := tryJSON("GET", n.url("/api/v1/status"), nil, &st)
		last = fmt.Sprintf("%d %v %+v", code, err, st.Node)
		return err == nil && code == 200 && st.Node.ID != "" && len(st.Node.Addrs) > 0, "status node section: " + last
	})
	return st.Node
}

// tcpAddr picks the node's loopback TCP multiaddr (ending in /p2p/<id>).
func tcpAddr(t testing.TB, ni nodeInfo) string {
	t.Helper()
	for _, a := range ni.Addrs {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") && strings.HasSuffix(a, "/p2p/"+ni.ID) {
			return a
		}
	}
	t.Fatalf("node %s advertises no loopback TCP address: %v", ni.ID, ni.Addrs)
	return ""
}

// getBlobFrom GETs addr from n's gateway; ok when 200 with exactly want.
func getBlobFrom(n *node, addr string, want []byte, hdr http.Header) (source string, status int, err error) {
	resp, b, err := request("GET", n.gw("/o/"+addr), nil, hdr)
	if err != nil {
		return "", 0, err
	}
	if resp.StatusCode == 200 && !bytes.Equal(b, want) {
		return "", resp.StatusCode, fmt.Errorf("GET %s: 200 with %d bytes that are not the blob", addr, len(b))
	}
	return resp.Header.Get("X-Macronode-Source"), resp.StatusCode, nil
}

// TestClusterThreeNodes: the story of issue #10 as a user runs it. Three
// parents on loopback; B and C bootstrap from A's node.addrs; a blob PUT on
// A is GET byte-identical from C (source: peer A), then local; HEAD works
// on a miss; with A stopped, B fetches it from C; C keeps its id across a
// restart on its data dir.
func TestClusterThreeNodes(t *testing.T) {
	a := clusterNode(t, "", "")
	ia := a.nodeInfo(t)
	boot := tcpAddr(t, ia)
	b := clusterNode(t, boot, "")
	cDir := t.TempDir()
	c := clusterNode(t, boot, cDir)
	ib, ic := b.nodeInfo(t), c.nodeInfo(t)
	if ia.ID == ib.ID || ib.ID == ic.ID || ia.ID == ic.ID {
		t.Fatalf("node ids not distinct: %s %s %s", ia.ID, ib.ID, ic.ID)
	}

	// macronode peers on C lists A and B within 30s.
	eventually(t, 30*time.Second, func() (bool, string) {
		r := runCLI(t, []string{"RON_HTTP_ADDR=" + c.admin}, "macronode", "peers")
		return r.code == 0 && strings.Contains(r.out, ia.ID) && strings.Contains(r.out, ib.ID), fmt.Sprintf("peers exit %d:\n%s", r.code, r.out)
	})

	blob := make([]byte, 5<<20)
	_, _ = rand.Read(blob)
	var put struct {
		Address string `json:"address"`
		Size    int64  `json:"size"`
	}
	resp, body, err := request("POST", a.gw("/o"), blob, http.Header{"Content-Type": {"application/octet-stream"}})
	if err != nil || resp.StatusCode != 201 || json.Unmarshal(body, &put) != nil {
		t.Fatalf("POST /o on A: %v %v %s", err, resp, trunc(body))
	}
	addr := put.Address

	// only-if-cached never goes remote: 504 on a miss (RFC 9111).
	if _, code, err := getBlobFrom(c, addr, blob, http.Header{"Cache-Control": {"only-if-cached"}}); err != nil || code != 504 {
		t.Fatalf("only-if-cached GET on C before any fetch = %d %v, want 504", code, err)
	}
	// HEAD on a miss asks a provider for the size, without fetching.
	eventually(t, propagateTimeout, func() (bool, string) {
		resp, _, err := request("HEAD", b.gw("/o/"+addr), nil, nil)
		if err != nil {
			return false, err.Error()
		}
		return resp.StatusCode == 200 && resp.ContentLength == int64(len(blob)) && resp.Header.Get("X-Macronode-Source") == "peer "+ia.ID,
			fmt.Sprintf("HEAD on B: %d len %d source %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("X-Macronode-Source"))
	})
	if _, code, _ := getBlobFrom(b, addr, blob, http.Header{"Cache-Control": {"only-if-cached"}}); code != 504 {
		t.Fatalf("HEAD on B fetched the blob: only-if-cached GET = %d, want 504", code)
	}

	// GET from C: polled until the announce has propagated.
	eventually(t, propagateTimeout, func() (bool, string) {
		src, code, err := getBlobFrom(c, addr, blob, nil)
		if err != nil {
			t.Fatal(err) // wrong bytes are never acceptable
		}
		return code == 200 && src == "peer "+ia.ID, fmt.Sprintf("GET on C: %d source %q", code, src)
	})
	if src, code, err := getBlobFrom(c, addr, blob, nil); err != nil || code != 200 || src != "local" {
		t.Fatalf("second GET on C = %d %q %v, want 200 local", code, src, err)
	}

	// A stops; B still gets the blob, from C (which provides what it fetched).
	a.stop()
	eventually(t, propagateTimeout, func() (bool, string) {
		src, code, err := getBlobFrom(b, addr, blob, nil)
		if err != nil {
			t.Fatal(err)
		}
		return code == 200 && src == "peer "+ic.ID, fmt.Sprintf("GET on B with A stopped: %d source %q", code, src)
	})

	// C restarted on its data dir keeps its node id.
	c.stop()
	c2 := clusterNode(t, boot, cDir)
	if id := c2.nodeInfo(t).ID; id != ic.ID {
		t.Fatalf("C restarted on its data dir has id %s, want %s", id, ic.ID)
	}
	r := runCLI(t, []string{"RON_HTTP_ADDR=" + c2.admin}, "macronode", "id")
	if r.code != 0 || strings.TrimSpace(r.out) != ic.ID {
		t.Fatalf("macronode id on C = %d %q, want %s", r.code, r.out, ic.ID)
	}
}

// freePort is the port of a free loopback TCP address (see freeAddr).
func freePort(t testing.TB) string {
	t.Helper()
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	return port
}
