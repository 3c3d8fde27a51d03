package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/httpx"
)

// openRoutes are the admin routes that answer without the token once one is
// set, each with the reason. Every other registered route must answer 401.
var openRoutes = map[string]string{
	"GET /version":       "probe route (SPEC §5)",
	"GET /healthz":       "probe route (SPEC §5)",
	"GET /readyz":        "probe route (SPEC §5)",
	"GET /metrics":       "probe route while metrics_public is true (checked below with false)",
	"GET /{$}":           "renders the sign-in form only (checked below)",
	"GET /ui/":           "the page's embedded static assets: no node data",
	"POST " + LoginPath:  "where a browser presents the token",
	"POST " + LogoutPath: "only clears the session cookie",
}

// routePath turns a registered pattern into a request: the method and a
// concrete path ({name} is a known service, {$} the bare prefix).
func routePath(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.ReplaceAll(path, "{name}", "storage")
	path = strings.ReplaceAll(path, "{$}", "")
	return method, path
}

// With admin_token set, every route the admin mux registers needs it except
// openRoutes. The walk covers the mux's own record of its patterns, so a
// route added later without a guard fails here.
func TestEveryAdminRouteNeedsTheToken(t *testing.T) {
	const token = "route-s3cret"
	cfg := testConfig()
	cfg.AdminToken = token
	svcs := &fakeServices{}
	svcs.set(allRunning()...)
	n := start(t, Options{Config: func() *config.Config { return cfg }, Services: svcs})
	if len(n.patterns) < 10 {
		t.Fatalf("the mux recorded %d patterns: %v", len(n.patterns), n.patterns)
	}
	seen := map[string]bool{}
	for _, p := range n.patterns {
		seen[p] = true
		method, path := routePath(p)
		t.Run(p, func(t *testing.T) {
			r := n.do(t, method, path, nil, "")
			if reason, open := openRoutes[p]; open {
				if r.code == http.StatusUnauthorized {
					t.Fatalf("%s without a token = 401, want it open (%s)", p, reason)
				}
				return
			}
			if r.code != http.StatusUnauthorized {
				t.Fatalf("%s without a token = %d, want 401: %s", p, r.code, r.body)
			}
			var e httpx.ErrorBody
			r.json(t, &e)
			if e.Code != "unauthorized" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 body %s, WWW-Authenticate %q", r.body, r.header.Get("WWW-Authenticate"))
			}
			if r := n.do(t, method, path, map[string]string{"Authorization": "Bearer wrong"}, ""); r.code != http.StatusUnauthorized {
				t.Errorf("%s with a wrong token = %d, want 401", p, r.code)
			}
			if r := n.do(t, method, path, map[string]string{"Authorization": "Bearer " + token}, ""); r.code == http.StatusUnauthorized {
				t.Errorf("%s with the token = 401: %s", p, r.body)
			}
		})
	}
	for p := range openRoutes {
		if !seen[p] {
			t.Errorf("openRoutes lists %q, which the mux does not register", p)
		}
	}
	if r := n.get(t, "/"); !strings.Contains(string(r.body), `id="signin"`) || strings.Contains(string(r.body), "data-service=") {
		t.Errorf("GET / without a token shows more than the sign-in form:\n%s", r.body)
	}
}

// metrics_public false puts /metrics behind the token, on the admin plane
// and on the separate metrics listener alike; without a token it stays open.
func TestMetricsPublic(t *testing.T) {
	const token = "metrics-s3cret"
	tests := []struct {
		name   string
		token  string
		public bool
		header string
		code   int
	}{
		{"token, public", token, true, "", 200},
		{"token, not public, none sent", token, false, "", 401},
		{"token, not public, wrong", token, false, "Bearer nope", 401},
		{"token, not public, right", token, false, "Bearer " + token, 200},
		{"no token, not public", "", false, "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.AdminToken, cfg.MetricsPublic = tc.token, tc.public
			n := start(t, Options{Config: func() *config.Config { return cfg }})
			hdr := map[string]string{}
			if tc.header != "" {
				hdr["Authorization"] = tc.header
			}
			if r := n.do(t, "GET", "/metrics", hdr, ""); r.code != tc.code {
				t.Errorf("admin /metrics = %d, want %d", r.code, tc.code)
			}
			req, err := http.NewRequest("GET", "/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			n.MetricsHandler().ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Errorf("metrics listener /metrics = %d, want %d", rec.Code, tc.code)
			}
		})
	}
}
