package admin

import (
	"math"
	"net/http"

	"golang.org/x/time/rate"

	"github.com/macronode/macronode/pkg/httpx"
)

// Rate limit defaults for Options fields left zero.
const (
	DefaultRateLimit = 100 // requests per second, API routes of the whole admin plane
	DefaultRateBurst = 200
	// DefaultPerIPRateLimit limits each client IP on the API routes
	// (requests per second); the burst defaults to twice the rate.
	DefaultPerIPRateLimit = 50
	// DefaultProbeRateLimit limits each client IP on the probe routes
	// (GET /healthz, /readyz, /metrics, /version): generous, since they
	// must stay answerable; the burst defaults to twice the rate.
	DefaultProbeRateLimit = 500
)

// probePaths are the cheap routes that must stay answerable under load: a
// flood of the API cannot make probes and scrapes fail. They skip the global
// limiter and have their own per-IP buckets.
var probePaths = map[string]bool{
	"/healthz": true,
	"/readyz":  true,
	"/metrics": true,
	"/version": true,
}

// isProbe reports whether r is a GET (or HEAD) of a probe route.
func isProbe(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && probePaths[r.URL.Path]
}

// limiters holds the admin plane's three token buckets.
type limiters struct {
	global *rate.Limiter    // API routes, whole plane
	perIP  *httpx.IPLimiter // API routes, per client IP; nil when disabled
	probe  *httpx.IPLimiter // probe routes, per client IP; nil when disabled
}

// newLimiters applies the defaults of Options' rate fields: zero means the
// default, negative means unlimited.
func newLimiters(o Options) limiters {
	var l limiters
	switch {
	case o.RateLimit < 0:
		l.global = rate.NewLimiter(rate.Inf, 0)
	default:
		rps, burst := o.RateLimit, o.RateBurst
		if rps == 0 {
			rps = DefaultRateLimit
		}
		if burst <= 0 {
			burst = DefaultRateBurst
		}
		l.global = rate.NewLimiter(rate.Limit(rps), burst)
	}
	l.perIP = ipLimiter(o.PerIPRateLimit, o.PerIPRateBurst, DefaultPerIPRateLimit)
	l.probe = ipLimiter(o.ProbeRateLimit, 0, DefaultProbeRateLimit)
	return l
}

// ipLimiter builds a per-IP limiter: rps 0 means def, negative disables;
// burst <= 0 means twice the rate (at least 1).
func ipLimiter(rps float64, burst int, def float64) *httpx.IPLimiter {
	if rps < 0 {
		return nil
	}
	if rps == 0 {
		rps = def
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(2*rps)))
	}
	return httpx.NewIPLimiter(rps, burst)
}

// rateLimit routes probes through their own per-IP buckets only, and API
// requests through the per-IP bucket first (so one client's flood is
// refused before it drains the shared bucket), then the global one.
func (s *Server) rateLimit(next http.Handler) http.Handler {
	global := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.limits.global.Allow() {
			w.Header().Set("Retry-After", "1")
			httpx.Error(w, http.StatusTooManyRequests, "", "admin plane rate limit exceeded")
			return
		}
		next.ServeHTTP(w, r)
	})
	api := http.Handler(global)
	if s.limits.perIP != nil {
		api = s.limits.perIP.Middleware(global)
	}
	probe := next
	if s.limits.probe != nil {
		probe = s.limits.probe.Middleware(next)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isProbe(r) {
			probe.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
