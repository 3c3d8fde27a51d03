package overlay

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestKeyFromDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir}
	k1, err := loadKey(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := loadKey(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equals(k2) {
		t.Fatal("a second start got another key: the node id would change")
	}
	if st, err := os.Stat(filepath.Join(dir, KeyFileName)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", st, err)
	}
	k3, err := loadKey(Config{DataDir: dir, Amnesia: true})
	if err != nil || k3.Equals(k1) {
		t.Fatalf("amnesia must make a fresh key: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	const boot = "/ip4/127.0.0.1/tcp/9101/p2p/12D3KooWLshGXMHJFPSRnfP76N1kN8KBCwceKjvaUdk1VRX7717i"
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" = valid
	}{
		{"amnesia alone", []string{"--amnesia"}, ""},
		{"identity file", []string{"--identity-file", "/dev/fd/3"}, ""},
		{"no key source", nil, "no node key"},
		{"bootstrap without /p2p", []string{"--amnesia", "--bootstrap", "/ip4/127.0.0.1/tcp/1"}, "--bootstrap"},
		{"bootstrap list", []string{"--amnesia", "--bootstrap", boot + "," + boot}, ""},
		{"announce with /p2p", []string{"--amnesia", "--announce", boot}, "leave out /p2p"},
		{"bad listen", []string{"--amnesia", "--p2p-listen", "tcp://0.0.0.0:1"}, "--p2p-listen"},
		{"chunk over frame", []string{"--amnesia", "--max-frame-bytes", "2048", "--chunk-bytes", "4096"}, "--chunk-bytes"},
		{"tiny frame", []string{"--amnesia", "--max-frame-bytes", "10"}, "--max-frame-bytes"},
		{"storage url scheme", []string{"--amnesia", "--storage-url", "ftp://x"}, "--storage-url"},
		{"no dht", []string{"--amnesia", "--dht-url", ""}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			c.RegisterFlags(fs)
			amnesia := fs.Bool("amnesia", false, "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			c.Amnesia = *amnesia
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs)
	_ = fs.Parse([]string{"--p2p-listen", "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1", "--p2p-listen", "/ip6/::1/tcp/0"})
	if want := []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1", "/ip6/::1/tcp/0"}; !slices.Equal(c.P2PListen, want) {
		t.Fatalf("P2PListen = %v, want %v", c.P2PListen, want)
	}
}
