package index

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type harness struct {
	t   *testing.T
	srv *Server
	ts  *httptest.Server
	reg *prometheus.Registry
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	h := &harness{t: t, srv: srv, ts: ts, reg: reg}
	t.Cleanup(func() {
		ts.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return h
}

// resp is a decoded answer.
type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (h *harness) do(method, path, body string, hdr ...string) resp {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.ts.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := h.ts.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	r := resp{status: res.StatusCode, header: res.Header, raw: string(b)}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			h.t.Fatalf("%s %s: non-JSON body %q", method, path, b)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			h.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
		}
	}
	return r
}

func putBodyFor(addr string) string { return `{"address":"` + addr + `"}` }

func (r resp) version() float64 { v, _ := r.body["version"].(float64); return v }

func TestCRUD(t *testing.T) {
	h := newHarness(t, Config{DataDir: t.TempDir()})
	r := h.do("PUT", "/names/site/index.html", putBodyFor(addrN(1)))
	if r.status != 201 || r.version() != 1 || r.body["name"] != "site/index.html" || r.body["address"] != addrN(1) {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if r.header.Get("ETag") != `"1"` || r.header.Get("Location") != "/names/site/index.html" {
		t.Fatalf("create headers: %v", r.header)
	}
	r = h.do("PUT", "/names/site/index.html", putBodyFor(addrN(2)))
	if r.status != 200 || r.version() != 2 || r.header.Get("ETag") != `"2"` {
		t.Fatalf("update: %d %s %v", r.status, r.raw, r.header)
	}
	r = h.do("GET", "/names/site/index.html", "")
	if r.status != 200 || r.version() != 2 || r.body["address"] != addrN(2) || r.body["updated_at"] == nil || r.header.Get("ETag") != `"2"` {
		t.Fatalf("get: %d %s", r.status, r.raw)
	}
	if r := h.do("GET", "/names/site/index.html", "", "If-None-Match", `"2"`); r.status != 304 {
		t.Fatalf("conditional get: %d %s", r.status, r.raw)
	}
	if r := h.do("DELETE", "/names/site/index.html", ""); r.status != 204 || r.raw != "" {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	for _, m := range []string{"GET", "DELETE"} {
		if r := h.do(m, "/names/site/index.html", ""); r.status != 404 || r.body["code"] != "not_found" {
			t.Fatalf("%s after delete: %d %s", m, r.status, r.raw)
		}
	}
	if r := h.do("POST", "/names/x", putBodyFor(addrN(1))); r.status != 405 || r.body["code"] == nil {
		t.Fatalf("POST: %d %s", r.status, r.raw)
	}
	if got := metricValue(t, h.reg, "macronode_index_puts_total"); got != 2 {
		t.Errorf("puts_total = %v, want 2", got)
	}
	if got := metricValue(t, h.reg, "macronode_index_deletes_total"); got != 1 {
		t.Errorf("deletes_total = %v, want 1", got)
	}
	if got := metricValue(t, h.reg, "macronode_index_gets_total"); got != 3 {
		t.Errorf("gets_total = %v, want 3", got)
	}
	if got := metricValue(t, h.reg, "macronode_index_names"); got != 0 {
		t.Errorf("names = %v, want 0", got)
	}
}

func TestBadInput(t *testing.T) {
	h := newHarness(t, Config{Amnesia: true, MaxBodyBytes: 256})
	tests := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"PUT", "/names/Bad", putBodyFor(addrN(1)), 400, "bad_name"},
		{"PUT", "/names/a%2F%2Fb", putBodyFor(addrN(1)), 400, "bad_name"},
		{"PUT", "/names/a%2F..%2Fb", putBodyFor(addrN(1)), 400, "bad_name"},
		{"PUT", "/names/a/", putBodyFor(addrN(1)), 400, "bad_name"},
		{"PUT", "/names/", putBodyFor(addrN(1)), 400, "bad_name"},
		{"PUT", "/names/" + strings.Repeat("a", 256), putBodyFor(addrN(1)), 400, "bad_name"},
		{"GET", "/names/a%20b", "", 400, "bad_name"},
		{"DELETE", "/names/A", "", 400, "bad_name"},
		{"PUT", "/names/a", `{"address":"b3:XYZ"}`, 400, "bad_address"},
		{"PUT", "/names/a", `{"address":"` + addrN(1) + `","extra":1}`, 400, "bad_json"},
		{"PUT", "/names/a", `not json`, 400, "bad_json"},
		{"PUT", "/names/a", ``, 400, "bad_json"},
		{"PUT", "/names/a", putBodyFor(addrN(1)) + strings.Repeat(" ", 300), 413, "too_large"},
		{"GET", "/names?limit=0", "", 400, "bad_limit"},
		{"GET", "/names?limit=1001", "", 400, "bad_limit"},
		{"GET", "/names?limit=x", "", 400, "bad_limit"},
		{"GET", "/names?prefix=A", "", 400, "bad_prefix"},
		{"GET", "/names?after=%00", "", 400, "bad_cursor"},
		{"GET", "/nothing", "", 404, "not_found"},
	}
	for _, tc := range tests {
		r := h.do(tc.method, tc.path, tc.body)
		if r.status != tc.status || r.body["code"] != tc.code || r.body["error"] == "" {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, r.status, r.raw, tc.status, tc.code)
		}
	}
	if h.srv.store.count() != 0 {
		t.Fatalf("bad input bound %d names", h.srv.store.count())
	}
}

