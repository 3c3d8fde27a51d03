package gateway

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/httpx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type gw struct {
	t      *testing.T
	srv    *Server
	ts     *httptest.Server
	reg    *prometheus.Registry
	client *http.Client

	mu     sync.Mutex
	served map[int]int // answers by status, as the runtime's request metrics count them
}

// runtimeHandler wraps the gateway as the child runtime does (request ids,
// and a count of answers by status standing in for its request metrics).
func (g *gw) runtimeHandler() http.Handler {
	g.served = map[int]int{}
	return httpx.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httpx.NewStatusRecorder(w)
		defer func() {
			g.mu.Lock()
			g.served[rec.Status]++
			g.mu.Unlock()
		}()
		g.srv.Handler().ServeHTTP(rec, r)
	}))
}

// answered is how many requests were answered with status.
func (g *gw) answered(status int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.served[status]
}

func newGW(t testing.TB, cfg Config) *gw {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableCompression: true}
	g := &gw{srv: srv, reg: reg, client: &http.Client{Transport: tr}}
	ts := httptest.NewServer(g.runtimeHandler())
	g.ts = ts
	if tt, ok := t.(*testing.T); ok {
		g.t = tt
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ts.Close()
		_ = srv.Close()
	})
	return g
}

// seen is what a fake backend reports about the request it received.
type seen struct {
	Backend   string      `json:"backend"`
	Method    string      `json:"method"`
	Path      string      `json:"path"`
	RawPath   string      `json:"raw_path"`
	RawQuery  string      `json:"raw_query"`
	Header    http.Header `json:"header"`
	BodyBytes int64       `json:"body_bytes"`
}

// fakeBackend answers every request with a JSON description of it.
func fakeBackend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", name)
		_ = json.NewEncoder(w).Encode(seen{Backend: name, Method: r.Method, Path: r.URL.Path,
			RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery, Header: r.Header, BodyBytes: n})
	}))
	t.Cleanup(ts.Close)
	return ts
}

func hostOf(ts *httptest.Server) string { return strings.TrimPrefix(ts.URL, "http://") }

type answer struct {
	status int
	header http.Header
	raw    []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.raw, &m); err != nil {
		t.Fatalf("non-JSON body %q (status %d)", a.raw, a.status)
	}
	return m
}

func (a answer) seen(t *testing.T) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal(a.raw, &s); err != nil || s.Backend == "" {
		t.Fatalf("not a backend answer: %d %q", a.status, a.raw)
	}
	return s
}

func (g *gw) do(req *http.Request) answer {
	g.t.Helper()
	res, err := g.client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return answer{status: res.StatusCode, header: res.Header, raw: b}
}

func (g *gw) req(method, path string, body io.Reader, hdr ...string) *http.Request {
	g.t.Helper()
	req, err := http.NewRequest(method, g.ts.URL+path, body)
	if err != nil {
		g.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return req
}

func (g *gw) get(path string, hdr ...string) answer {
	g.t.Helper()
	return g.do(g.req("GET", path, nil, hdr...))
}

// counterValue reads one sample of a counter family from reg by labels
// (a histogram's sample count).
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	var pairs []string
	for k, v := range labels {
		pairs = append(pairs, k, v)
	}
	return testutil.Metric(t, reg, name, pairs...)
}

func TestPing(t *testing.T) {
	g := newGW(t, Config{})
	a := g.get("/ingress/ping")
	if a.status != 200 || string(a.raw) != `{"ok":true,"service":"svc-gateway","profile":"macronode"}`+"\n" {
		t.Fatalf("ping: %d %q", a.status, a.raw)
	}
	if a.header.Get("Content-Type") != "application/json" || a.header.Get("X-Request-Id") == "" {
		t.Fatalf("ping headers: %v", a.header)
	}
	if g.srv.Ready() != nil {
		t.Fatal("gateway not ready")
	}
	if a := g.do(g.req("POST", "/ingress/ping", nil)); a.status != 405 || a.json(t)["code"] != "method_not_allowed" {
		t.Fatalf("POST ping: %d %s", a.status, a.raw)
	}
}

