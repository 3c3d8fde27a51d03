package admin

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/events"
	"github.com/macronode/macronode/pkg/supervisor"
)

// scriptTag matches every <script ...> opening tag of a page.
var scriptTag = regexp.MustCompile(`<script[^>]*>`)

// Without JavaScript the page already holds the node, one row per service
// with its live fields, the timeline marks and the exits with their log
// tails and crash block, all escaped; it runs no inline script and sends a
// strict CSP.
func TestPageRendersWithoutJS(t *testing.T) {
	svcs := &fakeServices{}
	snap := allRunning()
	for i := range snap {
		if snap[i].Name == "storage" {
			snap[i].Restarts, snap[i].PID, snap[i].LastExit = 1, 5151, "signal: killed"
			snap[i].Exits = []supervisor.Exit{{
				Time: time.Now().Add(-2 * time.Minute), PID: 4242, Code: 137, Signal: "killed", Description: "signal: killed",
				UptimeSeconds: 90, LastLines: []string{"serving <b>blobs</b>"}, CrashBlock: []string{"panic: boom", "goroutine 1 [running]:"},
				Restart: "immediate",
			}}
		}
	}
	svcs.set(snap...)
	bus, err := events.New("boot1", 100)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	bus.Publish(events.Exited, "storage", supervisor.ExitedEvent{PID: 4242, Description: "signal: killed"})
	n := start(t, Options{Services: svcs, Events: bus, NodeID: "12D3KooWTestNode"})

	r := n.get(t, "/")
	if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q: %s", r.code, r.header.Get("Content-Type"), r.body)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP = %q", csp)
	}
	body := string(r.body)
	for _, p := range config.Planes {
		if !strings.Contains(body, `<tr data-service="`+p+`">`) {
			t.Errorf("no row for %s", p)
		}
	}
	for _, want := range []string{
		"12D3KooWTestNode", `<td class="state state-running">running</td>`, `<td class="pid">5151</td>`,
		`<td class="restarts">1</td>`, `<td class="last-exit">signal: killed</td>`,
		`serving &lt;b&gt;blobs&lt;/b&gt;`, "panic: boom", `class="mark exited"`, "storage pid 4242: signal: killed",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<b>blobs</b>") {
		t.Error("a log line reached the page unescaped")
	}
	for _, tag := range scriptTag.FindAllString(body, -1) {
		if !strings.Contains(tag, `src="/ui/`) {
			t.Errorf("script not from /ui/: %s", tag)
		}
	}
	if strings.Contains(body, "https://") || strings.Contains(body, "http://") {
		t.Error("the page names an external URL")
	}
}

// The assets are embedded and make no request beyond this origin.
func TestPageAssets(t *testing.T) {
	n := start(t, Options{Services: &fakeServices{}})
	for path, ctype := range map[string]string{"/ui/page.js": "text/javascript", "/ui/page.css": "text/css"} {
		r := n.get(t, path)
		if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), ctype) || len(r.body) < 100 {
			t.Errorf("GET %s = %d %q (%d bytes)", path, r.code, r.header.Get("Content-Type"), len(r.body))
		}
		rest := strings.ReplaceAll(string(r.body), "http://www.w3.org/2000/svg", "") // a namespace name, not a request
		if strings.Contains(rest, "http://") || strings.Contains(rest, "https://") || strings.Contains(rest, "//cdn") {
			t.Errorf("%s names an external URL", path)
		}
	}
	if r := n.get(t, "/ui/nope.js"); r.code != 404 {
		t.Errorf("missing asset = %d", r.code)
	}
}

func sessionCookie(t *testing.T, r reply) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == SessionCookie {
			return c
		}
	}
	return nil
}

