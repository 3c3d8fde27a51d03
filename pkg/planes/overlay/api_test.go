package overlay

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/identity"
)

func blobURL(n *node, addr string, from ...*node) string {
	ids := make([]string, len(from))
	for i, f := range from {
		ids[i] = f.srv.NodeID().String()
	}
	return n.api.URL + "/overlay/blobs/" + addr + "?from=" + strings.Join(ids, ",")
}

func do(t *testing.T, method, url string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	return resp, b, rerr
}

func TestBlobFetch(t *testing.T) {
	a, b, c := newNode(t, nil), newNode(t, nil), newNode(t, nil)
	connect(t, a, b)
	connect(t, a, c)
	big := randBytes(t, 300<<10+17) // several 64 KiB chunks and a short last one
	addr := b.storage.put(big, false)
	empty := b.storage.put(nil, false)
	missing := c.storage.put([]byte("only on a"), false)
	delete(c.storage.blobs, missing)

	tests := []struct {
		name       string
		method     string
		url        string
		wantStatus int
		wantBody   []byte
		wantSource *node
		wantLength int
	}{
		{"GET from the holder", "GET", blobURL(a, addr, b), 200, big, b, len(big)},
		{"GET tries peers in order", "GET", blobURL(a, addr, c, b), 200, big, b, len(big)},
		{"GET of an empty blob", "GET", blobURL(a, empty, b), 200, []byte{}, b, 0},
		{"HEAD uses STAT", "HEAD", blobURL(a, addr, c, b), 200, []byte{}, b, len(big)},
		{"GET nobody has", "GET", blobURL(a, missing, b, c), 404, nil, nil, -1},
		{"HEAD nobody has", "HEAD", blobURL(a, missing, c), 404, nil, nil, -1},
		{"bad address", "GET", a.api.URL + "/overlay/blobs/b3:xyz?from=" + b.srv.NodeID().String(), 400, nil, nil, -1},
		{"no from", "GET", a.api.URL + "/overlay/blobs/" + addr, 400, nil, nil, -1},
		{"bad from", "GET", a.api.URL + "/overlay/blobs/" + addr + "?from=nope", 400, nil, nil, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, err := do(t, tt.method, tt.url)
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				var e struct{ Error, Code string }
				if tt.method == "GET" && (json.Unmarshal(body, &e) != nil || e.Code == "") {
					t.Fatalf("error body %q is not a JSON error", body)
				}
				return
			}
			if !bytes.Equal(body, tt.wantBody) {
				t.Fatalf("body of %d bytes differs from the blob of %d", len(body), len(tt.wantBody))
			}
			if got := resp.Header.Get(HeaderSource); got != "peer "+tt.wantSource.srv.NodeID().String() {
				t.Fatalf("%s = %q", HeaderSource, got)
			}
			if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(tt.wantLength) {
				t.Fatalf("Content-Length %q, want %d", got, tt.wantLength)
			}
		})
	}
	if got := testutil.Metric(t, b.reg, "macronode_overlay_bytes_total", "direction", "out"); got < float64(2*len(big)) {
		t.Fatalf("b sent %v bytes, want at least two copies of the blob", got)
	}
}

func TestBlobFetchFailures(t *testing.T) {
	a, b := newNode(t, nil), newNode(t, nil)
	connect(t, a, b)
	broken := b.storage.put(randBytes(t, 200<<10), true)

	// The transfer breaks after the headers: the response is cut, never a
	// short body that looks complete.
	resp, err := http.Get(blobURL(a, broken, b))
	if err != nil {
		t.Fatalf("GET: %v (want the headers, then a cut body)", err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err == nil {
		t.Fatalf("read a complete body of %d bytes (status %d) from a broken transfer", len(body), resp.StatusCode)
	}

	// A peer that cannot be reached: 502 JSON.
	b.api.Close()
	stranger := newNode(t, nil)
	id := stranger.srv.NodeID().String()
	if err := stranger.srv.Close(); err != nil {
		t.Fatal(err)
	}
	resp, body, _ = do(t, "GET", a.api.URL+"/overlay/blobs/"+broken+"?from="+id)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "peers_failed") {
		t.Fatalf("unreachable peer: %d %s, want 502 peers_failed", resp.StatusCode, body)
	}
}

func TestInfoRecordConnect(t *testing.T) {
	a, b := newNode(t, nil), newNode(t, nil)
	var info Info
	getJSON(t, a.api.URL+"/overlay/info", &info)
	if info.NodeID != a.srv.NodeID().String() || len(info.Addrs) != 2 || info.Peers != 0 || info.Version != "test" {
		t.Fatalf("info = %+v", info)
	}
	for _, ad := range info.Addrs {
		if !strings.HasPrefix(ad, "/ip4/127.0.0.1/") || !strings.HasSuffix(ad, "/p2p/"+info.NodeID) {
			t.Fatalf("addr %q: want loopback with /p2p/<id>", ad)
		}
	}

	resp, raw, err := do(t, "GET", a.api.URL+"/overlay/record")
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("record: %d %q %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	rec, err := identity.Verify(raw)
	if err != nil {
		t.Fatalf("own record does not verify: %v", err)
	}
	if rec.NodeID != info.NodeID || len(rec.OverlayAddrs) != 2 || rec.ReadyPlanes[0] != "overlay" {
		t.Fatalf("own record %+v", rec)
	}

	post := func(body string) (int, string) {
		resp, err := http.Post(a.api.URL+"/overlay/connect", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, bad := range []string{`{}`, `{"addr":"/ip4/127.0.0.1/tcp/1"}`, `not json`, `{"addr":"` + a.p2pAddr() + `"}`} {
		if code, body := post(bad); code != http.StatusBadRequest {
			t.Fatalf("connect %s: %d %s, want 400", bad, code, body)
		}
	}
	if code, body := post(`{"addr":"` + b.p2pAddr() + `"}`); code != http.StatusOK {
		t.Fatalf("connect: %d %s", code, body)
	}
	getJSON(t, a.api.URL+"/overlay/info", &info)
	if info.Connected != 1 || info.Peers != 1 {
		t.Fatalf("after connect: %+v", info)
	}
}
