package admin

import (
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/macronode/macronode/pkg/httpx"
)

// flood sends count concurrent GETs of path and tallies the status codes;
// limited is one of the 429 answers, if any.
func flood(t *testing.T, n *testNode, path string, count int) (codes map[int]int, limited reply) {
	t.Helper()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	codes = map[int]int{}
	for range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := n.client.Get(n.url + path)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			defer resp.Body.Close()
			codes[resp.StatusCode]++
			if resp.StatusCode == http.StatusTooManyRequests && limited.code == 0 {
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					errs = append(errs, err)
				}
				limited = reply{code: resp.StatusCode, header: resp.Header, body: body}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d requests failed, first: %v", len(errs), count, errs[0])
	}
	return codes, limited
}

// With the default limits, one client flooding an API route is refused
// there, while the probes and the scrape still answer from the same IP.
func TestAPIFloodLeavesProbesAnswering(t *testing.T) {
	fs := &fakeServices{}
	fs.set(allRunning()...)
	n := start(t, Options{Services: fs})

	codes, r := flood(t, n, "/api/v1/status", 300)
	if codes[http.StatusTooManyRequests] == 0 || codes[200] == 0 || codes[200]+codes[429] != 300 {
		t.Fatalf("API flood codes = %v, want some 200 and some 429", codes)
	}
	var e httpx.ErrorBody
	r.json(t, &e)
	if e.Code != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("429 answer: %s %v", r.body, r.header)
	}
	for _, path := range []string{"/readyz", "/healthz", "/metrics", "/version"} {
		if r := n.get(t, path); r.code != 200 {
			t.Errorf("GET %s after API flood: %d %s", path, r.code, r.body)
		}
	}
}

// The reviewer's case: 600 parallel /healthz from one IP all answer 200
// (no 429, and concurrent probes share one supervisor check).
func TestHealthzFloodAnswers(t *testing.T) {
	fs := &fakeServices{}
	fs.set(allRunning()...)
	n := start(t, Options{Services: fs})
	if codes, _ := flood(t, n, "/healthz", 600); codes[200] != 600 {
		t.Fatalf("healthz flood codes = %v", codes)
	}
	if r := n.get(t, "/readyz"); r.code != 200 {
		t.Fatalf("readyz after healthz flood: %d %s", r.code, r.body)
	}
}

// An exhausted global bucket refuses API routes only.
func TestGlobalRateLimitSparesProbes(t *testing.T) {
	fs := &fakeServices{}
	fs.set(allRunning()...)
	n := start(t, Options{Services: fs, RateLimit: 0.001, RateBurst: 2, PerIPRateLimit: -1})
	for i := range 2 {
		if r := n.get(t, "/api/v1/status"); r.code != 200 {
			t.Fatalf("request %d: %d", i, r.code)
		}
	}
	r := n.get(t, "/api/v1/status")
	var e httpx.ErrorBody
	r.json(t, &e)
	if r.code != http.StatusTooManyRequests || e.Code != "rate_limited" || r.header.Get("Retry-After") == "" ||
		e.Error != "admin plane rate limit exceeded" {
		t.Fatalf("got %d %s", r.code, r.body)
	}
	for _, path := range []string{"/readyz", "/healthz", "/metrics", "/version"} {
		if r := n.get(t, path); r.code != 200 {
			t.Errorf("GET %s: %d %s", path, r.code, r.body)
		}
	}
	if r := n.do(t, "HEAD", "/healthz", nil, ""); r.code != 200 {
		t.Errorf("HEAD /healthz: %d", r.code)
	}
}

func TestPerIPRateLimit(t *testing.T) {
	n := start(t, Options{RateLimit: -1, PerIPRateLimit: 0.001})
	codes := map[int]int{}
	for range 3 {
		codes[n.get(t, "/api/v1/status").code]++
	}
	if codes[200] != 1 || codes[429] != 2 {
		t.Fatalf("codes = %v", codes)
	}
	if r := n.get(t, "/version"); r.code != 200 {
		t.Fatalf("probe shares the API bucket: %d", r.code)
	}
}

// Probes have per-IP buckets of their own, separate from the API's.
func TestProbeRateLimit(t *testing.T) {
	n := start(t, Options{ProbeRateLimit: 0.001})
	codes := map[int]int{}
	for range 3 {
		codes[n.get(t, "/version").code]++
	}
	if codes[200] != 1 || codes[429] != 2 {
		t.Fatalf("codes = %v", codes)
	}
	if r := n.get(t, "/api/v1/status"); r.code != 200 {
		t.Fatalf("API shares the probe bucket: %d", r.code)
	}
}

func TestIsProbe(t *testing.T) {
	tests := []struct {
		method, path string
		want         bool
	}{
		{"GET", "/healthz", true},
		{"GET", "/readyz", true},
		{"GET", "/metrics", true},
		{"GET", "/version", true},
		{"HEAD", "/readyz", true},
		{"POST", "/healthz", false},
		{"GET", "/healthz/", false},
		{"GET", "/api/v1/status", false},
		{"POST", "/api/v1/reload", false},
	}
	for _, tc := range tests {
		r, err := http.NewRequest(tc.method, "http://x"+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := isProbe(r); got != tc.want {
			t.Errorf("isProbe(%s %s) = %v", tc.method, tc.path, got)
		}
	}
}

// The per-IP limiter is on by default: the first DefaultPerIPRateLimit*2
// requests of a client pass, a tight loop past that is refused; negative
// disables it.
func TestPerIPLimiterDefaults(t *testing.T) {
	l := newLimiters(Options{})
	if l.perIP == nil || l.probe == nil {
		t.Fatal("per-IP limiters are off by default")
	}
	for i := range 2 * DefaultPerIPRateLimit {
		if !l.perIP.Allow("192.0.2.1") {
			t.Fatalf("request %d refused within the default burst", i)
		}
	}
	refused := false
	for range 1000 {
		if !l.perIP.Allow("192.0.2.1") {
			refused = true
			break
		}
	}
	if !refused {
		t.Fatal("default per-IP limiter never refused")
	}
	if !l.perIP.Allow("192.0.2.2") {
		t.Fatal("another client shares the bucket")
	}
	if l := newLimiters(Options{PerIPRateLimit: -1, ProbeRateLimit: -1}); l.perIP != nil || l.probe != nil {
		t.Fatal("negative rates do not disable the per-IP limiters")
	}
}
