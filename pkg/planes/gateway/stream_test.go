package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
)

func flagSet() *flag.FlagSet { return flag.NewFlagSet("svc-gateway", flag.ContinueOnError) }

// TestStreamingUpload proves a 64 MiB upload is streamed: the backend sees
// the first MiB while the client still holds the rest back, and the whole
// body arrives intact.
func TestStreamingUpload(t *testing.T) {
	const total, first = 64 << 20, 1 << 20
	gotFirst := make(chan struct{})
	type result struct {
		n   int64
		sum [32]byte
	}
	results := make(chan result, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.CopyN(h, r.Body, first)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		close(gotFirst)
		m, _ := io.Copy(h, r.Body)
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		results <- result{n + m, sum}
		w.WriteHeader(http.StatusCreated)
	}))
	defer be.Close()
	g := newGW(t, Config{Backends: map[string]string{"storage": hostOf(be)}})

	data := make([]byte, total)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(data)
	want := sha256.Sum256(data)

	pr, pw := io.Pipe()
	writeErr := make(chan error, 1)
	go func() {
		if _, err := pw.Write(data[:first]); err != nil {
			writeErr <- err
			return
		}
		select {
		case <-gotFirst:
		case <-time.After(30 * time.Second):
			pw.CloseWithError(fmt.Errorf("backend never saw the first MiB: the gateway buffers uploads"))
			writeErr <- nil
			return
		}
		_, err := pw.Write(data[first:])
		pw.CloseWithError(err)
		writeErr <- err
	}()
	req := g.req("POST", "/o", pr)
	req.ContentLength = total
	a := g.do(req)
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if a.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", a.status, a.raw)
	}
	res := <-results
	if res.n != total || res.sum != want {
		t.Fatalf("backend got %d bytes (sum match %v), want %d", res.n, res.sum == want, total)
	}
}

// TestStreamingDownload proves responses are streamed and flushed: the
// client reads the first MiB while the backend still holds the rest back.
func TestStreamingDownload(t *testing.T) {
	const total, first = 16 << 20, 1 << 20
	data := make([]byte, total)
	rng := rand.NewChaCha8([32]byte{2})
	_, _ = rng.Read(data)
	clientGotFirst := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(data[:first])
		http.NewResponseController(w).Flush()
		select {
		case <-clientGotFirst:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(data[first:])
	}))
	defer be.Close()
	g := newGW(t, Config{Backends: map[string]string{"storage": hostOf(be)}, BackendTimeout: 200 * time.Millisecond})

	res, err := g.client.Get(g.ts.URL + "/o/blob")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, total)
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(res.Body, buf[:first])
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		close(clientGotFirst)
		t.Fatal("first MiB never arrived: the gateway buffers responses")
	}
	close(clientGotFirst)
	// The rest streams past the (short) backend timeout without being cut.
	if _, err := io.ReadFull(res.Body, buf[first:]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, data) {
		t.Fatal("downloaded bytes differ")
	}
}

func TestClientGoneIsNotABackendError(t *testing.T) {
	arrived := make(chan struct{}, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	defer be.Close()
	g := newGW(t, Config{Backends: map[string]string{"storage": hostOf(be)}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-arrived
		cancel()
	}()
	if _, err := g.client.Do(g.req("GET", "/o/x", nil).WithContext(ctx)); err == nil {
		t.Fatal("cancelled request succeeded")
	}
	// The gateway's handler notices on its own; poll for its metric.
	testutil.Eventually(t, 10*time.Second, "the gateway counts the request as 499", func() bool {
		return g.answered(statusClientClosed) == 1
	})
	if got := counterValue(t, g.reg, "macronode_gateway_backend_errors_total", map[string]string{"backend": "storage"}); got != 0 {
		t.Fatalf("client cancel counted as backend error: %v", got)
	}
}

func BenchmarkProxy1MiB(b *testing.B) {
	const size = 1 << 20
	payload := bytes.Repeat([]byte("macronode"), size/9+1)[:size]
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusCreated)
			return
		}
		_, _ = w.Write(payload)
	}))
	defer be.Close()
	g := newGW(b, Config{Backends: map[string]string{"storage": hostOf(be)}, Rate: -1})
	url := g.ts.URL + "/o/blob"
	b.Run("download", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			res, err := g.client.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if err != nil || n != size || res.StatusCode != 200 {
				b.Fatalf("got %d bytes, status %d, err %v", n, res.StatusCode, err)
			}
		}
	})
	b.Run("upload", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			res, err := g.client.Post(g.ts.URL+"/o", "application/octet-stream", bytes.NewReader(payload))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 201 {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
	})
}
