package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/httpx"
	"github.com/prometheus/client_golang/prometheus"
)

// newGWTimeouts is newGW on a server with the given read/write timeouts,
// as the child runtime's server has (5 minutes there).
func newGWTimeouts(t *testing.T, cfg Config, read, write time.Duration) *gw {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableCompression: true}
	g := &gw{t: t, srv: srv, reg: reg, client: &http.Client{Transport: tr}}
	ts := httptest.NewUnstartedServer(g.runtimeHandler())
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = read, write
	ts.Start()
	g.ts = ts
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ts.Close()
		_ = srv.Close()
	})
	return g
}

// Slow steady streams: chunks of chunk bytes every gap, lasting well past
// the server's 300ms timeouts and well within the 1s progress deadline.
const (
	chunk     = 1 << 10
	chunks    = 30
	gap       = 50 * time.Millisecond
	shortIO   = 300 * time.Millisecond
	stallIdle = 200 * time.Millisecond
)

func TestSlowSteadyUploadOutlivesServerTimeouts(t *testing.T) {
	got := make(chan int64, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		got <- n
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer be.Close()
	g := newGWTimeouts(t, Config{Backends: map[string]string{"storage": hostOf(be)}, IOIdleTimeout: time.Second}, shortIO, shortIO)

	pr, pw := io.Pipe()
	go func() {
		tick := time.NewTicker(gap) // the pace of a slow link, not a synchronisation
		defer tick.Stop()
		for range chunks {
			<-tick.C
			if _, err := pw.Write(bytes.Repeat([]byte("u"), chunk)); err != nil {
				return
			}
		}
		pw.Close()
	}()
	start := time.Now()
	a := g.do(g.req("POST", "/o", pr))
	if a.status != http.StatusCreated {
		t.Fatalf("slow upload after %s: %d %s", time.Since(start), a.status, a.raw)
	}
	if n := <-got; n != chunks*chunk {
		t.Fatalf("backend got %d bytes, want %d", n, chunks*chunk)
	}
}

func TestSlowSteadyDownloadOutlivesServerTimeouts(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		tick := time.NewTicker(gap)
		defer tick.Stop()
		for range chunks {
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
			if _, err := w.Write(bytes.Repeat([]byte("d"), chunk)); err != nil {
				return
			}
			_ = rc.Flush()
		}
	}))
	defer be.Close()
	g := newGWTimeouts(t, Config{Backends: map[string]string{"storage": hostOf(be)}, IOIdleTimeout: time.Second}, shortIO, shortIO)

	start := time.Now()
	res, err := g.client.Get(g.ts.URL + "/o/blob")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	if err != nil || n != chunks*chunk || res.StatusCode != http.StatusOK {
		t.Fatalf("slow download after %s: status %d, %d bytes of %d, %v", time.Since(start), res.StatusCode, n, chunks*chunk, err)
	}
	// The JSON routes keep the server's timeouts; the next request on the
	// same connection is served normally.
	if a := g.get("/ingress/ping"); a.status != http.StatusOK {
		t.Fatalf("ping after a stream: %d %s", a.status, a.raw)
	}
}

// stallingReader yields first, then blocks until released.
type stallingReader struct {
	first   []byte
	release chan struct{}
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if len(s.first) > 0 {
		n := copy(p, s.first)
		s.first = s.first[n:]
		return n, nil
	}
	<-s.release
	return 0, errors.New("released")
}

func TestStalledUploadIsCut(t *testing.T) {
	type seen struct {
		n   int64
		err error
	}
	got := make(chan seen, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		got <- seen{n, err}
	}))
	defer be.Close()
	// No server timeouts at all: only the progress deadline can cut it.
	g := newGWTimeouts(t, Config{Backends: map[string]string{"storage": hostOf(be)}, IOIdleTimeout: stallIdle}, 0, 0)

	body := &stallingReader{first: bytes.Repeat([]byte("s"), 64<<10), release: make(chan struct{})}
	defer close(body.release)
	answered := make(chan error, 1)
	go func() {
		res, err := g.client.Post(g.ts.URL+"/o", "application/octet-stream", body)
		if err != nil {
			answered <- nil // the connection was closed on it: cut too
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode < 300 {
			err = fmt.Errorf("stalled upload answered %d", res.StatusCode)
		}
		answered <- err
	}()
	select {
	case s := <-got:
		if s.err == nil || s.n >= 64<<10+1 {
			t.Fatalf("backend read %d bytes, err %v: the stalled upload was not cut", s.n, s.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a stalled upload was never cut")
	}
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
}

func TestStalledDownloadIsCut(t *testing.T) {
	cut := make(chan int64, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10)
		var n int64
		defer func() { cut <- n }()
		for n < 4<<30 { // far beyond any socket buffers
			m, err := w.Write(buf)
			n += int64(m)
			if err != nil {
				return
			}
		}
	}))
	defer be.Close()
	g := newGWTimeouts(t, Config{Backends: map[string]string{"storage": hostOf(be)}, IOIdleTimeout: stallIdle}, 0, 0)

	res, err := g.client.Get(g.ts.URL + "/o/big")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if _, err := io.CopyN(io.Discard, res.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	// Stop reading: the gateway's writes block, pass the deadline and the
	// stream is aborted, which the backend sees as a failed write.
	var wrote int64
	select {
	case wrote = <-cut:
	case <-time.After(60 * time.Second):
		t.Fatal("a stalled download was never cut")
	}
	n, err := io.Copy(io.Discard, res.Body)
	if err == nil {
		t.Fatalf("stalled download ended cleanly after %d more bytes (backend wrote %d)", n, wrote)
	}
}

func TestRequestIDEchoedOnce(t *testing.T) {
	// A real plane echoes the id through httpx.RequestID, as the gateway does.
	be := httptest.NewServer(httpx.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.JSON(w, http.StatusOK, map[string]string{"id": httpx.RequestIDFrom(r.Context())})
	})))
	defer be.Close()
	g := newGW(t, Config{Backends: map[string]string{"storage": hostOf(be), "index": hostOf(be)}})
	for _, hdr := range [][]string{{"X-Request-Id", "abc"}, nil} {
		for _, path := range []string{"/o/x", "/names/x"} {
			a := g.get(path, hdr...)
			ids := a.header.Values("X-Request-Id")
			if len(ids) != 1 || ids[0] == "" || !strings.Contains(string(a.raw), ids[0]) {
				t.Errorf("GET %s (sent %v): X-Request-Id %q, body %s; want one id, the backend's", path, hdr, ids, a.raw)
			}
			if len(hdr) > 0 && ids[0] != hdr[1] {
				t.Errorf("GET %s: id %q, want the client's %q", path, ids[0], hdr[1])
			}
		}
	}
}
