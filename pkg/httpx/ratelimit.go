package httpx

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// IPLimiter is a token-bucket rate limit per client IP. Idle buckets are
// forgotten so the map stays bounded by the number of recently active clients.
type IPLimiter struct {
	rps   rate.Limit
	burst int

	mu      sync.Mutex
	clients map[string]*ipBucket
	lastGC  time.Time
}

type ipBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxClients bounds memory: past it, the oldest idle buckets are dropped.
const maxClients = 65536

// NewIPLimiter allows rps requests per second per client IP, with bursts of
// burst. rps <= 0 disables the limit.
func NewIPLimiter(rps float64, burst int) *IPLimiter {
	if burst < 1 {
		burst = 1
	}
	return &IPLimiter{rps: rate.Limit(rps), burst: burst, clients: make(map[string]*ipBucket)}
}

// Allow reports whether a request from ip may proceed now.
func (l *IPLimiter) Allow(ip string) bool {
	if l == nil || l.rps <= 0 {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastGC) > time.Minute || len(l.clients) >= maxClients {
		for k, b := range l.clients {
			if now.Sub(b.seen) > 3*time.Minute || len(l.clients) >= maxClients {
				delete(l.clients, k)
			}
		}
		l.lastGC = now
	}
	b, ok := l.clients[ip]
	if !ok {
		b = &ipBucket{lim: rate.NewLimiter(l.rps, l.burst)}
		l.clients[ip] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}

// ClientIP is the remote address of r without its port.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Middleware answers 429 JSON with Retry-After when the client is over its rate.
func (l *IPLimiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.Allow(ClientIP(r)) {
			retry := 1
			if l.rps > 0 && l.rps < 1 {
				retry = int(1/float64(l.rps)) + 1
			}
			w.Header().Set("Retry-After", strconv.Itoa(retry))
			Error(w, http.StatusTooManyRequests, "", "rate limit exceeded")
			return
		}
		next.ServeHTTP(w, r)
	})
}