func TestCompareAndSet(t *testing.T) {
	h := newHarness(t, Config{DataDir: t.TempDir()})
	body := putBodyFor(addrN(7))
	steps := []struct {
		desc, method, path string
		hdr                []string
		status             int
		version            float64
	}{
		{"if-match on absent name", "PUT", "/names/c", []string{"If-Match", `"1"`}, 412, 0},
		{"if-match star on absent name", "PUT", "/names/c", []string{"If-Match", `*`}, 412, 0},
		{"create only", "PUT", "/names/c", []string{"If-None-Match", "*"}, 201, 1},
		{"create only, exists", "PUT", "/names/c", []string{"If-None-Match", "*"}, 412, 0},
		{"cas quoted", "PUT", "/names/c", []string{"If-Match", `"1"`}, 200, 2},
		{"cas stale", "PUT", "/names/c", []string{"If-Match", `"1"`}, 412, 0},
		{"cas bare", "PUT", "/names/c", []string{"If-Match", `2`}, 200, 3},
		{"cas garbage", "PUT", "/names/c", []string{"If-Match", `x`}, 412, 0},
		{"cas weak", "PUT", "/names/c", []string{"If-Match", `W/"3"`}, 412, 0},
		{"delete stale", "DELETE", "/names/c", []string{"If-Match", `"2"`}, 412, 0},
		{"delete cas", "DELETE", "/names/c", []string{"If-Match", `"3"`}, 204, 0},
		{"delete absent with if-match", "DELETE", "/names/c", []string{"If-Match", `"3"`}, 404, 0},
		{"old etag after re-create", "PUT", "/names/c", []string{"If-Match", `"3"`}, 412, 0},
		{"re-create continues versions", "PUT", "/names/c", nil, 201, 4},
	}
	conflicts := 0
	for _, s := range steps {
		b := body
		if s.method == "DELETE" {
			b = ""
		}
		r := h.do(s.method, s.path, b, s.hdr...)
		if r.status != s.status {
			t.Fatalf("%s: %d %s, want %d", s.desc, r.status, r.raw, s.status)
		}
		if s.status == 412 {
			conflicts++
			if r.body["code"] != "precondition_failed" {
				t.Fatalf("%s: body %s", s.desc, r.raw)
			}
		}
		if s.version != 0 && (r.version() != s.version || r.header.Get("ETag") != fmt.Sprintf(`"%v"`, s.version)) {
			t.Fatalf("%s: version %v etag %q, want %v", s.desc, r.version(), r.header.Get("ETag"), s.version)
		}
	}
	if got := metricValue(t, h.reg, "macronode_index_cas_conflicts_total"); got != float64(conflicts) {
		t.Errorf("cas_conflicts_total = %v, want %d", got, conflicts)
	}
}

func TestConcurrentCAS(t *testing.T) {
	// Many writers race on one version: exactly one wins.
	h := newHarness(t, Config{DataDir: t.TempDir()})
	if r := h.do("PUT", "/names/race", putBodyFor(addrN(0))); r.status != 201 {
		t.Fatalf("create: %d", r.status)
	}
	const n = 16
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i] = h.do("PUT", "/names/race", putBodyFor(addrN(i)), "If-Match", `"1"`).status
		})
	}
	wg.Wait()
	won := 0
	for _, s := range statuses {
		switch s {
		case 200:
			won++
		case 412:
		default:
			t.Fatalf("status %d", s)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won the same If-Match, want 1 (%v)", won, statuses)
	}
}

