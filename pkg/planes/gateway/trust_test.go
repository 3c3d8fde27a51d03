package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted, err := parseTrusted([]string{"10.0.0.0/8", "192.168.1.7", "::1", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"untrusted peer: its own address", "203.0.113.9:5000", []string{"1.2.3.4"}, "203.0.113.9"},
		{"trusted peer, one hop", "10.1.2.3:5000", []string{"1.2.3.4"}, "1.2.3.4"},
		{"trusted chain: rightmost untrusted", "10.1.2.3:5000", []string{"6.6.6.6, 1.2.3.4, 10.9.9.9"}, "1.2.3.4"},
		{"several header lines", "192.168.1.7:1", []string{"6.6.6.6", "1.2.3.4"}, "1.2.3.4"},
		{"trusted peer, no header", "10.1.2.3:5000", nil, "10.1.2.3"},
		{"all trusted: the leftmost", "10.1.2.3:5000", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"junk stops the walk", "10.1.2.3:5000", []string{"1.2.3.4, junk, 10.0.0.2"}, "10.0.0.2"},
		{"ipv6 peer", "[::1]:5000", []string{"2001:db8::1"}, "2001:db8::1"},
		{"v4-mapped entry", "[fd00::1]:5000", []string{"::ffff:1.2.3.4"}, "1.2.3.4"},
		{"single address is exact", "192.168.1.8:1", []string{"1.2.3.4"}, "192.168.1.8"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := trusted.clientIP(r); got != tc.want {
			t.Errorf("%s: clientIP = %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := parseTrusted([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad CIDR was accepted")
	}
}

func TestTrustedProxyChainAndRateLimit(t *testing.T) {
	be := fakeBackend(t, "index")
	for _, tc := range []struct {
		trusted []string
		wantXFF string
	}{
		{[]string{"127.0.0.1"}, "1.2.3.4, 127.0.0.1"},
		{[]string{"10.0.0.0/8"}, "127.0.0.1"},
		{nil, "127.0.0.1"},
	} {
		g := newGW(t, Config{Backends: map[string]string{"index": hostOf(be)}, TrustedProxies: tc.trusted})
		if got := g.get("/names/a", "X-Forwarded-For", "1.2.3.4").seen(t).Header.Get("X-Forwarded-For"); got != tc.wantXFF {
			t.Errorf("trusted %v: backend saw X-Forwarded-For %q, want %q", tc.trusted, got, tc.wantXFF)
		}
	}
	// Behind a trusted proxy each client has its own bucket.
	g := newGW(t, Config{Backends: map[string]string{"index": hostOf(be)}, TrustedProxies: []string{"127.0.0.0/8"}, Rate: 0.001, Burst: 1})
	for _, step := range []struct {
		client string
		want   int
	}{{"1.1.1.1", 200}, {"2.2.2.2", 200}, {"1.1.1.1", 429}} {
		if a := g.get("/names/a", "X-Forwarded-For", step.client); a.status != step.want {
			t.Errorf("client %s: %d, want %d", step.client, a.status, step.want)
		}
	}
	// From an untrusted forwarder X-Forwarded-For is ignored: every client
	// it claims shares the forwarder's own bucket.
	g = newGW(t, Config{Backends: map[string]string{"index": hostOf(be)}, TrustedProxies: []string{"10.0.0.0/8"}, Rate: 0.001, Burst: 1})
	for _, step := range []struct {
		client string
		want   int
	}{{"1.1.1.1", 200}, {"2.2.2.2", 429}} {
		if a := g.get("/names/a", "X-Forwarded-For", step.client); a.status != step.want {
			t.Errorf("untrusted forwarder, client %s: %d, want %d", step.client, a.status, step.want)
		}
	}
	if _, err := New(Config{TrustedProxies: []string{"nope"}}, nil, nil); err == nil {
		t.Error("New accepted a bad trusted proxy")
	}
}
