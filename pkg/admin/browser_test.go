package admin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/httpx"
)

// TestBrowserGuards: on a loopback bind with no token, a web page cannot
// restart a service (cross-site POST, or DNS rebinding) nor read status,
// while the CLI, same-origin pages and probes keep working.
func TestBrowserGuards(t *testing.T) {
	cfg := testConfig()
	cfg.AdminAllowedHosts = []string{"admin.example", "node.internal:9999"}
	svcs := &fakeServices{}
	svcs.set(allRunning()...)
	n := start(t, Options{Config: func() *config.Config { return cfg }, Services: svcs})
	self := strings.TrimPrefix(n.url, "http://")
	_, port := splitHost(self)
	const restart = "/api/v1/services/storage/restart"
	tests := []struct {
		name, method, path, host string
		hdr                      map[string]string
		want                     int
		wantCode                 string // the JSON error code of a refusal
	}{
		{"rebinding POST", "POST", restart, "attacker.example", map[string]string{"Origin": "http://attacker.example"}, 403, "host_not_allowed"},
		{"cross-site text/plain POST", "POST", restart, "", map[string]string{"Origin": "http://attacker.example", "Content-Type": "text/plain"}, 403, "cross_origin"},
		{"Sec-Fetch-Site cross-site", "POST", restart, "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "cross_origin"},
		{"Sec-Fetch-Site same-site", "POST", restart, "", map[string]string{"Sec-Fetch-Site": "same-site"}, 403, "cross_origin"},
		{"rebinding GET status", "GET", "/api/v1/status", "attacker.example", nil, 403, "host_not_allowed"},
		{"rebinding GET logs", "GET", "/api/v1/services/storage/logs", "attacker.example:" + port, nil, 403, "host_not_allowed"},
		{"loopback IP, other port", "GET", "/api/v1/status", "127.0.0.1:1", nil, 403, "host_not_allowed"},
		{"allowed host, wrong port", "GET", "/api/v1/status", "node.internal:8080", nil, 403, "host_not_allowed"},
		{"pod IP on status", "GET", "/api/v1/status", "10.1.2.3:8080", nil, 403, "host_not_allowed"},
		{"CLI POST", "POST", restart, "", nil, 202, ""},
		{"same-origin POST", "POST", restart, "", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": n.url}, 202, ""},
		{"Origin matches Host", "POST", restart, "", map[string]string{"Origin": n.url}, 202, ""},
		{"localhost with port", "GET", "/api/v1/status", "localhost:" + port, nil, 200, ""},
		{"LOCALHOST without port", "GET", "/api/v1/status", "LOCALHOST", nil, 200, ""},
		{"IPv6 loopback", "GET", "/api/v1/status", "[::1]:" + port, nil, 200, ""},
		{"allowed host any port", "GET", "/api/v1/status", "Admin.Example:443", nil, 200, ""},
		{"allowed host and port", "GET", "/api/v1/status", "node.internal:9999", nil, 200, ""},
		{"probe healthz", "GET", "/healthz", "10.1.2.3:8080", nil, 200, ""},
		{"probe readyz", "GET", "/readyz", "10.1.2.3:8080", nil, 200, ""},
		{"probe version", "GET", "/version", "10.1.2.3:8080", nil, 200, ""},
		{"probe metrics", "GET", "/metrics", "10.1.2.3:8080", nil, 200, ""},
	}
	wantCalls := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := n.doHost(t, tc.method, tc.path, tc.host, tc.hdr, "")
			if r.code != tc.want {
				t.Fatalf("status %d, want %d: %s", r.code, tc.want, r.body)
			}
			if tc.want == 202 {
				wantCalls++
			}
			if r.code == 403 {
				var body httpx.ErrorBody
				if err := json.Unmarshal(r.body, &body); err != nil {
					t.Fatalf("403 body is not JSON: %q", r.body)
				}
				if tc.wantCode != "" && body.Code != tc.wantCode {
					t.Errorf("code %q, want %q", body.Code, tc.wantCode)
				}
			}
			if got := len(svcs.Calls()); got != wantCalls {
				t.Errorf("%d service calls, want %d: %v", got, wantCalls, svcs.Calls())
			}
		})
	}
}

// TestHostCheckOnlyOnLoopback: a non-loopback admin needs a token instead;
// the Host guard is for the tokenless loopback default.
func TestHostCheckOnlyOnLoopback(t *testing.T) {
	cfg := testConfig()
	cfg.HTTPAddr = "0.0.0.0:8080"
	cfg.AdminToken = "tok"
	svcs := &fakeServices{}
	svcs.set(allRunning()...)
	n := start(t, Options{Config: func() *config.Config { return cfg }, Services: svcs})
	if r := n.doHost(t, "GET", "/api/v1/status", "node.example", map[string]string{"Authorization": "Bearer tok"}, ""); r.code != 200 {
		t.Errorf("status with another Host on a non-loopback bind: %d %s", r.code, r.body)
	}
	hdr := map[string]string{"Authorization": "Bearer tok", "Origin": "http://attacker.example"}
	if r := n.doHost(t, "POST", "/api/v1/services/storage/restart", "node.example", hdr, ""); r.code != 403 {
		t.Errorf("cross-site POST with a token: %d, want 403", r.code)
	}
	if calls := svcs.Calls(); len(calls) != 0 {
		t.Errorf("calls %v", calls)
	}
}
