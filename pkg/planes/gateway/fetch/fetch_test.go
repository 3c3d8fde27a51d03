package fetch

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/zeebo/blake3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func addrOf(b []byte) string {
	sum := blake3.Sum256(b)
	return "b3:" + hex.EncodeToString(sum[:])
}

// planes are test doubles of the three loopback plane APIs the fetcher
// talks to: a DHT answering providers, an overlay serving per-peer bytes,
// and a storage that keeps a PUT body only if it hashes to the address.
type planes struct {
	mu                    sync.Mutex
	providers             map[string][]provider        // addr -> providers
	peerBytes             map[string]map[string][]byte // peer -> addr -> bytes it serves
	stored                map[string][]byte
	announced             []string
	overlayGets           atomic.Int32
	release               chan struct{}            // when set, overlay GETs wait on it
	hold                  map[string]chan struct{} // peer -> its body waits on this after the headers
	dht, overlay, storage *httptest.Server
}

func newPlanes(t *testing.T) *planes {
	p := &planes{providers: map[string][]provider{}, peerBytes: map[string]map[string][]byte{}, stored: map[string][]byte{}}
	p.dht = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := strings.TrimPrefix(r.URL.Path, "/dht/providers/")
		p.mu.Lock()
		defer p.mu.Unlock()
		switch r.Method {
		case http.MethodGet:
			_ = json.NewEncoder(w).Encode(map[string]any{"providers": p.providers[addr]})
		case http.MethodPost:
			p.announced = append(p.announced, addr)
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	p.overlay = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/overlay/info" {
			_, _ = w.Write([]byte(`{"node_id":"self"}`))
			return
		}
		p.overlayGets.Add(1)
		if p.release != nil {
			<-p.release
		}
		addr := strings.TrimPrefix(r.URL.Path, "/overlay/blobs/")
		from := r.URL.Query().Get("from")
		p.mu.Lock()
		b, ok := p.peerBytes[from][addr]
		p.mu.Unlock()
		if !ok {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", itoa(len(b)))
		if hold := p.hold[from]; hold != nil && r.Method == http.MethodGet {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-hold
		}
		if r.Method == http.MethodGet {
			_, _ = w.Write(b)
		}
	}))
	p.storage = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := strings.TrimPrefix(r.URL.Path, "/o/")
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if addrOf(b) != addr {
			http.Error(w, `{"error":"mismatch"}`, http.StatusUnprocessableEntity)
			return
		}
		p.mu.Lock()
		p.stored[addr] = b
		p.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(func() {
		p.dht.Close()
		p.overlay.Close()
		p.storage.Close()
	})
	return p
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func (p *planes) serve(peer, addr string, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.peerBytes[peer] == nil {
		p.peerBytes[peer] = map[string][]byte{}
	}
	p.peerBytes[peer][addr] = b
	p.providers[addr] = append(p.providers[addr], provider{PeerID: "dht-" + peer, NodeID: peer})
}

