package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"lukechampine.com/blake3"
)

// lyingStorage stands in for a provider's storage plane and serves wrong
// bytes (same length, every byte flipped) for the blobs it was given.
func lyingStorage(t *testing.T, blobs map[string][]byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/o" { // the DHT's reprovide walk
			_, _ = w.Write([]byte(`{"addresses":[],"next":""}`))
			return
		}
		b, ok := blobs[strings.TrimPrefix(r.URL.Path, "/o/")]
		if !ok {
			http.Error(w, `{"error":"not found","code":"not_found"}`, http.StatusNotFound)
			return
		}
		lie := make([]byte, len(b))
		for i := range b {
			lie[i] = ^b[i]
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(lie)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(lie)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// liar is a provider made of a real svc-overlay and svc-dht, run by hand,
// whose storage lies. It joins the cluster through boot and announces addr.
type liar struct {
	overlay, dht *standalone
	id           string
}

func startLiar(t *testing.T, boot, storageURL string) *liar {
	t.Helper()
	ovAddr, dhtAddr := freeAddr(t), freeAddr(t)
	ov := startStandaloneOn(t, "svc-overlay", ovAddr,
		"--amnesia", "--p2p-listen", "/ip4/127.0.0.1/tcp/0",
		"--bootstrap", boot, "--storage-url", storageURL, "--dht-url", "http://"+dhtAddr)
	dh := startStandaloneOn(t, "svc-dht", dhtAddr,
		"--amnesia", "--p2p-listen", "/ip4/127.0.0.1/tcp/0",
		"--overlay-url", "http://"+ovAddr, "--storage-url", storageURL)
	var info struct {
		NodeID string `json:"node_id"`
	}
	if code := getJSON(t, "http://"+ovAddr+"/overlay/info", &info); code != 200 || info.NodeID == "" {
		t.Fatalf("liar overlay info: %d %+v", code, info)
	}
	return &liar{overlay: ov, dht: dh, id: info.NodeID}
}

// TestClusterLyingProvider: a provider whose bytes do not hash to the
// address is never served and nothing of it is kept; once an honest node
// holds the blob, it is fetched from that one.
func TestClusterLyingProvider(t *testing.T) {
	a := clusterNode(t, "", "")
	boot := tcpAddr(t, a.nodeInfo(t))
	c := clusterNode(t, boot, "")

	blob := make([]byte, 256<<10)
	_, _ = rand.Read(blob)
	addr := b3(blob)
	l := startLiar(t, boot, lyingStorage(t, map[string][]byte{addr: blob}).URL)
	// The liar announces the address; the announce propagates in time.
	eventually(t, propagateTimeout, func() (bool, string) {
		resp, b, err := request("POST", "http://"+l.dht.addr+"/dht/providers/"+addr+"?sync=1", nil, nil)
		if err != nil {
			return false, err.Error()
		}
		if resp.StatusCode/100 != 2 {
			return false, fmt.Sprintf("announce: %d %s", resp.StatusCode, b)
		}
		var p struct {
			Providers []struct {
				NodeID string `json:"node_id"`
			} `json:"providers"`
		}
		_, err = tryJSON("GET", "http://"+c.addrs["dht"]+"/dht/providers/"+addr, nil, &p)
		return err == nil && len(p.Providers) > 0 && p.Providers[0].NodeID == l.id, fmt.Sprintf("providers seen by C: %+v %v", p, err)
	})

	// Only the liar provides: the fetch fails with a JSON 502, nothing is kept.
	resp, body, err := request("GET", c.gw("/o/"+addr), nil, nil)
	if err != nil || resp.StatusCode != 502 || bytes.Contains(body, blob[:64]) {
		t.Fatalf("GET with only a lying provider = %v %d %s, want JSON 502", err, resp.StatusCode, trunc(body))
	}
	var eb errBody
	if json.Unmarshal(body, &eb) != nil || eb.Code == "" {
		t.Errorf("502 body is not a JSON error: %s", trunc(body))
	}
	if _, code, _ := getBlobFrom(c, addr, blob, http.Header{"Cache-Control": {"only-if-cached"}}); code != 504 {
		t.Fatalf("after the lie, only-if-cached GET = %d, want 504 (nothing kept)", code)
	}
	m := scrape(t, c.url("/metrics"))
	if v, ok := metricValue(m, "macronode_gateway_provider_mismatches_total", map[string]string{"service": "gateway"}); !ok || v < 1 {
		t.Errorf("the lie was not counted: macronode_gateway_provider_mismatches_total = %v (present %v)", v, ok)
	}

	// An honest node now holds it: C gets the true bytes, never the lie.
	if resp, b, err := request("POST", a.gw("/o"), blob, http.Header{"Content-Type": {"application/octet-stream"}}); err != nil || resp.StatusCode != 201 {
		t.Fatalf("POST on A: %v %v %s", err, resp, trunc(b))
	}
	ia := a.nodeInfo(t)
	eventually(t, propagateTimeout, func() (bool, string) {
		src, code, err := getBlobFrom(c, addr, blob, nil)
		if err != nil {
			t.Fatal(err)
		}
		return code == 200 && src == "peer "+ia.ID, fmt.Sprintf("GET on C: %d %q", code, src)
	})
}

// TestClusterKillOverlayMidFetch: kill -9 of the providing node's overlay
// during a 64 MiB fetch gives a JSON 502 (or, if the fetch won the race, the
// whole blob), never a corrupt or partial body; once the overlay healed, a
// retry succeeds.
func TestClusterKillOverlayMidFetch(t *testing.T) {
	a := clusterNode(t, "", "")
	ia := a.nodeInfo(t)
	c := clusterNode(t, tcpAddr(t, ia), "")
	blob := make([]byte, 64<<20)
	_, _ = rand.Read(blob)
	addr := b3(blob)
	if resp, b, err := request("POST", a.gw("/o"), blob, http.Header{"Content-Type": {"application/octet-stream"}}); err != nil || resp.StatusCode != 201 {
		t.Fatalf("POST on A: %v %v %s", err, resp, trunc(b))
	}
	// Wait until C sees A as a provider (HEAD asks without fetching).
	eventually(t, propagateTimeout, func() (bool, string) {
		resp, _, err := request("HEAD", c.gw("/o/"+addr), nil, nil)
		if err != nil {
			return false, err.Error()
		}
		return resp.StatusCode == 200, fmt.Sprintf("HEAD on C: %d", resp.StatusCode)
	})

	overlayPID := childPID(t, a, "overlay")
	type result struct {
		code int
		body []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, b, err := request("GET", c.gw("/o/"+addr), nil, nil)
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{code: resp.StatusCode, body: b}
	}()
	// Kill once bytes flow out of A's overlay.
	killed := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !killed; {
		select {
		case r := <-done:
			done <- r
			deadline = time.Now() // the fetch finished first
			continue
		default:
		}
		m := scrape(t, a.url("/metrics"))
		if v, ok := metricValue(m, "macronode_overlay_bytes_total", map[string]string{"service": "overlay", "direction": "out"}); ok && v > 1<<20 {
			signalChild(t, overlayPID, "svc-overlay", syscall.SIGKILL)
			killed = true
		}
		time.Sleep(pollEvery)
	}
	r := <-done
	switch {
	case r.err != nil:
		t.Fatalf("GET during the kill: %v", r.err)
	case r.code == 200 && !bytes.Equal(r.body, blob):
		t.Fatalf("GET during the kill: 200 with %d bytes that are not the blob", len(r.body))
	case r.code == 200:
		t.Logf("the fetch finished before the kill landed (killed=%v)", killed)
	case r.code == 502:
		t.Logf("GET during the kill: 502 JSON (the kill landed mid-fetch: %v)", killed)
		var eb errBody
		if json.Unmarshal(r.body, &eb) != nil || eb.Code == "" {
			t.Errorf("502 body is not a JSON error: %s", trunc(r.body))
		}
	default:
		t.Fatalf("GET during the kill: %d %s, want 502 JSON or the whole blob", r.code, trunc(r.body))
	}
	// After the overlay healed, a retry succeeds with the whole blob.
	eventually(t, propagateTimeout, func() (bool, string) {
		src, code, err := getBlobFrom(c, addr, blob, nil)
		if err != nil {
			t.Fatal(err)
		}
		return code == 200 && (src == "peer "+ia.ID || src == "local"), fmt.Sprintf("retry GET on C: %d %q", code, src)
	})
}

// b3 is the content address of b (BLAKE3-256, SPEC §8).
func b3(b []byte) string {
	sum := blake3.Sum256(b)
	return "b3:" + hex.EncodeToString(sum[:])
}