func TestRouting(t *testing.T) {
	backends := map[string]*httptest.Server{}
	for _, n := range []string{"storage", "index", "mailbox"} {
		backends[n] = fakeBackend(t, n)
	}
	g := newGW(t, Config{
		Backends: map[string]string{"storage": hostOf(backends["storage"]), "index": backends["index"].URL, "mailbox": hostOf(backends["mailbox"])},
	})
	tests := []struct {
		method, path, backend, wantPath, wantQuery string
	}{
		{"POST", "/o", "storage", "/o", ""},
		{"GET", "/o/b3:" + strings.Repeat("ab", 32) + "?x=1&y=%20z", "storage", "/o/b3:" + strings.Repeat("ab", 32), "x=1&y=%20z"},
		{"HEAD", "/o/abc", "storage", "/o/abc", ""},
		{"GET", "/names", "index", "/names", ""},
		{"GET", "/names?prefix=site/&limit=2", "index", "/names", "prefix=site/&limit=2"},
		{"PUT", "/names/site/index.html", "index", "/names/site/index.html", ""},
		{"DELETE", "/names/a%2Fb", "index", "/names/a/b", ""},
		{"POST", "/mailboxes/box1/receive?max=10&wait=1s", "mailbox", "/mailboxes/box1/receive", "max=10&wait=1s"},
		{"GET", "/mailboxes", "mailbox", "/mailboxes", ""},
	}
	for _, tc := range tests {
		var body io.Reader
		if tc.method == "POST" || tc.method == "PUT" {
			body = strings.NewReader(`{"x":1}`)
		}
		a := g.do(g.req(tc.method, tc.path, body))
		if a.status != 200 || a.header.Get("X-Backend") != tc.backend {
			t.Errorf("%s %s: %d backend %q, want %s", tc.method, tc.path, a.status, a.header.Get("X-Backend"), tc.backend)
			continue
		}
		if tc.method == "HEAD" {
			continue
		}
		s := a.seen(t)
		if s.Method != tc.method || s.Path != tc.wantPath || s.RawQuery != tc.wantQuery {
			t.Errorf("%s %s: backend saw %s %s ? %s", tc.method, tc.path, s.Method, s.Path, s.RawQuery)
		}
		if body != nil && s.BodyBytes != 7 {
			t.Errorf("%s %s: backend read %d body bytes, want 7", tc.method, tc.path, s.BodyBytes)
		}
	}
	if s := g.get("/names/a%2Fb").seen(t); s.RawPath != "/names/a%2Fb" {
		t.Errorf("escaped path not preserved: raw %q", s.RawPath)
	}
	// The overlay and DHT APIs are internal: never routed.
	for _, p := range []string{"/", "/nope", "/objects/x", "/oo", "/namesx", "/ingress", "/dht/peers", "/overlay/info"} {
		a := g.get(p)
		if a.status != 404 || a.json(t)["code"] != "not_found" {
			t.Errorf("GET %s: %d %s, want 404 JSON", p, a.status, a.raw)
		}
	}
	// So are storage's listing and its verified PUT.
	for _, mp := range [][2]string{{"GET", "/o"}, {"GET", "/o?after=&limit=10"}, {"HEAD", "/o"}, {"PUT", "/o/b3:" + strings.Repeat("ab", 32)}} {
		a := g.do(g.req(mp[0], mp[1], nil))
		if a.status != 405 || a.header.Get("X-Backend") != "" || a.header.Get("Allow") == "" {
			t.Errorf("%s %s: %d backend %q, want 405 from the gateway", mp[0], mp[1], a.status, a.header.Get("X-Backend"))
		}
	}
}

