package storage

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/address"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// plane is a Server under test with its registry and a real HTTP server.
type plane struct {
	srv *Server
	reg *prometheus.Registry
	ts  *httptest.Server
	dir string
}

// newServer builds a Server (not yet served) with a fresh registry.
func newServer(t testing.TB, cfg Config) (*Server, *prometheus.Registry) {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(t.TempDir(), "storage")
	}
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, hclog.NewNullLogger(), reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, reg
}

// serve starts a real HTTP server for srv.
func serve(t testing.TB, srv *Server, reg *prometheus.Registry) *plane {
	t.Helper()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &plane{srv: srv, reg: reg, ts: ts, dir: srv.cfg.DataDir}
}

func newPlane(t testing.TB, cfg Config) *plane {
	t.Helper()
	srv, reg := newServer(t, cfg)
	return serve(t, srv, reg)
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

type putResult struct {
	status int
	body   putResponse
	err    errBody
}

type errBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func (p *plane) put(t testing.TB, data []byte) putResult {
	t.Helper()
	return p.upload(t, http.MethodPost, "/o", bytes.NewReader(data))
}

// upload sends body with method to path and decodes the answer: the put
// result on a 2xx, else the JSON error.
func (p *plane) upload(t testing.TB, method, path string, body io.Reader) putResult {
	t.Helper()
	req, err := http.NewRequest(method, p.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s response: %v", method, err)
	}
	res := putResult{status: resp.StatusCode}
	if resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, &res.body); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	} else {
		mustJSONError(t, resp, raw, &res.err)
	}
	return res
}

func mustJSONError(t testing.TB, resp *http.Response, raw []byte, into *errBody) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("status %d: Content-Type %q, want application/json (body %q)", resp.StatusCode, ct, raw)
	}
	if err := json.Unmarshal(raw, into); err != nil || into.Code == "" || into.Error == "" {
		t.Fatalf("status %d: body %q is not a JSON error (%v)", resp.StatusCode, raw, err)
	}
}

func (p *plane) do(t testing.TB, method, path string, hdr map[string]string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, p.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, rerr := io.ReadAll(resp.Body)
	return resp, raw, rerr
}

// files lists the regular files under dir (recursively), relative to it.
func files(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
var eventually = testutil.Eventually

func objectPath(dir, addr string) string {
	h := strings.TrimPrefix(addr, address.Prefix)
	return filepath.Join(dir, "objects", h[0:2], h)
}
