package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/address"
)

// The server-side whole-request timeouts in these tests stand in for the
// child runtime's 5-minute ReadTimeout/WriteTimeout.
const shortServerTimeout = 300 * time.Millisecond

// sockBufBytes caps the socket buffers of the connections in these tests,
// so a peer that stops or slows reading holds the writer back after some
// tens of kilobytes instead of the megabytes loopback autotuning allows
// (much smaller buffers make loopback TCP crawl on delayed ACKs).
const sockBufBytes = 64 << 10

// smallBufConn caps a TCP connection's socket buffers at sockBufBytes.
func smallBufConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(sockBufBytes)
		_ = tc.SetWriteBuffer(sockBufBytes)
	}
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		smallBufConn(c)
	}
	return c, err
}

// timedServer serves h over real HTTP with the given whole-request
// timeouts (0 = none) and small socket buffers. done, if not nil, receives
// once per request when its handler has returned.
func timedServer(t *testing.T, h http.Handler, read, write time.Duration, done chan<- struct{}) *httptest.Server {
	t.Helper()
	if done != nil {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() { done <- struct{}{} }()
			inner.ServeHTTP(w, r)
		})
	}
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = read, write
	ts.Listener = smallBufListener{ts.Listener}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// smallBufClient is an HTTP client whose connections have small buffers.
func smallBufClient(t *testing.T) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			smallBufConn(c)
		}
		return c, err
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// pacedReader hands out data a chunk per tick: a slow but steady client.
type pacedReader struct {
	data  []byte
	chunk int
	tick  *time.Ticker
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		p.tick.Stop()
		return 0, io.EOF
	}
	<-p.tick.C
	n := copy(b[:min(len(b), p.chunk)], p.data)
	p.data = p.data[n:]
	return n, nil
}

func TestSlowUploadOutlastsServerTimeouts(t *testing.T) {
	srv, _ := newServer(t, Config{IOIdleTimeout: 5 * time.Second})
	ts := timedServer(t, srv.Handler(), shortServerTimeout, shortServerTimeout, nil)
	data := randBytes(t, 30*8192)
	body := &pacedReader{data: data, chunk: 8192, tick: time.NewTicker(50 * time.Millisecond)}
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/o", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(data))
	start := time.Now()
	resp, err := smallBufClient(t).Do(req)
	if err != nil {
		t.Fatalf("slow upload cut: %v", err)
	}
	defer resp.Body.Close()
	var got putResponse
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("slow upload: status %d, decode %v", resp.StatusCode, err)
	}
	if got.Address != address.Format(blake3.Sum256(data)) || got.Size != int64(len(data)) {
		t.Fatalf("slow upload stored %+v", got)
	}
	if d := time.Since(start); d < 2*shortServerTimeout {
		t.Fatalf("upload took %v: too fast to show it outlasts the %v server timeouts", d, shortServerTimeout)
	}
}

func TestSlowDownloadOutlastsServerTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name         string
		verifyBefore int64
	}{
		{"verified before sending", VerifyBeforeSendBytes},
		{"verified while streaming", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, reg := newServer(t, Config{ChunkBytes: 4096, IOIdleTimeout: 5 * time.Second})
			srv.verifyBefore = tc.verifyBefore
			data := randBytes(t, 1<<20)
			addr := serve(t, srv, reg).put(t, data).body.Address
			ts := timedServer(t, srv.Handler(), shortServerTimeout, shortServerTimeout, nil)

			start := time.Now()
			resp, err := smallBufClient(t).Get(ts.URL + "/o/" + addr)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			var got bytes.Buffer
			for {
				<-tick.C
				_, err := io.CopyN(&got, resp.Body, 32<<10)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("slow download cut after %d bytes and %v: %v", got.Len(), time.Since(start), err)
				}
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("got %d bytes that differ from the %d stored", got.Len(), len(data))
			}
			if d := time.Since(start); d < 2*shortServerTimeout {
				t.Fatalf("download took %v: too fast to show it outlasts the %v server timeouts", d, shortServerTimeout)
			}
		})
	}
}

func TestStalledDownloadIsCut(t *testing.T) {
	srv, reg := newServer(t, Config{IOIdleTimeout: 200 * time.Millisecond})
	data := randBytes(t, 4<<20)
	addr := serve(t, srv, reg).put(t, data).body.Address
	done := make(chan struct{}, 1)
	ts := timedServer(t, srv.Handler(), 0, 0, done) // no server timeouts: only the idle one

	resp, err := smallBufClient(t).Get(ts.URL + "/o/" + addr)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	// Read nothing: the server blocks on a full socket until the idle
	// timeout cuts it.
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a stalled download was not cut")
	}
	got, err := io.ReadAll(resp.Body)
	if err == nil || len(got) >= len(data) {
		t.Fatalf("after the cut: %d bytes, err %v; want a transfer broken short", len(got), err)
	}
}

func TestStalledUploadIsCut(t *testing.T) {
	srv, reg := newServer(t, Config{IOIdleTimeout: 200 * time.Millisecond})
	ts := timedServer(t, srv.Handler(), 0, 0, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /o HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 1<<20)
	if err == nil {
		_, err = conn.Write(randBytes(t, 64<<10))
	}
	if err != nil {
		t.Fatal(err)
	}
	// Send nothing more: the read deadline must end the upload.
	eventually(t, 10*time.Second, "stalled upload cut", func() bool {
		return testutil.Metric(t, reg, "macronode_storage_put_failures_total", "reason", "client") == 1
	})
	if got := files(t, filepath.Join(srv.cfg.DataDir, "tmp")); len(got) != 0 {
		t.Fatalf("temp files left: %v", got)
	}
}
