package overlay

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/macronode/macronode/pkg/planes/overlay/oap"
)

// KeyFileName is the node key's file under the data dir when no
// --identity-file is given.
const KeyFileName = "node.key"

// Production defaults.
const (
	DefaultP2PListen         = "/ip4/127.0.0.1/tcp/0"
	DefaultStorageURL        = "http://127.0.0.1:9300"
	DefaultDHTURL            = "http://127.0.0.1:9200"
	DefaultMaxFrameBytes     = 1 << 20
	DefaultChunkBytes        = 64 << 10
	DefaultFetchTimeout      = 10 * time.Second
	DefaultIOIdleTimeout     = 30 * time.Second
	DefaultMaxStreamsPerPeer = 16
	DefaultMaxFetchesPerPeer = 4
	DefaultMaxPeers          = 64
	DefaultRepublish         = time.Minute
	DefaultPoll              = time.Second
	DefaultDialTick          = time.Second
	DefaultPingInterval      = 15 * time.Second
	DefaultPeerTTL           = 10 * time.Minute
)

// Config holds the overlay plane's settings. Amnesia comes from the runtime;
// the rest from RegisterFlags. Zero values mean "use the default".
type Config struct {
	IdentityFile string   // node key file (e.g. /dev/fd/4)
	Amnesia      bool     // without IdentityFile: a fresh key in memory
	DataDir      string   // without IdentityFile or Amnesia: the key is DataDir/node.key
	P2PListen    []string // multiaddrs the libp2p host listens on
	Bootstrap    []string // multiaddrs ending in /p2p/<node id>
	Announce     []string // advertised instead of the listen addrs (no /p2p)
	StorageURL   string   // this node's storage plane, which serves OAP fetches
	DHTURL       string   // this node's DHT plane, polled for the node record; "" = none
	Version      string   // reported in the node record and identify's agent

	MaxFrameBytes     int           // largest OAP frame accepted (and announced in HELLO)
	ChunkBytes        int           // largest DATA frame sent
	FetchTimeout      time.Duration // per peer: dial, handshake and the first answer
	IOIdleTimeout     time.Duration // an OAP stream or HTTP response that stalls this long is cut
	MaxStreamsPerPeer int           // concurrent inbound OAP streams per peer
	MaxFetchesPerPeer int           // concurrent GET_BLOBs served per peer
	MaxPeers          int           // connections kept to peers learned by gossip

	RepublishInterval time.Duration // gossip the own record again
	PollInterval      time.Duration // re-check own addrs and the DHT plane
	DialTick          time.Duration // how often dial targets are checked
	PingInterval      time.Duration // RTT measurement of connected peers
	PeerTTL           time.Duration // a disconnected peer not heard of for this long is forgotten
}

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag struct{ dst *[]string }

func (l listFlag) String() string {
	if l.dst == nil {
		return ""
	}
	return strings.Join(*l.dst, ",")
}

func (l listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l.dst = append(*l.dst, s)
		}
	}
	return nil
}

// RegisterFlags registers the overlay plane's own flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.IdentityFile, "identity-file", "",
		"node key `file` (the parent passes /dev/fd/4, after its listener on fd 3); without it: --amnesia makes a fresh key in memory, else <data-dir>/"+KeyFileName+" is used (created, 0600, if missing)")
	fs.Var(listFlag{&c.P2PListen}, "p2p-listen",
		"`multiaddr` the libp2p host listens on (repeatable or comma list; default "+DefaultP2PListen+")")
	fs.Var(listFlag{&c.Bootstrap}, "bootstrap",
		"bootstrap peer `multiaddr` ending in /p2p/<node id> (repeatable or comma list); reconnected with backoff")
	fs.Var(listFlag{&c.Announce}, "announce",
		"`multiaddr` to advertise instead of the listen addresses (NAT, Kubernetes; repeatable or comma list)")
	fs.StringVar(&c.StorageURL, "storage-url", DefaultStorageURL, "`URL` of this node's storage plane, which serves blobs to peers")
	fs.StringVar(&c.DHTURL, "dht-url", DefaultDHTURL, "`URL` of this node's DHT plane, polled for the node record (empty: none)")
	fs.IntVar(&c.MaxFrameBytes, "max-frame-bytes", DefaultMaxFrameBytes, "largest OAP frame accepted, in bytes (1048576 = 1 MiB)")
	fs.IntVar(&c.ChunkBytes, "chunk-bytes", DefaultChunkBytes, "largest DATA frame sent, in bytes (65536 = 64 KiB)")
}

// Validate reports what is wrong with the settings (after defaults are
// filled in), naming the flags.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults fills zero fields and validates the rest.
func (c Config) withDefaults() (Config, error) {
	if len(c.P2PListen) == 0 {
		c.P2PListen = []string{DefaultP2PListen}
	}
	setDefault(&c.MaxFrameBytes, DefaultMaxFrameBytes)
	setDefault(&c.ChunkBytes, DefaultChunkBytes)
	setDefault(&c.MaxStreamsPerPeer, DefaultMaxStreamsPerPeer)
	setDefault(&c.MaxFetchesPerPeer, DefaultMaxFetchesPerPeer)
	setDefault(&c.MaxPeers, DefaultMaxPeers)
	setDefault(&c.FetchTimeout, DefaultFetchTimeout)
	setDefault(&c.IOIdleTimeout, DefaultIOIdleTimeout)
	setDefault(&c.RepublishInterval, DefaultRepublish)
	setDefault(&c.PollInterval, DefaultPoll)
	setDefault(&c.DialTick, DefaultDialTick)
	setDefault(&c.PingInterval, DefaultPingInterval)
	setDefault(&c.PeerTTL, DefaultPeerTTL)

	var errs []error
	if c.IdentityFile == "" && !c.Amnesia && c.DataDir == "" {
		errs = append(errs, errors.New("no node key: give --identity-file, --data-dir or --amnesia"))
	}
	if c.MaxFrameBytes < oap.MinMaxFrame || c.MaxFrameBytes > 16<<20 {
		errs = append(errs, fmt.Errorf("--max-frame-bytes %d: want %d..%d", c.MaxFrameBytes, oap.MinMaxFrame, 16<<20))
	}
	if c.ChunkBytes < 1 || c.ChunkBytes > c.MaxFrameBytes {
		errs = append(errs, fmt.Errorf("--chunk-bytes %d: want 1..--max-frame-bytes (%d)", c.ChunkBytes, c.MaxFrameBytes))
	}
	for _, s := range c.P2PListen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			errs = append(errs, fmt.Errorf("--p2p-listen %q: %w", s, err))
		}
	}
	for _, s := range c.Announce {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--announce %q: %w", s, err))
		} else if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
			errs = append(errs, fmt.Errorf("--announce %q: leave out /p2p/<id>", s))
		}
	}
	for _, s := range c.Bootstrap {
		if _, err := peer.AddrInfoFromString(s); err != nil {
			errs = append(errs, fmt.Errorf("--bootstrap %q: want a multiaddr ending in /p2p/<node id>: %w", s, err))
		}
	}
	for _, f := range []struct{ name, url string }{{"--storage-url", c.StorageURL}, {"--dht-url", c.DHTURL}} {
		if f.url == "" {
			continue
		}
		if u, err := url.Parse(f.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q: want http(s)://host:port", f.name, f.url))
		}
	}
	if c.StorageURL == "" {
		errs = append(errs, errors.New("--storage-url must not be empty"))
	}
	return c, errors.Join(errs...)
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