// With admin_token set the page signs in once: the cookie is HttpOnly,
// SameSite=Strict, holds no token, and then authenticates GETs and POSTs
// like the bearer token.
func TestPageLogin(t *testing.T) {
	const token = "page-s3cret"
	cfg := testConfig()
	cfg.AdminToken = token
	svcs := &fakeServices{}
	svcs.set(allRunning()...)
	bus, err := events.New("boot1", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	n := start(t, Options{Config: func() *config.Config { return cfg }, Services: svcs, Events: bus})

	r := n.get(t, "/")
	if r.code != 200 || !strings.Contains(string(r.body), `id="signin"`) || strings.Contains(string(r.body), "data-service=") {
		t.Fatalf("GET / without a session = %d, want the sign-in form only:\n%s", r.code, r.body)
	}
	if r := n.get(t, "/api/v1/status"); r.code != 401 {
		t.Errorf("status without credentials = %d, want 401", r.code)
	}
	for _, tc := range []struct {
		name, ctype, body string
		code              int
	}{
		{"wrong token", "application/json", `{"token":"nope"}`, 401},
		{"empty token", "application/json", `{"token":""}`, 401},
		{"prefix of the token", "application/json", `{"token":"page-s3"}`, 401},
		{"malformed json", "application/json", `{"token":`, 400},
		{"unknown field", "application/json", `{"token":"page-s3cret","x":1}`, 400},
		{"trailing data", "application/json", `{"token":"page-s3cret"} {}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.do(t, "POST", LoginPath, map[string]string{"Content-Type": tc.ctype}, tc.body)
			if r.code != tc.code || sessionCookie(t, r) != nil {
				t.Errorf("login = %d (cookie %v), want %d: %s", r.code, sessionCookie(t, r), tc.code, r.body)
			}
		})
	}

	r = n.do(t, "POST", LoginPath, map[string]string{"Content-Type": "application/json"}, `{"token":"`+token+`"}`)
	c := sessionCookie(t, r)
	if r.code != 200 || c == nil {
		t.Fatalf("login = %d, cookie %v: %s", r.code, c, r.body)
	}
	raw := r.header.Get("Set-Cookie")
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.MaxAge <= 0 {
		t.Errorf("cookie attributes: %q", raw)
	}
	if strings.Contains(raw, token) {
		t.Errorf("the cookie carries the token: %q", raw)
	}
	cookie := map[string]string{"Cookie": c.Name + "=" + c.Value}

	if r := n.do(t, "GET", "/api/v1/status", cookie, ""); r.code != 200 {
		t.Errorf("status with the cookie = %d: %s", r.code, r.body)
	}
	if r := n.do(t, "GET", "/", cookie, ""); r.code != 200 || !strings.Contains(string(r.body), `<tr data-service="storage">`) {
		t.Errorf("page with the cookie = %d, no rows", r.code)
	}
	if r := n.do(t, "GET", EventsPath+"?follow=0", cookie, ""); r.code != 200 {
		t.Errorf("events with the cookie = %d", r.code)
	}
	if r := n.do(t, "POST", "/api/v1/services/storage/restart", cookie, ""); r.code != 202 {
		t.Errorf("POST restart with the cookie = %d: %s", r.code, r.body)
	}
	withOrigin := map[string]string{"Cookie": cookie["Cookie"], "Origin": "http://attacker.example"}
	if r := n.do(t, "POST", "/api/v1/services/storage/stop", withOrigin, ""); r.code != 403 {
		t.Errorf("cross-site POST with the cookie = %d, want 403", r.code)
	}
	tampered := map[string]string{"Cookie": c.Name + "=" + c.Value[:len(c.Value)-1] + "0"}
	if strings.HasSuffix(c.Value, "0") {
		tampered["Cookie"] = c.Name + "=" + c.Value[:len(c.Value)-1] + "1"
	}
	if r := n.do(t, "GET", "/api/v1/status", tampered, ""); r.code != 401 {
		t.Errorf("status with a tampered cookie = %d, want 401", r.code)
	}
	if got := svcs.Calls(); len(got) != 1 || got[0] != "restart storage" {
		t.Errorf("calls = %v, want only the cookie's restart", got)
	}

	// A page without JavaScript posts a form and is sent back to the page.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Post(n.url+LoginPath, "application/x-www-form-urlencoded", strings.NewReader("token="+token))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	noFollow.CloseIdleConnections()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || sessionCookie(t, reply{header: resp.Header}) == nil {
		t.Errorf("form login = %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	r = n.do(t, "POST", LogoutPath, cookie, "")
	if c := sessionCookie(t, r); r.code != 200 || c == nil || c.MaxAge >= 0 {
		t.Errorf("logout = %d, cookie %v", r.code, c)
	}
}

// A rotated token ends the sessions signed for the old one; with no token
// there is nothing to sign in to.
func TestPageLoginTokenRotation(t *testing.T) {
	cfg := testConfig()
	cfg.AdminToken = "old"
	var current atomic.Pointer[config.Config]
	current.Store(cfg)
	n := start(t, Options{Config: current.Load, Services: &fakeServices{}})
	r := n.do(t, "POST", LoginPath, nil, `{"token":"old"}`)
	c := sessionCookie(t, r)
	if c == nil {
		t.Fatalf("login = %d: %s", r.code, r.body)
	}
	cookie := map[string]string{"Cookie": c.Name + "=" + c.Value}
	next := *cfg
	next.AdminToken = "new"
	current.Store(&next)
	if r := n.do(t, "GET", "/api/v1/status", cookie, ""); r.code != 401 {
		t.Errorf("old session after rotation = %d, want 401", r.code)
	}
	open := *cfg
	open.AdminToken = ""
	current.Store(&open)
	if r := n.do(t, "POST", LoginPath, nil, `{"token":"old"}`); r.code != 409 {
		t.Errorf("login without admin_token = %d, want 409", r.code)
	}
}

// Under TLS the cookie is Secure.
func TestLoginCookieSecureUnderTLS(t *testing.T) {
	cfg := testConfig()
	cfg.AdminToken = "tls-token"
	n := start(t, Options{Config: func() *config.Config { return cfg }, Services: &fakeServices{}})
	for _, tc := range []struct {
		name   string
		tls    bool
		secure bool
	}{{"plain", false, false}, {"tls", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", LoginPath, strings.NewReader(`{"token":"tls-token"}`))
			if tc.tls {
				req.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			n.handleLogin(w, req)
			c := sessionCookie(t, reply{code: w.Code, header: w.Header()})
			if w.Code != 200 || c == nil || c.Secure != tc.secure {
				t.Errorf("login = %d, cookie %v, want Secure=%v", w.Code, c, tc.secure)
			}
		})
	}
}

func TestSessionKeys(t *testing.T) {
	k := newSessionKeys()
	now := time.Unix(1_800_000_000, 0)
	k.now = func() time.Time { return now }
	good, _ := k.issue("tok")
	other := newSessionKeys()
	other.now = k.now
	foreign, _ := other.issue("tok")
	tests := []struct {
		name, value, token string
		after              time.Duration
		want               bool
	}{
		{"valid", good, "tok", 0, true},
		{"valid just before expiry", good, "tok", SessionTTL - time.Second, true},
		{"expired", good, "tok", SessionTTL, false},
		{"other token", good, "tok2", 0, false},
		{"no token configured", good, "", 0, false},
		{"another server's key", foreign, "tok", 0, false},
		{"no dot", strings.ReplaceAll(good, ".", ""), "tok", 0, false},
		{"bad expiry", "x" + good, "tok", 0, false},
		{"moved expiry", "9" + good, "tok", 0, false},
		{"bad hex", good + "zz", "tok", 0, false},
		{"empty", "", "tok", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k.now = func() time.Time { return now.Add(tc.after) }
			if got := k.valid(tc.value, tc.token); got != tc.want {
				t.Errorf("valid(%q, %q) = %v, want %v", tc.value, tc.token, got, tc.want)
			}
		})
	}
}

func TestFmtSeconds(t *testing.T) {
	for _, tc := range []struct {
		sec  float64
		want string
	}{{0, "-"}, {-3, "-"}, {0.4, "0s"}, {7.9, "7s"}, {250, "4m10s"}, {7500, "2h5m"}, {3*86400 + 4*3600 + 59, "3d4h"}} {
		if got := fmtSeconds(tc.sec); got != tc.want {
			t.Errorf("fmtSeconds(%v) = %q, want %q", tc.sec, got, tc.want)
		}
	}
}