func TestForwardedHeaders(t *testing.T) {
	be := fakeBackend(t, "index")
	g := newGW(t, Config{Backends: map[string]string{"index": hostOf(be)}})

	a := g.get("/names/a", "X-Request-Id", "req-abc-123", "X-Forwarded-For", "6.6.6.6", "Forwarded", "for=6.6.6.6")
	s := a.seen(t)
	if got := s.Header.Get("X-Request-Id"); got != "req-abc-123" || a.header.Get("X-Request-Id") != "req-abc-123" {
		t.Errorf("request id: backend saw %q, client got %q", got, a.header.Get("X-Request-Id"))
	}
	if got := s.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For at backend = %q, want just the client IP", got)
	}
	if s.Header.Get("Forwarded") != "" || s.Header.Get("X-Forwarded-Proto") != "http" || s.Header.Get("X-Forwarded-Host") == "" {
		t.Errorf("forwarding headers at backend: %v", s.Header)
	}

	// No id from the client: the gateway makes one and the backend sees it.
	a = g.get("/names/a")
	id := a.header.Get("X-Request-Id")
	if id == "" || a.seen(t).Header.Get("X-Request-Id") != id {
		t.Errorf("generated request id %q not propagated: %v", id, a.seen(t).Header)
	}

	// Hop-by-hop headers, and headers named by Connection, stop here.
	a = g.get("/names/a",
		"Connection", "X-Private, Upgrade", "X-Private", "secret", "Keep-Alive", "timeout=5",
		"Upgrade", "websocket", "Proxy-Connection", "keep-alive", "Te", "gzip", "Proxy-Authorization", "Basic x",
		"X-Kept", "yes")
	s = a.seen(t)
	for _, h := range []string{"X-Private", "Keep-Alive", "Upgrade", "Proxy-Connection", "Te", "Proxy-Authorization"} {
		if v := s.Header.Get(h); v != "" {
			t.Errorf("hop-by-hop header %s reached the backend: %q", h, v)
		}
	}
	if c := s.Header.Get("Connection"); c != "" && !strings.EqualFold(c, "keep-alive") && !strings.EqualFold(c, "close") {
		t.Errorf("Connection reached the backend: %q", c)
	}
	if s.Header.Get("X-Kept") != "yes" {
		t.Errorf("end-to-end header dropped: %v", s.Header)
	}
}

func TestBackendNotConfigured(t *testing.T) {
	g := newGW(t, Config{})
	for _, p := range []string{"/o/x", "/names/a", "/mailboxes/b/messages"} {
		a := g.get(p)
		if m := a.json(t); a.status != 503 || m["code"] != "backend_not_configured" || !strings.Contains(m["error"].(string), "not configured") {
			t.Errorf("GET %s: %d %s", p, a.status, a.raw)
		}
	}
}

// closedAddr is a local address with nothing listening.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestBackendDown(t *testing.T) {
	down := closedAddr(t)
	g := newGW(t, Config{Backends: map[string]string{"storage": down, "index": down}})
	for _, p := range []string{"/o/abc", "/names/a"} {
		a := g.do(g.req("POST", p, strings.NewReader("payload")))
		m := a.json(t)
		if a.status != 503 || m["code"] != "backend_down" || !strings.HasPrefix(m["error"].(string), "backend ") {
			t.Fatalf("POST %s to a down backend: %d %s", p, a.status, a.raw)
		}
	}
	if got := counterValue(t, g.reg, "macronode_gateway_backend_errors_total", map[string]string{"backend": "storage"}); got != 1 {
		t.Fatalf("backend_errors_total{storage} = %v, want 1", got)
	}
}

// hangingBackend accepts requests and never answers until the client leaves.
func hangingBackend(t *testing.T) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(ts.Close)
	return ts
}

