package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/address"
	"github.com/macronode/macronode/pkg/planes/storage"
)

// cluster is one node's gateway with the real storage plane behind it and
// stand-ins for its DHT (providers per address, announces recorded) and
// overlay (bytes each peer serves for an address).
type cluster struct {
	*gw
	store *storage.Server

	mu        sync.Mutex
	providers map[string][]string          // addr -> node ids
	peers     map[string]map[string][]byte // node id -> addr -> bytes it serves
	announced []string
	remote    atomic.Int32 // requests that reached the DHT or the overlay
	dht, ovl  *httptest.Server
}

func newCluster(t testing.TB, remote bool) *cluster {
	t.Helper()
	c := &cluster{providers: map[string][]string{}, peers: map[string]map[string][]byte{}}
	st, err := storage.New(storage.Config{Amnesia: true}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	c.store = st
	sts := httptest.NewServer(st.Handler())
	c.dht = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.remote.Add(1)
		addr := strings.TrimPrefix(r.URL.Path, "/dht/providers/")
		c.mu.Lock()
		defer c.mu.Unlock()
		if r.Method == http.MethodPost {
			c.announced = append(c.announced, addr)
			w.WriteHeader(http.StatusAccepted)
			return
		}
		var ps []map[string]string
		for _, id := range c.providers[addr] {
			ps = append(ps, map[string]string{"peer_id": "dht-" + id, "node_id": id})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"providers": ps})
	}))
	c.ovl = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/overlay/info" {
			_, _ = w.Write([]byte(`{"node_id":"self"}`))
			return
		}
		c.remote.Add(1)
		addr := strings.TrimPrefix(r.URL.Path, "/overlay/blobs/")
		c.mu.Lock()
		b, ok := c.peers[r.URL.Query().Get("from")][addr]
		c.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"not found","code":"not_found"}`))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Header().Set(HeaderSource, "peer "+r.URL.Query().Get("from"))
		_, _ = w.Write(b)
	}))
	t.Cleanup(func() {
		c.dht.Close()
		c.ovl.Close()
		sts.Close()
		_ = st.Close()
	})
	cfg := Config{Backends: map[string]string{"storage": sts.URL}, FetchTimeout: 5 * time.Second, Rate: -1} // no rate limit
	if remote {
		cfg.DHTURL, cfg.OverlayURL = c.dht.URL, c.ovl.URL
	}
	c.gw = newGW(t, cfg)
	return c
}

// serve makes peer a provider of addr that sends b for it.
func (c *cluster) serve(peer, addr string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.peers[peer] == nil {
		c.peers[peer] = map[string][]byte{}
	}
	c.peers[peer][addr] = b
	c.providers[addr] = append(c.providers[addr], peer)
}

// listing is storage's own GET /o (the gateway does not route it).
func (c *cluster) listing(t *testing.T) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	c.store.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/o", nil))
	return rec.Body.Bytes()
}

func blobOf(n int) ([]byte, string) {
	b := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
	return b, address.Format(address.Of(b))
}

func TestMissFetchedThenLocal(t *testing.T) {
	c := newCluster(t, true)
	blob, addr := blobOf(300_000)
	c.serve("A", addr, blob)

	a := c.get("/o/" + addr)
	if a.status != 200 || !bytes.Equal(a.raw, blob) || a.header.Get(HeaderSource) != "peer A" {
		t.Fatalf("GET on a miss: %d, %d bytes, source %q", a.status, len(a.raw), a.header.Get(HeaderSource))
	}
	if a.header.Get("ETag") != `"`+addr+`"` {
		t.Errorf("fetched answer lacks storage's headers: %v", a.header)
	}
	before := c.remote.Load()
	a = c.get("/o/" + addr)
	if a.status != 200 || !bytes.Equal(a.raw, blob) || a.header.Get(HeaderSource) != "local" {
		t.Fatalf("second GET: %d, source %q", a.status, a.header.Get(HeaderSource))
	}
	if c.remote.Load() != before {
		t.Error("second GET went remote")
	}
	testutil.Eventually(t, 5*time.Second, "the fetched blob is provided by this node", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.announced) == 1 && c.announced[0] == addr
	})
}

func TestRangeMissFetched(t *testing.T) {
	c := newCluster(t, true)
	blob, addr := blobOf(100_000)
	c.serve("A", addr, blob)
	a := c.get("/o/"+addr, "Range", "bytes=10-19")
	if a.status != 206 || !bytes.Equal(a.raw, blob[10:20]) || a.header.Get(HeaderSource) != "peer A" {
		t.Fatalf("Range GET on a miss: %d %q source %q", a.status, a.raw, a.header.Get(HeaderSource))
	}
	a = c.get("/o/"+addr, "Range", "bytes=20-29")
	if a.status != 206 || !bytes.Equal(a.raw, blob[20:30]) || a.header.Get(HeaderSource) != "local" {
		t.Fatalf("second Range GET: %d %q source %q", a.status, a.raw, a.header.Get(HeaderSource))
	}
}

func TestMissAnswers(t *testing.T) {
	blob, addr := blobOf(5000)
	lie := append([]byte{'X'}, blob[1:]...)
	tests := []struct {
		name      string
		remote    bool
		setup     func(c *cluster)
		path      string
		hdr       []string
		status    int
		code      string
		source    string
		kept      bool
		noRemote  bool
		wantBytes bool
	}{
		{"only-if-cached", true, func(c *cluster) { c.serve("A", addr, blob) }, "/o/" + addr,
			[]string{"Cache-Control", "max-age=0, Only-If-Cached"}, 504, "not_cached", "", false, true, false},
		{"local=1", true, func(c *cluster) { c.serve("A", addr, blob) }, "/o/" + addr + "?local=1",
			nil, 504, "not_cached", "", false, true, false},
		{"no provider", true, func(*cluster) {}, "/o/" + addr, nil, 404, "not_found", "", false, false, false},
		{"only a liar", true, func(c *cluster) { c.serve("liar", addr, lie) }, "/o/" + addr,
			nil, 502, "fetch_failed", "", false, false, false},
		{"provider lost it", true, func(c *cluster) { c.providers[addr] = []string{"gone"} }, "/o/" + addr,
			nil, 502, "fetch_failed", "", false, false, false},
		{"liar then honest", true, func(c *cluster) { c.serve("liar", addr, lie); c.serve("B", addr, blob) }, "/o/" + addr,
			nil, 200, "", "peer B", true, false, true},
		{"remote off: storage's 404", false, func(c *cluster) { c.serve("A", addr, blob) }, "/o/" + addr,
			nil, 404, "not_found", "", false, true, false},
		{"remote off: only-if-cached is still storage's 404", false, func(c *cluster) { c.serve("A", addr, blob) }, "/o/" + addr,
			[]string{"Cache-Control", "only-if-cached"}, 404, "not_found", "", false, true, false},
		{"bad address never goes remote", true, func(*cluster) {}, "/o/b3:nope", nil, 400, "bad_address", "", false, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, tc.remote)
			tc.setup(c)
			a := c.get(tc.path, tc.hdr...)
			if a.status != tc.status || a.header.Get(HeaderSource) != tc.source {
				t.Fatalf("status %d source %q (%s), want %d %q", a.status, a.header.Get(HeaderSource), a.raw, tc.status, tc.source)
			}
			if tc.code != "" {
				if m := a.json(t); m["code"] != tc.code {
					t.Fatalf("code %v, want %s", m["code"], tc.code)
				}
			}
			if tc.wantBytes != bytes.Equal(a.raw, blob) || bytes.Contains(a.raw, lie[:100]) {
				t.Fatal("wrong bytes served")
			}
			if kept := strings.Contains(string(c.listing(t)), addr); kept != tc.kept {
				t.Fatalf("kept in local storage = %v, want %v", kept, tc.kept)
			}
			if tc.noRemote && c.remote.Load() != 0 {
				t.Fatalf("%d remote requests, want none", c.remote.Load())
			}
		})
	}
}

func TestHeadMiss(t *testing.T) {
	c := newCluster(t, true)
	blob, addr := blobOf(12345)
	c.serve("A", addr, blob)
	a := c.do(c.req(http.MethodHead, "/o/"+addr, nil))
	if a.status != 200 || a.header.Get("Content-Length") != "12345" || a.header.Get(HeaderSource) != "peer A" {
		t.Fatalf("HEAD on a miss: %d %v", a.status, a.header)
	}
	if strings.Contains(string(c.listing(t)), addr) {
		t.Fatal("HEAD fetched the blob")
	}
	_, other := blobOf(99)
	if a := c.do(c.req(http.MethodHead, "/o/"+other, nil)); a.status != 404 || a.header.Get(HeaderSource) != "" {
		t.Fatalf("HEAD of an unknown blob: %d %v", a.status, a.header)
	}
	if a := c.do(c.req(http.MethodHead, "/o/"+addr, nil, "Cache-Control", "only-if-cached")); a.status != 504 {
		t.Fatalf("HEAD only-if-cached: %d", a.status)
	}
	// Stored locally: answered by storage, labelled local.
	if a := c.post("/o", blob); a.status != 201 {
		t.Fatalf("POST: %d", a.status)
	}
	a = c.do(c.req(http.MethodHead, "/o/"+addr, nil))
	if a.status != 200 || a.header.Get(HeaderSource) != "local" || a.header.Get("Content-Length") != "12345" {
		t.Fatalf("HEAD of a local blob: %d %v", a.status, a.header)
	}
}

func TestPostAnnounces(t *testing.T) {
	c := newCluster(t, true)
	blob, addr := blobOf(777)
	for i, want := range []int{201, 200} {
		a := c.post("/o", blob)
		if a.status != want || a.json(t)["address"] != addr {
			t.Fatalf("POST %d: %d %s", i, a.status, a.raw)
		}
	}
	testutil.Eventually(t, 5*time.Second, "both POSTs announced", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.announced) == 2 && c.announced[0] == addr && c.announced[1] == addr
	})
}

func TestLookupDown(t *testing.T) {
	c := newCluster(t, true)
	c.dht.Close()
	_, addr := blobOf(10)
	a := c.get("/o/" + addr)
	if a.status != 502 || a.json(t)["code"] != "lookup_failed" {
		t.Fatalf("GET with the DHT down: %d %s", a.status, a.raw)
	}
}

func (g *gw) post(path string, body []byte) answer {
	g.t.Helper()
	return g.do(g.req(http.MethodPost, path, bytes.NewReader(body)))
}