func (p *planes) fetcher(t *testing.T) *Fetcher {
	f, err := New(Config{DHT: p.dht.URL, Overlay: p.overlay.URL, Storage: p.storage.URL, Timeout: 5 * time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func TestEnsureFetchesVerifiesAndAnnounces(t *testing.T) {
	blob := bytes.Repeat([]byte("macronode "), 100_000)
	addr := addrOf(blob)
	tests := []struct {
		name    string
		setup   func(p *planes)
		wantID  string
		wantErr error
		lies    int
	}{
		{"honest provider", func(p *planes) { p.serve("A", addr, blob) }, "A", nil, 0},
		{"liar then honest", func(p *planes) {
			p.serve("liar", addr, []byte("not the blob"))
			p.serve("B", addr, blob)
		}, "B", nil, 1},
		{"only a liar", func(p *planes) { p.serve("liar", addr, append([]byte{1}, blob[1:]...)) }, "", ErrNoDelivery, 1},
		{"no provider", func(p *planes) {}, "", ErrNoProvider, 0},
		{"only ourselves", func(p *planes) { p.serve("self", addr, blob) }, "", ErrNoProvider, 0},
		{"provider that lost it", func(p *planes) {
			p.providers[addr] = []provider{{PeerID: "x", NodeID: "gone"}}
		}, "", ErrNoDelivery, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlanes(t)
			tc.setup(p)
			f := p.fetcher(t)
			id, err := f.Ensure(context.Background(), addr)
			if !errors.Is(err, tc.wantErr) || id != tc.wantID {
				t.Fatalf("Ensure = %q, %v; want %q, %v", id, err, tc.wantID, tc.wantErr)
			}
			p.mu.Lock()
			got, kept := p.stored[addr]
			p.mu.Unlock()
			if kept != (tc.wantErr == nil) || kept && !bytes.Equal(got, blob) {
				t.Fatalf("stored: kept=%v, %d bytes", kept, len(got))
			}
			if v := promtest.ToFloat64(f.m.lies); int(v) != tc.lies {
				t.Errorf("mismatches counted %v, want %d", v, tc.lies)
			}
			if tc.wantErr == nil {
				testutil.Eventually(t, 5*time.Second, "the fetched address is announced", func() bool {
					p.mu.Lock()
					defer p.mu.Unlock()
					return len(p.announced) == 1 && p.announced[0] == addr
				})
			}
		})
	}
}

func TestConcurrentMissesShareOneFetch(t *testing.T) {
	p := newPlanes(t)
	blob := []byte("shared fetch")
	addr := addrOf(blob)
	p.serve("A", addr, blob)
	p.release = make(chan struct{})
	f := p.fetcher(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.Ensure(context.Background(), addr)
			errs <- err
		}()
	}
	testutil.Eventually(t, 5*time.Second, "one overlay GET in flight", func() bool { return p.overlayGets.Load() == 1 })
	close(p.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := p.overlayGets.Load(); n != 1 {
		t.Fatalf("overlay GETs = %d, want 1 for 8 concurrent misses", n)
	}
}

func TestEnsureCallerContext(t *testing.T) {
	p := newPlanes(t)
	blob := []byte("slow")
	addr := addrOf(blob)
	p.serve("A", addr, blob)
	p.release = make(chan struct{})
	f := p.fetcher(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := f.Ensure(ctx, addr)
		errc <- err
	}()
	testutil.Eventually(t, 5*time.Second, "fetch started", func() bool { return p.overlayGets.Load() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Ensure with a cancelled caller = %v", err)
	}
	close(p.release)
	// The shared fetch still completes for later callers.
	if id, err := f.Ensure(context.Background(), addr); err != nil || id != "A" {
		t.Fatalf("second Ensure = %q, %v", id, err)
	}
}

func TestStat(t *testing.T) {
	p := newPlanes(t)
	blob := []byte("stat me")
	addr := addrOf(blob)
	p.providers[addr] = []provider{{NodeID: "gone"}}
	p.serve("A", addr, blob)
	f := p.fetcher(t)
	n, id, err := f.Stat(context.Background(), addr)
	if err != nil || n != int64(len(blob)) || id != "A" {
		t.Fatalf("Stat = %d, %q, %v", n, id, err)
	}
	if p.stored[addr] != nil {
		t.Fatal("Stat stored the blob")
	}
	if _, _, err := f.Stat(context.Background(), addrOf([]byte("other"))); !errors.Is(err, ErrNoProvider) {
		t.Fatalf("Stat of an unknown address = %v", err)
	}
}

func TestLookupFailure(t *testing.T) {
	p := newPlanes(t)
	f, err := New(Config{DHT: "http://127.0.0.1:1", Overlay: p.overlay.URL, Storage: p.storage.URL}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Ensure(context.Background(), addrOf([]byte("x"))); !errors.Is(err, ErrLookup) {
		t.Fatalf("Ensure with the DHT down = %v", err)
	}
}

func TestAnnounceNeverBlocks(t *testing.T) {
	block := make(chan struct{})
	dht := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer dht.Close()
	defer close(block)
	f, err := New(Config{DHT: dht.URL, Overlay: dht.URL, Storage: dht.URL, QueueSize: 2}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	done := make(chan struct{})
	go func() {
		for i := range 50 {
			f.Announce(addrOf([]byte{byte(i)}))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Announce blocked with the DHT stalled")
	}
	if v := promtest.ToFloat64(f.m.announces.WithLabelValues("dropped")); v < 47 {
		t.Fatalf("dropped announces = %v, want >= 47 of 50 with a queue of 2", v)
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:9200", "ftp://x", "http://"} {
		if _, err := New(Config{DHT: u, Overlay: "http://a", Storage: "http://b"}, nil, nil); err == nil {
			t.Errorf("New with dht url %q succeeded", u)
		}
	}
}

// A liar whose slow transfer used up the whole fetch timeout before storage
// refused it still leaves the next provider its chance.
func TestNextProviderAfterASlowLiar(t *testing.T) {
	p := newPlanes(t)
	blob := []byte("worth the wait")
	addr := addrOf(blob)
	p.serve("liar", addr, []byte("wrong bytes, slowly"))
	p.serve("B", addr, blob)
	const timeout = 300 * time.Millisecond
	hold := make(chan struct{})
	p.hold = map[string]chan struct{}{"liar": hold}
	slow := time.AfterFunc(timeout+200*time.Millisecond, func() { close(hold) }) // the liar's body is late
	defer slow.Stop()
	f, err := New(Config{DHT: p.dht.URL, Overlay: p.overlay.URL, Storage: p.storage.URL, Timeout: timeout}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if id, err := f.Ensure(context.Background(), addr); err != nil || id != "B" {
		t.Fatalf("Ensure = %q, %v; want the honest provider B", id, err)
	}
}
