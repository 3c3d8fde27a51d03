package node

import (
	"slices"
	"testing"
)

// TestSpecsArgsPerPlane checks, plane by plane, the flags built from the
// config: present with their values, or absent.
func TestSpecsArgsPerPlane(t *testing.T) {
	cfg := load(t,
		"RON_IO_IDLE_TIMEOUT=45s", "RON_FETCH_TIMEOUT=7s", "RON_GATEWAY_MAX_CONNS=99",
		"RON_GATEWAY_RATE=0.5", "RON_GATEWAY_BURST=3", "RON_GATEWAY_TRUSTED_PROXIES=10.0.0.0/8,192.168.0.1",
		"RON_BOOTSTRAP=/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWLRPJAA5o6N3Xj4ZNbNJA4hvVvRqpbVNXwFP2ZuJJw4fS",
		"RON_ANNOUNCE=/ip4/10.0.0.1/tcp/9101,/dns4/node.example/tcp/9101",
		"RON_OVERLAY_P2P_ADDR=/ip4/127.0.0.1/tcp/7101",
		"RON_DHT_REPROVIDE_INTERVAL=1h", "RON_OAP_MAX_FRAME_BYTES=2MiB")
	byName := map[string][]string{}
	for _, s := range Specs(cfg) {
		byName[s.Name] = s.Args
	}
	const absent = "\x00absent"
	tests := []struct {
		plane, flag string
		want        []string // every value of flag, in order; {absent}: not passed
	}{
		{"storage", "--io-idle-timeout", []string{"45s"}},
		{"index", "--io-idle-timeout", []string{"45s"}},
		{"mailbox", "--io-idle-timeout", []string{"45s"}},
		{"gateway", "--io-idle-timeout", []string{"45s"}},
		{"overlay", "--io-idle-timeout", []string{absent}},
		{"gateway", "--max-conns", []string{"99"}},
		{"gateway", "--rate", []string{"0.5"}},
		{"gateway", "--burst", []string{"3"}},
		{"gateway", "--fetch-timeout", []string{"7s"}},
		{"gateway", "--trusted-proxies", []string{"10.0.0.0/8,192.168.0.1"}},
		{"storage", "--trusted-proxies", []string{absent}},
		{"gateway", "--dht-url", []string{"http://127.0.0.1:9200"}},
		{"gateway", "--overlay-url", []string{"http://127.0.0.1:9100"}},
		{"gateway", "--storage-addr", []string{"127.0.0.1:9300"}},
		{"gateway", "--index-addr", []string{"127.0.0.1:9400"}},
		{"gateway", "--mailbox-addr", []string{"127.0.0.1:9500"}},
		{"gateway", "--dht-addr", []string{absent}},
		{"overlay", "--p2p-listen", []string{"/ip4/127.0.0.1/tcp/7101"}},
		{"overlay", "--bootstrap", []string{"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWLRPJAA5o6N3Xj4ZNbNJA4hvVvRqpbVNXwFP2ZuJJw4fS"}},
		{"overlay", "--announce", []string{"/ip4/10.0.0.1/tcp/9101", "/dns4/node.example/tcp/9101"}},
		{"overlay", "--storage-url", []string{"http://127.0.0.1:9300"}},
		{"overlay", "--dht-url", []string{"http://127.0.0.1:9200"}},
		{"overlay", "--max-frame-bytes", []string{"2097152"}},
		{"overlay", "--chunk-bytes", []string{"65536"}},
		{"dht", "--p2p-listen", []string{"/ip4/0.0.0.0/tcp/9201", "/ip4/0.0.0.0/udp/9201/quic-v1"}},
		{"dht", "--announce", []string{"/ip4/10.0.0.1/tcp/9101", "/dns4/node.example/tcp/9101"}},
		{"dht", "--overlay-url", []string{"http://127.0.0.1:9100"}},
		{"dht", "--storage-url", []string{"http://127.0.0.1:9300"}},
		{"dht", "--reprovide-interval", []string{"1h0m0s"}},
		{"dht", "--bootstrap", []string{absent}},
	}
	for _, tc := range tests {
		args, ok := byName[tc.plane]
		if !ok {
			t.Fatalf("no spec for %s", tc.plane)
		}
		got := argValues(args, tc.flag)
		if len(got) == 0 {
			got = []string{absent}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %s = %q, want %q", tc.plane, tc.flag, got, tc.want)
		}
	}
}

// Planes that are off are not handed to the planes that would call them.
func TestSpecsURLsOnlyForEnabledPlanes(t *testing.T) {
	cfg := load(t, "RON_SERVICES=gateway,storage,overlay")
	for _, s := range Specs(cfg) {
		for _, f := range []string{"--dht-url", "--index-addr", "--mailbox-addr"} {
			if v := argValues(s.Args, f); len(v) != 0 {
				t.Errorf("%s got %s %v with that plane off", s.Name, f, v)
			}
		}
		if s.Name == "gateway" && len(argValues(s.Args, "--overlay-url")) != 1 {
			t.Errorf("gateway lacks --overlay-url: %v", s.Args)
		}
	}
}

// argValues returns every value given to flag in args.
func argValues(args []string, flag string) []string {
	var out []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			out = append(out, args[i+1])
		}
	}
	return out
}

// TestAnnounceSplitByPort: each libp2p host advertises the announce entries
// on its own p2p ports; an entry on neither host's ports goes to both.
func TestAnnounceSplitByPort(t *testing.T) {
	cfg := load(t, "RON_ANNOUNCE=/dns4/n0.example/tcp/9101,/dns4/n0.example/udp/9101/quic-v1,"+
		"/dns4/n0.example/tcp/9201,/ip4/203.0.113.7/tcp/30101,/dns4/n0.example")
	tests := []struct {
		plane string
		want  []string
	}{
		{"overlay", []string{"/dns4/n0.example/tcp/9101", "/dns4/n0.example/udp/9101/quic-v1", "/ip4/203.0.113.7/tcp/30101", "/dns4/n0.example"}},
		{"dht", []string{"/dns4/n0.example/tcp/9201", "/ip4/203.0.113.7/tcp/30101", "/dns4/n0.example"}},
	}
	for _, tc := range tests {
		if got := announceFor(cfg, tc.plane); !slices.Equal(got, tc.want) {
			t.Errorf("announceFor(%s) = %q, want %q", tc.plane, got, tc.want)
		}
	}
}
