package gateway

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestConfig(t *testing.T) {
	var c Config
	fs := flagSet()
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--storage-addr", "127.0.0.1:9300", "--mailbox-addr", "http://127.0.0.1:9500",
		"--rate", "5", "--backend-timeout", "2s", "--max-object-bytes", "1000", "--io-idle-timeout", "90s",
		"--dht-url", "http://127.0.0.1:9200", "--overlay-url", "http://127.0.0.1:9100", "--fetch-timeout", "3s",
		"--trusted-proxies", "10.0.0.0/8, 192.168.0.1", "--trusted-proxies", "::1"}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"storage": "127.0.0.1:9300", "mailbox": "http://127.0.0.1:9500"}; !maps.Equal(c.Backends, want) {
		t.Fatalf("backends %v, want %v", c.Backends, want)
	}
	if !slices.Equal(c.TrustedProxies, []string{"10.0.0.0/8", "192.168.0.1", "::1"}) {
		t.Fatalf("trusted proxies %q", c.TrustedProxies)
	}
	if c.DHTURL != "http://127.0.0.1:9200" || c.OverlayURL != "http://127.0.0.1:9100" || c.FetchTimeout != 3*time.Second {
		t.Fatalf("remote flags: %+v", c)
	}
	if c.Rate != 5 || c.Burst != DefaultBurst || c.BackendTimeout != 2*time.Second ||
		c.MaxObjectBytes != 1000 || c.MaxBodyBytes != DefaultMaxBodyBytes || c.RequestTimeout != DefaultRequestTimeout ||
		c.IOIdleTimeout != 90*time.Second {
		t.Fatalf("parsed config %+v", c)
	}
	for _, bad := range []Config{
		{Backends: map[string]string{"storage": "ftp://x:1"}},
		{Backends: map[string]string{"index": "http://"}},
		{Backends: map[string]string{"mailbox": "http://h:1/?q=1"}},
		{FetchTimeout: -time.Second},
		{Backends: map[string]string{"storage": "h:1"}, DHTURL: "h:2", OverlayURL: "http://h:3"},
		{MaxBodyBytes: -1},
		{Rate: 5, Burst: -1},
		{BackendTimeout: -time.Second},
		{IOIdleTimeout: -time.Second},
	} {
		if s, err := New(bad, nil, nil); err == nil {
			_ = s.Close()
			t.Errorf("New(%+v) succeeded", bad)
		}
	}
	reg := prometheus.NewRegistry()
	s, err := New(Config{}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := New(Config{}, nil, reg); err == nil {
		t.Fatal("double metric registration succeeded")
	}
}

// gateway_rate 0 is "off" (SPEC §3): the parent passes --rate 0 --burst 0,
// which must not fall back to the defaults.
func TestRateFlagZeroIsOff(t *testing.T) {
	for _, tc := range []struct {
		args []string
		off  bool
	}{
		{[]string{"--rate", "0", "--burst", "0"}, true},
		{[]string{"--rate", "0"}, true},
		{nil, false},
		{[]string{"--rate", "5", "--burst", "1"}, false},
	} {
		var c Config
		fs := flagSet()
		c.RegisterFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		s, err := New(c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if off := s.limiter == nil; off != tc.off {
			t.Errorf("%v: rate limit off = %v, want %v", tc.args, off, tc.off)
		}
		_ = s.Close()
	}
}

func TestMaxProcs(t *testing.T) {
	for _, tc := range []struct {
		flag   int
		env    string
		numCPU int
		want   int
	}{
		{0, "", 1, 1},
		{0, "", 2, 1},
		{0, "", 3, 1},
		{0, "", 8, 4},
		{0, "2", 8, 0}, // the environment's value stays
		{3, "2", 8, 3}, // the flag wins
		{5, "", 2, 5},
	} {
		if got := maxProcs(tc.flag, tc.env, tc.numCPU); got != tc.want {
			t.Errorf("maxProcs(%d, %q, %d) = %d, want %d", tc.flag, tc.env, tc.numCPU, got, tc.want)
		}
	}
	if _, err := New(Config{MaxProcs: -1}, nil, nil); err == nil {
		t.Error("New accepted --max-procs -1")
	}
}
