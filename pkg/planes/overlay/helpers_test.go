package overlay

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zeebo/blake3"
	"go.uber.org/goleak"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/planes/overlay/oap"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Process-wide workers that libp2p's dependencies start once.
		goleak.IgnoreTopFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/transport/quicreuse.(*reuse).gc"),
	)
}

var eventually = testutil.Eventually

// fakeStorage is a test double of the storage plane's GET/HEAD /o/{addr}
// (with Range); broken blobs are cut after half their bytes, as storage
// does when verification fails mid-stream.
type fakeStorage struct {
	mu     sync.Mutex
	blobs  map[string][]byte
	broken map[string]bool
	ts     *httptest.Server
}

func newFakeStorage(t *testing.T) *fakeStorage {
	fs := &fakeStorage{blobs: map[string][]byte{}, broken: map[string]bool{}}
	fs.ts = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.ts.Close)
	return fs
}

func (fs *fakeStorage) put(b []byte, broken bool) string {
	sum := blake3.Sum256(b)
	addr := oap.AddressPrefix + fmt.Sprintf("%x", sum[:])
	fs.mu.Lock()
	fs.blobs[addr], fs.broken[addr] = b, broken
	fs.mu.Unlock()
	return addr
}

func (fs *fakeStorage) serve(w http.ResponseWriter, r *http.Request) {
	addr := strings.TrimPrefix(r.URL.Path, "/o/")
	fs.mu.Lock()
	b, ok := fs.blobs[addr]
	broken := fs.broken[addr]
	fs.mu.Unlock()
	if !ok {
		http.Error(w, `{"error":"no such blob","code":"not_found"}`, http.StatusNotFound)
		return
	}
	status := http.StatusOK
	if rh := r.Header.Get("Range"); rh != "" {
		off, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rh, "bytes="), "-"))
		if err != nil || off >= len(b) {
			http.Error(w, "bad range", http.StatusRequestedRangeNotSatisfiable)
			return
		}
		b, status = b[off:], http.StatusPartialContent
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if broken {
		_, _ = w.Write(b[:len(b)/2])
		panic(http.ErrAbortHandler)
	}
	_, _ = w.Write(b)
}

// node is an overlay under test with its API served by httptest.
type node struct {
	srv     *Server
	reg     *prometheus.Registry
	api     *httptest.Server
	storage *fakeStorage
}

func testConfig(storageURL string) Config {
	return Config{
		Amnesia:           true,
		P2PListen:         []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
		StorageURL:        storageURL,
		Version:           "test",
		FetchTimeout:      5 * time.Second,
		IOIdleTimeout:     5 * time.Second,
		RepublishInterval: 2 * time.Second,
		PollInterval:      200 * time.Millisecond,
		DialTick:          100 * time.Millisecond,
		PingInterval:      300 * time.Millisecond,
	}
}

func newNode(t *testing.T, mod func(*Config)) *node {
	t.Helper()
	st := newFakeStorage(t)
	cfg := testConfig(st.ts.URL)
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, hclog.NewNullLogger(), reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	api := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		api.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &node{srv: srv, reg: reg, api: api, storage: st}
}

// p2pAddr is n's first advertised address with /p2p.
func (n *node) p2pAddr() string {
	return n.srv.advertised()[0] + "/p2p/" + n.srv.NodeID().String()
}

func (n *node) info() peer.AddrInfo {
	return peer.AddrInfo{ID: n.srv.host.ID(), Addrs: n.srv.host.Addrs()}
}

// connect makes a connect b directly through the libp2p host.
func connect(t *testing.T, a, b *node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.srv.host.Connect(ctx, b.info()); err != nil {
		t.Fatalf("connect: %v", err)
	}
}

func (n *node) peersView(t *testing.T) []PeerInfo {
	t.Helper()
	var body struct {
		Peers []PeerInfo `json:"peers"`
	}
	getJSON(t, n.api.URL+"/overlay/peers", &body)
	return body.Peers
}

func getJSON(t *testing.T, url string, into any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatal(err)
	}
}

// rawStream opens an OAP stream from a to b without any handshake.
func rawStream(t *testing.T, a, b *node) network.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := a.srv.host.NewStream(ctx, b.srv.NodeID(), oap.ProtocolID)
	if err != nil {
		t.Fatalf("NewStream: %v", err)
	}
	_ = st.SetDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { _ = st.Reset() })
	return st
}

func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// connected reports whether s's host has a connection to id.
func (s *Server) connected(id peer.ID) bool {
	return s.host.Network().Connectedness(id) == network.Connected
}
