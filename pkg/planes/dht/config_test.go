package dht

import (
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := Config{DataDir: "/tmp/x"}.withDefaults()
	tests := []struct {
		name string
		mod  func(*Config)
		want string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"amnesia without data dir", func(c *Config) { c.DataDir, c.Amnesia = "", true }, ""},
		{"no overlay or storage", func(c *Config) { c.OverlayURL, c.StorageURL = "", "" }, ""},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data dir"},
		{"no listen", func(c *Config) { c.P2PListen = []string{} }, "--p2p-listen"},
		{"bad listen", func(c *Config) { c.P2PListen = []string{"127.0.0.1:9201"} }, "--p2p-listen"},
		{"bad announce", func(c *Config) { c.Announce = []string{"nope"} }, "--announce"},
		{"overlay not http", func(c *Config) { c.OverlayURL = "ftp://127.0.0.1:1" }, "--overlay-url"},
		{"storage without host", func(c *Config) { c.StorageURL = "http://" }, "--storage-url"},
		{"reprovide too often", func(c *Config) { c.ReprovideInterval = time.Second }, "--reprovide-interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			c.OverlayURL, c.StorageURL = DefaultOverlayURL, DefaultStorageURL
			tc.mod(&c)
			err := c.validate()
			if tc.want == "" && err != nil {
				t.Fatalf("validate: %v, want ok", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("validate: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		args       []string
		wantListen []string
		wantAnnc   []string
	}{
		{nil, defaultP2PListen, nil},
		{[]string{"--p2p-listen", "/ip4/0.0.0.0/tcp/9201,/ip4/0.0.0.0/udp/9201/quic-v1"},
			[]string{"/ip4/0.0.0.0/tcp/9201", "/ip4/0.0.0.0/udp/9201/quic-v1"}, nil},
		{[]string{"--p2p-listen", "/ip4/0.0.0.0/tcp/1", "--p2p-listen", "/ip4/0.0.0.0/tcp/2", "--announce", "/dns4/a.example/tcp/1"},
			[]string{"/ip4/0.0.0.0/tcp/1", "/ip4/0.0.0.0/tcp/2"}, []string{"/dns4/a.example/tcp/1"}},
	}
	for _, tc := range tests {
		var c Config
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.P2PListen, tc.wantListen) || !slices.Equal(c.Announce, tc.wantAnnc) {
			t.Errorf("%v: listen %v announce %v; want %v %v", tc.args, c.P2PListen, c.Announce, tc.wantListen, tc.wantAnnc)
		}
	}
}
