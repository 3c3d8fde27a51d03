package httpx

import (
	"container/list"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// IPLimiter is a token-bucket rate limit per client: an IPv4 address, or an
// IPv6 /64 (one host usually owns a whole /64, so counting its addresses
// apart would multiply its rate). Buckets are kept in least-recently-used
// order: each Allow is O(1), a full table forgets its least recently seen
// client, and buckets idle long enough to have refilled are forgotten a few
// at a time, so memory stays bounded by the recently active clients.
type IPLimiter struct {
	rps   rate.Limit
	burst int
	max   int              // most buckets kept
	idle  time.Duration    // a bucket unused this long is forgotten
	now   func() time.Time // the clock; tests replace it

	mu      sync.Mutex
	clients map[string]*list.Element // key -> element holding *ipBucket
	lru     *list.List               // front: most recently seen
}

type ipBucket struct {
	key  string
	lim  *rate.Limiter
	seen time.Time
}

const (
	// maxClients bounds memory: past it, the least recently seen client's
	// bucket is dropped.
	maxClients = 65536
	// minIdle is how long an unused bucket is kept at least.
	minIdle = 3 * time.Minute
	// maxIdle caps the idle time of very slow rates.
	maxIdle = 24 * time.Hour
	// gcPerCall bounds the idle buckets one Allow forgets, so no call
	// pays for a sweep of the table.
	gcPerCall = 4
)

// NewIPLimiter allows rps requests per second per client, with bursts of
// burst. rps <= 0 disables the limit.
func NewIPLimiter(rps float64, burst int) *IPLimiter {
	return newIPLimiter(rps, burst, maxClients)
}

func newIPLimiter(rps float64, burst, maxN int) *IPLimiter {
	if burst < 1 {
		burst = 1
	}
	// Forgetting a bucket hands its client a full one, so a bucket is kept
	// at least until it would have refilled anyway.
	idle := minIdle
	if rps > 0 {
		if refill := float64(burst) / rps; refill > idle.Seconds() {
			idle = time.Duration(min(refill, maxIdle.Seconds()) * float64(time.Second))
		}
	}
	return &IPLimiter{rps: rate.Limit(rps), burst: burst, max: max(maxN, 1), idle: idle, now: time.Now,
		clients: make(map[string]*list.Element), lru: list.New()}
}

// Allow reports whether a request from ip may proceed now.
func (l *IPLimiter) Allow(ip string) bool {
	if l == nil || l.rps <= 0 {
		return true
	}
	key := clientKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.forgetIdle(now)
	var b *ipBucket
	if e, ok := l.clients[key]; ok {
		b = e.Value.(*ipBucket)
		l.lru.MoveToFront(e)
	} else {
		if l.lru.Len() >= l.max {
			l.drop(l.lru.Back())
		}
		b = &ipBucket{key: key, lim: rate.NewLimiter(l.rps, l.burst)}
		l.clients[key] = l.lru.PushFront(b)
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}

// forgetIdle drops up to gcPerCall buckets idle for l.idle, from the least
// recently seen end; the list is ordered by last use, so it stops at the
// first one still in use.
func (l *IPLimiter) forgetIdle(now time.Time) {
	for range gcPerCall {
		e := l.lru.Back()
		if e == nil || now.Sub(e.Value.(*ipBucket).seen) <= l.idle {
			return
		}
		l.drop(e)
	}
}

func (l *IPLimiter) drop(e *list.Element) {
	delete(l.clients, e.Value.(*ipBucket).key)
	l.lru.Remove(e)
}

// size is the number of buckets kept.
func (l *IPLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// clientKey names the bucket of ip: an IPv4 address itself (IPv4-mapped
// IPv6 included), an IPv6 address by its /64 ("2001:db8::/64"). Anything
// that does not parse as an address keys by its own text.
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
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
