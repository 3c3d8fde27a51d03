package httpx

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestClientKey(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not-an-ip", "not-an-ip"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := clientKey(tc.ip); got != tc.want {
			t.Errorf("clientKey(%q) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}

func TestIPLimiterKeying(t *testing.T) {
	tests := []struct {
		name   string
		a, b   string
		shared bool
	}{
		{"v4 addresses apart", "10.0.0.1", "10.0.0.2", false},
		{"v4 and its mapped form", "10.0.0.1", "::ffff:10.0.0.1", true},
		{"v6 same /64", "2001:db8:0:1::1", "2001:db8:0:1:ffff::9", true},
		{"v6 other /64", "2001:db8:0:1::1", "2001:db8:0:2::1", false},
		{"v6 same /48 other /64", "2001:db8:0:1::1", "2001:db8:0:ff::1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewIPLimiter(0.001, 1) // one request, then limited for ~1000s
			if !l.Allow(tc.a) {
				t.Fatal("first request limited")
			}
			if got := l.Allow(tc.b); got == tc.shared {
				t.Fatalf("Allow(%s) after Allow(%s) = %v, want shared bucket %v", tc.b, tc.a, got, tc.shared)
			}
		})
	}
}

// fakeClock is a settable clock for the limiter.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestIPLimiterEvictsLeastRecentlyUsed(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := newIPLimiter(1, 1, 3)
	l.now = clk.now
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		if !l.Allow(ip) {
			t.Fatalf("%s limited on its first request", ip)
		}
	}
	l.Allow("10.0.0.1") // now the most recent; .2 is the least
	if !l.Allow("10.0.0.4") {
		t.Fatal("new client limited")
	}
	if n := l.size(); n != 3 {
		t.Fatalf("%d buckets kept, want the cap of 3", n)
	}
	// .1 and .3 kept their (empty) buckets; .2 was forgotten, so it
	// starts over with a full one.
	for ip, want := range map[string]bool{"10.0.0.1": false, "10.0.0.3": false} {
		if got := l.Allow(ip); got != want {
			t.Errorf("Allow(%s) = %v, want %v (its bucket should have been kept)", ip, got, want)
		}
	}
	if !l.Allow("10.0.0.2") {
		t.Error("least recently used client was not the one evicted")
	}
}

func TestIPLimiterForgetsIdleGradually(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := newIPLimiter(100, 10, 1000)
	l.now = clk.now
	for i := range 10 {
		l.Allow(fmt.Sprintf("10.0.0.%d", i))
	}
	clk.advance(time.Minute)
	l.Allow("10.0.1.1") // recent: must survive the sweep below
	clk.advance(minIdle)
	l.Allow("10.0.1.2")
	if n, want := l.size(), 10-gcPerCall+2; n != want {
		t.Fatalf("after one call %d buckets, want %d (at most %d forgotten per call)", n, want, gcPerCall)
	}
	for range 5 {
		l.Allow("10.0.1.2")
	}
	if n := l.size(); n != 2 {
		t.Fatalf("%d buckets left, want the 2 recent ones", n)
	}
}

func TestIPLimiterKeepsSlowBucketsUntilRefilled(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := newIPLimiter(0.001, 2, 100) // refills in 2000s, well past minIdle
	l.now = clk.now
	l.Allow("10.0.0.1")
	l.Allow("10.0.0.1")
	clk.advance(minIdle + time.Minute)
	l.Allow("10.0.0.9") // a sweep
	if l.Allow("10.0.0.1") {
		t.Fatal("an idle bucket was forgotten before it refilled, resetting the client's limit")
	}
}

// BenchmarkAllowFullMap measures Allow on a full table: a known client (hit)
// and a new one that evicts the least recently used (miss). Both must cost
// the same at 1Ki and 64Ki clients.
func BenchmarkAllowFullMap(b *testing.B) {
	for _, size := range []int{1 << 10, maxClients} {
		keys := make([]string, 2*size)
		base := netip.MustParseAddr("10.0.0.0")
		for i := range keys {
			keys[i] = base.String()
			base = base.Next()
		}
		for _, mode := range []string{"hit", "miss"} {
			b.Run(fmt.Sprintf("clients=%d/%s", size, mode), func(b *testing.B) {
				l := newIPLimiter(1e9, 1e9, size)
				for _, k := range keys[:size] {
					l.Allow(k)
				}
				i, n := 0, 0
				if mode == "miss" {
					i = size // the keys not in the table; each evicts the oldest
				}
				start := time.Now()
				for b.Loop() {
					if mode == "hit" {
						l.Allow(keys[i%size])
					} else {
						l.Allow(keys[i%len(keys)])
					}
					i++
					n++
				}
				b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(n), "ns/allow")
				if l.size() != size {
					b.Fatalf("table holds %d, want %d", l.size(), size)
				}
			})
		}
	}
}
