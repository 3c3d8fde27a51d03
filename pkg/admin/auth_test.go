package admin

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/httpx"
)

func TestIsLoopbackAddr(t *testing.T) {
	tests := map[string]bool{
		"127.0.0.1:8080": true,
		"127.3.4.5:1":    true,
		"[::1]:8080":     true,
		"localhost:8080": true,
		"LOCALHOST:80":   true,
		":8080":          false,
		"0.0.0.0:8080":   false,
		"[::]:8080":      false,
		"10.0.0.1:8080":  false,
		"example.com:80": false,
		"127.0.0.1":      false, // no port: unparsable
		"":               false,
	}
	for addr, want := range tests {
		if got := IsLoopbackAddr(addr); got != want {
			t.Errorf("IsLoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestBearer(t *testing.T) {
	tests := []struct {
		h    string
		tok  string
		okay bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer  abc ", "abc", true},
		{"Basic abc", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		if tok, ok := bearer(tc.h); tok != tc.tok || ok != tc.okay {
			t.Errorf("bearer(%q) = %q %v", tc.h, tok, ok)
		}
	}
}

func TestAuthMatrix(t *testing.T) {
	const token = "s3cret-token"
	tests := []struct {
		name     string
		httpAddr string
		token    string
		insecure bool
		header   string
		code     int
		wwwAuth  bool
	}{
		{"token: no header", "127.0.0.1:8080", token, false, "", 401, true},
		{"token: wrong", "127.0.0.1:8080", token, false, "Bearer nope", 401, true},
		{"token: prefix of right", "127.0.0.1:8080", token, false, "Bearer s3cret", 401, true},
		{"token: wrong scheme", "127.0.0.1:8080", token, false, "Basic " + token, 401, true},
		{"token: right", "127.0.0.1:8080", token, false, "Bearer " + token, 202, false},
		{"token: right on non-loopback", "0.0.0.0:8080", token, false, "Bearer " + token, 202, false},
		{"no token, loopback", "127.0.0.1:8080", "", false, "", 202, false},
		{"no token, localhost", "localhost:8080", "", false, "", 202, false},
		{"no token, ::1", "[::1]:8080", "", false, "", 202, false},
		{"no token, wildcard host", ":8080", "", false, "", 401, true},
		{"no token, non-loopback", "0.0.0.0:8080", "", false, "", 401, true},
		{"no token, non-loopback, dev insecure", "0.0.0.0:8080", "", true, "", 202, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.HTTPAddr, cfg.AdminToken = tc.httpAddr, tc.token
			getenv := env()
			if tc.insecure {
				getenv = env(EnvDevInsecure, "1")
			}
			fs := &fakeServices{}
			fs.set(allRunning()...)
			n := start(t, Options{Config: func() *config.Config { return cfg }, Getenv: getenv, Services: fs})
			hdr := map[string]string{}
			if tc.header != "" {
				hdr["Authorization"] = tc.header
			}
			r := n.do(t, "POST", "/api/v1/services/storage/restart", hdr, "")
			if r.code != tc.code {
				t.Fatalf("code = %d, want %d: %s", r.code, tc.code, r.body)
			}
			if got := r.header.Get("WWW-Authenticate"); tc.wwwAuth != strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			if tc.code == 401 {
				var e httpx.ErrorBody
				r.json(t, &e)
				if e.Code != "unauthorized" || len(fs.Calls()) != 0 {
					t.Errorf("body %s, calls %v", r.body, fs.Calls())
				}
			}
			// GET status needs the same credentials as a POST once a token
			// is set (SPEC §5); without one it is open.
			want := 200
			if tc.token != "" && tc.code != 202 {
				want = 401
			}
			if r := n.do(t, "GET", "/api/v1/status", hdr, ""); r.code != want {
				t.Errorf("GET status = %d, want %d", r.code, want)
			}
			// So do the logs (a child's output may carry secrets).
			if r := n.do(t, "GET", "/api/v1/services/storage/logs", hdr, ""); (r.code == 401) != (want == 401) {
				t.Errorf("GET logs = %d, want 401 exactly when status is", r.code)
			}
			// And the peer table (no overlay here: 503 once past auth).
			if r := n.do(t, "GET", "/api/v1/peers", hdr, ""); (r.code == 401) != (want == 401) {
				t.Errorf("GET peers = %d, want 401 exactly when status is", r.code)
			}
		})
	}
}

// A reload can rotate the token: the config in force decides.
func TestAuthTokenFollowsConfig(t *testing.T) {
	cfg := testConfig()
	cfg.AdminToken = "old"
	var cur atomic.Pointer[config.Config]
	cur.Store(cfg)
	n := start(t, Options{Config: cur.Load,
		Reload: func(context.Context) (ReloadResult, error) {
			next := *cur.Load()
			next.AdminToken = "new"
			cur.Store(&next)
			return ReloadResult{Changed: []string{"admin_token"}, Applied: []string{"admin_token"}}, nil
		}})
	if r := n.do(t, "POST", "/api/v1/reload", map[string]string{"Authorization": "Bearer old"}, ""); r.code != 200 {
		t.Fatalf("reload: %d %s", r.code, r.body)
	}
	if r := n.do(t, "POST", "/api/v1/reload", map[string]string{"Authorization": "Bearer old"}, ""); r.code != 401 {
		t.Fatalf("old token after rotation: %d", r.code)
	}
	if r := n.do(t, "POST", "/api/v1/reload", map[string]string{"Authorization": "Bearer new"}, ""); r.code != 200 {
		t.Fatalf("new token: %d", r.code)
	}
}

// The real bind decides: a loopback config served on a wildcard listener
// refuses unauthenticated POSTs.
func TestServeOnNonLoopbackListenerRefusesPOST(t *testing.T) {
	cfg := testConfig()
	s, err := New(Options{Config: func() *config.Config { return cfg }, Getenv: env(), Shutdown: func() {}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skipf("cannot listen on the wildcard address: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	defer func() {
		_ = s.Shutdown(context.Background())
		<-done
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Post("http://127.0.0.1:"+port+"/api/v1/shutdown", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("code = %d", resp.StatusCode)
	}
}

func TestStartupWarnings(t *testing.T) {
	tests := []struct {
		name, addr, token string
		insecure          bool
		want              string
		level             string
	}{
		{"loopback, no token", "127.0.0.1:8080", "", false, "admin_token is not set: POST routes are open", "[WARN]"},
		{"wildcard, no token", ":8080", "", false, "POST routes are refused (401)", "[WARN]"},
		{"wildcard, insecure", ":8080", "", true, "INSECURE", "[ERROR]"},
		{"token", ":8080", "t", false, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf strings.Builder
			log := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info})
			cfg := testConfig()
			cfg.HTTPAddr, cfg.AdminToken = tc.addr, tc.token
			getenv := env()
			if tc.insecure {
				getenv = env(EnvDevInsecure, "1")
			}
			if _, err := New(Options{Config: func() *config.Config { return cfg }, Logger: log, Getenv: getenv}); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if tc.want == "" {
				if out != "" {
					t.Errorf("unexpected log: %s", out)
				}
				return
			}
			if !strings.Contains(out, tc.want) || !strings.Contains(out, tc.level) || strings.Count(out, "\n") != 1 {
				t.Errorf("log = %q", out)
			}
		})
	}
}

func TestServerTimeoutsFromConfig(t *testing.T) {
	cfg := testConfig()
	cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout = config.Duration(3*time.Second), config.Duration(7*time.Second), config.Duration(time.Minute)
	s, err := New(Options{Config: func() *config.Config { return cfg }})
	if err != nil {
		t.Fatal(err)
	}
	if s.srv.ReadTimeout != 3*time.Second || s.srv.WriteTimeout != 7*time.Second || s.srv.IdleTimeout != time.Minute ||
		s.srv.ReadHeaderTimeout != 3*time.Second {
		t.Errorf("server timeouts: %+v", s.srv)
	}
	cfg.ReadTimeout = config.Duration(time.Minute)
	if s, _ = New(Options{Config: func() *config.Config { return cfg }}); s.srv.ReadHeaderTimeout != DefaultReadHeaderTimeout {
		t.Errorf("ReadHeaderTimeout = %v", s.srv.ReadHeaderTimeout)
	}
}

// tokenEqual compares fixed-length digests: same answers as a plain
// comparison, whatever the lengths.
func TestTokenEqual(t *testing.T) {
	tests := []struct {
		got, want string
		ok        bool
	}{
		{"s3cret-token", "s3cret-token", true},
		{"s3cret-tokeN", "s3cret-token", false},
		{"s3cret", "s3cret-token", false},
		{"s3cret-token-and-more", "s3cret-token", false},
		{"", "s3cret-token", false},
		{"s3cret-token", "", false},
		{"", "", true},
	}
	for _, tc := range tests {
		if got := tokenEqual(tc.got, tc.want); got != tc.ok {
			t.Errorf("tokenEqual(%q, %q) = %v", tc.got, tc.want, got)
		}
	}
}

// lockedBuffer is an io.Writer safe for a logger and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Serve logs one "admin plane listening" line with the bound address and
// whether TLS and auth are on.
func TestListeningLogLine(t *testing.T) {
	certFile, keyFile, _ := testutil.SelfSignedCert(t)
	tests := []struct {
		name  string
		token string
		tls   bool
		auth  string
	}{
		{"token, plain", "t", false, "token"},
		{"no token, loopback, tls", "", true, "open-loopback"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf lockedBuffer
			log := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info, JSONFormat: true})
			cfg := testConfig()
			cfg.AdminToken = tc.token
			if tc.tls {
				cfg.AdminTLS = config.TLS{Cert: certFile, Key: keyFile}
			}
			n := start(t, Options{Config: func() *config.Config { return cfg }, Logger: log})
			addr := strings.TrimPrefix(n.url, "http://")
			var lines []map[string]any
			testutil.Eventually(t, 5*time.Second, "the listening log line", func() bool {
				lines = lines[:0]
				for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
					var m map[string]any
					if json.Unmarshal([]byte(l), &m) == nil && m["@message"] == "admin plane listening" {
						lines = append(lines, m)
					}
				}
				return len(lines) > 0
			})
			if len(lines) != 1 {
				t.Fatalf("%d listening lines: %s", len(lines), buf.String())
			}
			l := lines[0]
			if l["addr"] != addr || l["tls"] != tc.tls || l["auth"] != tc.auth || l["client_cert"] != false {
				t.Errorf("listening line = %v, want addr %s tls %v auth %s", l, addr, tc.tls, tc.auth)
			}
		})
	}
}