func TestPagination(t *testing.T) {
	h := newHarness(t, Config{Amnesia: true})
	var want []string
	for i := range 25 {
		n := fmt.Sprintf("p/%02d", i)
		want = append(want, n)
		h.do("PUT", "/names/"+n, putBodyFor(addrN(i)))
	}
	h.do("PUT", "/names/q", putBodyFor(addrN(1)))
	var got []string
	after, pages := "", 0
	for {
		r := h.do("GET", "/names?prefix=p/&limit=10&after="+after, "")
		if r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.raw)
		}
		for _, it := range r.body["names"].([]any) {
			rec := it.(map[string]any)
			if rec["address"] == "" || rec["version"] != 1.0 {
				t.Fatalf("record %v", rec)
			}
			got = append(got, rec["name"].(string))
		}
		pages++
		next := r.body["next"].(string)
		if next == "" {
			break
		}
		after = next
	}
	if pages != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%d pages: %v", pages, got)
	}
	r := h.do("GET", "/names", "")
	if n := len(r.body["names"].([]any)); n != 26 || r.body["next"] != "" {
		t.Fatalf("default list: %d names, next %v", n, r.body["next"])
	}
	// Exactly limit names left: no next cursor.
	r = h.do("GET", "/names?prefix=p/&after=p/14&limit=10", "")
	if n := len(r.body["names"].([]any)); n != 10 || r.body["next"] != "" {
		t.Fatalf("last page: %d names, next %v", n, r.body["next"])
	}
	if r := h.do("GET", "/names?prefix=none", ""); r.raw != "{\"names\":[],\"next\":\"\"}\n" {
		t.Fatalf("empty list: %q", r.raw)
	}
}

func TestDurableAcrossReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "index")
	srv, err := New(Config{DataDir: dir}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v", fi, err)
	}
	ts := httptest.NewServer(srv.Handler())
	h := &harness{t: t, srv: srv, ts: ts}
	h.do("PUT", "/names/keep", putBodyFor(addrN(1)))
	h.do("PUT", "/names/keep", putBodyFor(addrN(2)))
	h.do("PUT", "/names/gone", putBodyFor(addrN(3)))
	h.do("DELETE", "/names/gone", "")
	ts.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if srv.Ready() == nil {
		t.Fatal("ready after close")
	}

	h2 := newHarness(t, Config{DataDir: dir})
	if h2.srv.Ready() != nil {
		t.Fatal("not ready")
	}
	r := h2.do("GET", "/names/keep", "")
	if r.status != 200 || r.version() != 2 || r.body["address"] != addrN(2) {
		t.Fatalf("after reopen: %d %s", r.status, r.raw)
	}
	if r := h2.do("GET", "/names/gone", ""); r.status != 404 {
		t.Fatalf("deleted name after reopen: %d", r.status)
	}
	if r := h2.do("PUT", "/names/gone", putBodyFor(addrN(4))); r.version() != 2 {
		t.Fatalf("tombstone lost across reopen: %s", r.raw)
	}
	if got := metricValue(t, h2.reg, "macronode_index_names"); got != 2 {
		t.Fatalf("names gauge = %v, want 2", got)
	}
}

// metricValue reads one unlabelled counter or gauge from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestClosedAnswers503(t *testing.T) {
	h := newHarness(t, Config{DataDir: t.TempDir()})
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if r := h.do("PUT", "/names/a", putBodyFor(addrN(1))); r.status != 503 {
		t.Fatalf("put after close: %d %s", r.status, r.raw)
	}
	if r := h.do("GET", "/names/a", ""); r.status != 503 {
		t.Fatalf("get after close: %d %s", r.status, r.raw)
	}
}

func TestConcurrentDistinctPuts(t *testing.T) {
	for _, amnesia := range []bool{false, true} {
		t.Run(fmt.Sprintf("amnesia=%v", amnesia), func(t *testing.T) {
			h := newHarness(t, Config{DataDir: t.TempDir(), Amnesia: amnesia})
			const n = 64
			statuses := make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					statuses[i] = h.do("PUT", fmt.Sprintf("/names/c/%03d", i), putBodyFor(addrN(i))).status
				})
			}
			wg.Wait()
			for i, s := range statuses {
				if s != 201 {
					t.Fatalf("put %d: %d", i, s)
				}
			}
			r := h.do("GET", "/names?prefix=c/&limit=1000", "")
			if got := len(r.body["names"].([]any)); got != n || h.srv.store.count() != n {
				t.Fatalf("listed %d, count %d, want %d", got, h.srv.store.count(), n)
			}
		})
	}
}

func TestAmnesiaWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "index")
	h := newHarness(t, Config{DataDir: dir, Amnesia: true})
	if r := h.do("PUT", "/names/a", putBodyFor(addrN(1))); r.status != 201 {
		t.Fatalf("put: %d", r.status)
	}
	if r := h.do("GET", "/names/a", ""); r.status != 200 {
		t.Fatalf("get: %d", r.status)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("amnesia touched %s: %v", dir, err)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Fatal("New without data dir succeeded")
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{DataDir: file}, nil, nil); err == nil {
		t.Fatal("New on a file as data dir succeeded")
	}
	reg := prometheus.NewRegistry()
	srv, err := New(Config{Amnesia: true}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := New(Config{Amnesia: true}, nil, reg); err == nil {
		t.Fatal("double metric registration succeeded")
	}
}