func TestBackendHangsOnHeaders(t *testing.T) {
	hang := hangingBackend(t)
	g := newGW(t, Config{Backends: map[string]string{"storage": hostOf(hang), "index": hostOf(hang)},
		BackendTimeout: 100 * time.Millisecond, RequestTimeout: time.Hour})
	for _, p := range []string{"/o/abc", "/names/a"} {
		a := g.get(p)
		if m := a.json(t); a.status != 504 || m["code"] != "backend_timeout" {
			t.Fatalf("GET %s from a hanging backend: %d %s", p, a.status, a.raw)
		}
	}
	if got := counterValue(t, g.reg, "macronode_gateway_backend_errors_total", map[string]string{"backend": "index"}); got != 1 {
		t.Fatalf("backend_errors_total{index} = %v, want 1", got)
	}
}

func TestRequestDeadline(t *testing.T) {
	hang := hangingBackend(t)
	g := newGW(t, Config{Backends: map[string]string{"mailbox": hostOf(hang)}, BackendTimeout: time.Hour, RequestTimeout: 100 * time.Millisecond})
	a := g.do(g.req("POST", "/mailboxes/b/receive?wait=1h", nil))
	if m := a.json(t); a.status != 504 || m["code"] != "backend_timeout" || !strings.Contains(m["error"].(string), "deadline") {
		t.Fatalf("long request: %d %s", a.status, a.raw)
	}
}

func TestBodyCaps(t *testing.T) {
	be := fakeBackend(t, "any")
	g := newGW(t, Config{Backends: map[string]string{"storage": hostOf(be), "index": hostOf(be), "mailbox": hostOf(be)},
		MaxBodyBytes: 16, MaxObjectBytes: 64})
	// onlyReader hides the length, so the body goes chunked and the cap
	// trips while streaming rather than on Content-Length.
	type onlyReader struct{ io.Reader }
	tests := []struct {
		path   string
		size   int
		sized  bool
		status int
	}{
		{"/names/a", 16, true, 200},
		{"/names/a", 17, true, 413},
		{"/names/a", 16, false, 200},
		{"/names/a", 1000, false, 413},
		{"/mailboxes/b/messages", 17, true, 413},
		{"/o", 64, true, 200},
		{"/o", 64, false, 200},
		{"/o", 65, true, 413},
		{"/o", 100 << 10, false, 413},
	}
	for _, tc := range tests {
		var body io.Reader = strings.NewReader(strings.Repeat("x", tc.size))
		if !tc.sized {
			body = onlyReader{body}
		}
		a := g.do(g.req("POST", tc.path, body))
		if a.status != tc.status {
			t.Errorf("POST %s %d bytes (sized %v): %d %s, want %d", tc.path, tc.size, tc.sized, a.status, a.raw, tc.status)
			continue
		}
		if tc.status == 413 && a.json(t)["code"] != "too_large" {
			t.Errorf("POST %s %d bytes: body %s", tc.path, tc.size, a.raw)
		}
		if tc.status == 200 && a.seen(t).BodyBytes != int64(tc.size) {
			t.Errorf("POST %s: backend read %d bytes, want %d", tc.path, a.seen(t).BodyBytes, tc.size)
		}
	}
}

func TestRateLimit(t *testing.T) {
	g := newGW(t, Config{Rate: 0.001, Burst: 2})
	for i := range 2 {
		if a := g.get("/ingress/ping"); a.status != 200 {
			t.Fatalf("request %d within burst: %d", i, a.status)
		}
	}
	a := g.get("/ingress/ping")
	if a.status != 429 || a.json(t)["code"] != "rate_limited" {
		t.Fatalf("over the rate: %d %s", a.status, a.raw)
	}
	if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After = %q", a.header.Get("Retry-After"))
	}
	if got := counterValue(t, g.reg, "macronode_gateway_rate_limited_total", nil); got != 1 {
		t.Fatalf("rate_limited_total = %v, want 1", got)
	}
	if got := g.answered(429); got != 1 {
		t.Fatalf("%d answers 429, want 1", got)
	}
}
