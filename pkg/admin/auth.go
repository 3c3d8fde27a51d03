package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/httpx"
)

// IsLoopbackAddr reports whether a host:port listen address binds only the
// loopback interface (config.IsLoopbackAddr).
func IsLoopbackAddr(addr string) bool { return config.IsLoopbackAddr(addr) }

// requireAuth guards a POST route (SPEC §5):
//   - admin_token set: `Authorization: Bearer <token>`, compared in constant
//     time, or the session cookie of POST /api/v1/login; missing or wrong
//     is 401 with WWW-Authenticate: Bearer.
//   - no token, loopback bind: allowed (a warning was logged at New).
//   - no token, other bind: 401, unless MACRONODE_DEV_INSECURE=1.
//
// The token is read from the config in force, so a reload can rotate it.
func (s *Server) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var token string
		if cfg := s.config(); cfg != nil {
			token = cfg.AdminToken
		}
		if token == "" {
			if s.loopback.Load() || s.insecure {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="macronode"`)
			httpx.Error(w, http.StatusUnauthorized, "",
				"admin_token is not set and the admin plane is not bound to loopback: set admin_token (RON_ADMIN_TOKEN) to use POST routes")
			return
		}
		got, ok := bearer(r.Header.Get("Authorization"))
		if !ok && s.hasSession(r, token) { // the status page's cookie (login.go)
			next.ServeHTTP(w, r)
			return
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="macronode"`)
			httpx.Error(w, http.StatusUnauthorized, "", "missing bearer token: send Authorization: Bearer <admin_token>")
			return
		}
		if !tokenEqual(got, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="macronode", error="invalid_token"`)
			httpx.Error(w, http.StatusUnauthorized, "", "invalid bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// metricsAuth guards GET /metrics: open while no admin token is set or
// metrics_public is true (the default, for scrapers without credentials);
// with metrics_public false it needs the token like any other read route.
func (s *Server) metricsAuth(next http.Handler) http.Handler {
	guarded := s.requireAuth(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg := s.config(); cfg == nil || cfg.AdminToken == "" || cfg.MetricsPublic {
			next.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// routeMux is the admin plane's mux, recording every pattern registered on
// it so that a test can walk all routes and check which need the token.
type routeMux struct {
	*httpx.Mux
	patterns []string
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.Mux.Handle(pattern, h)
}

func (m *routeMux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// tokenEqual compares a presented token with the configured one in constant
// time. It compares SHA-256 digests, which always have the same length:
// subtle.ConstantTimeCompare returns at once on a length mismatch, which
// would leak the token's length through timing.
func tokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// bearer extracts the credentials of an `Authorization: Bearer x` header;
// the scheme is case-insensitive (RFC 7235).
func bearer(h string) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

// adminTLS builds the admin listener's TLS config from admin_tls, or nil
// when TLS is off. A client CA makes client certificates mandatory.
// pq_mode "hybrid" prefers the X25519MLKEM768 key exchange; "off" excludes it.
func adminTLS(cfg *config.Config) (*tls.Config, error) {
	t := cfg.AdminTLS
	if t.Cert == "" && t.Key == "" && t.ClientCA == "" {
		return nil, nil
	}
	if t.Cert == "" || t.Key == "" {
		return nil, errors.New("admin: admin_tls: cert and key must be set together")
	}
	tc, err := httpx.ServerTLS(t.Cert, t.Key, cfg.PQMode)
	if err != nil {
		return nil, fmt.Errorf("admin: admin_tls: %w", err)
	}
	if t.ClientCA != "" {
		pem, err := os.ReadFile(t.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("admin: admin_tls: client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("admin: admin_tls: client_ca %s: no PEM certificate found", t.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
