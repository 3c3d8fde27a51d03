package dht

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// Production defaults for the plane-specific settings.
const (
	DefaultOverlayURL        = "http://127.0.0.1:9100"
	DefaultStorageURL        = "http://127.0.0.1:9300"
	DefaultReprovideInterval = 12 * time.Hour
	// DefaultBootstrapPoll is how often the overlay's peer table is read for
	// new DHT peers to connect to.
	DefaultBootstrapPoll = time.Second
	// DefaultRecordRefresh is how often the node's signed record is fetched
	// from the overlay and stored in the DHT again (also when it did not
	// change, so it outlives the DHT's record expiry).
	DefaultRecordRefresh = time.Minute
	// DefaultRefreshPeriod is kad-dht's routing-table refresh period.
	DefaultRefreshPeriod = 10 * time.Minute
	// DefaultLookupTimeout bounds one GET /dht/providers lookup.
	DefaultLookupTimeout = 10 * time.Second
	// DefaultListPageSize is the page size of the walk of storage's listing.
	DefaultListPageSize = 1000

	// KeyFile is the DHT host's own key under the data dir.
	KeyFile = "dht.key"
	// DatastoreDir is the pebble datastore under the data dir.
	DatastoreDir = "datastore"
)

// ErrConfig is wrapped by New for a bad setting (a usage error: the
// runtime exits 2 for it).
var ErrConfig = errors.New("bad dht configuration")

// defaultP2PListen is what a DHT run by hand listens on: loopback, ports
// picked by the kernel. The parent passes services.dht.p2p_listen.
var defaultP2PListen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// Config holds the DHT plane's settings. DataDir and Amnesia are filled by
// the runtime from the common flags; the rest come from RegisterFlags. Zero
// values of the tuning fields mean "use the default".
type Config struct {
	DataDir string // dht.key and the datastore live here (0700)
	Amnesia bool   // fresh key in memory, in-memory datastore

	P2PListen         []string      // libp2p listen multiaddrs
	Announce          []string      // advertised instead of the listen addrs when set
	OverlayURL        string        // the local overlay's HTTP API
	StorageURL        string        // the local storage plane's HTTP API
	ReprovideInterval time.Duration // how often every provided key is announced again

	BootstrapPoll time.Duration
	RecordRefresh time.Duration
	RefreshPeriod time.Duration
	LookupTimeout time.Duration
	ListPageSize  int
}

// multiFlag is a repeatable flag that also splits comma-separated values.
type multiFlag struct {
	vals *[]string
	set  bool
}

func (m *multiFlag) String() string {
	if m == nil || m.vals == nil {
		return ""
	}
	return strings.Join(*m.vals, ",")
}

func (m *multiFlag) Set(s string) error {
	if !m.set {
		*m.vals, m.set = nil, true
	}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*m.vals = append(*m.vals, v)
		}
	}
	return nil
}

// RegisterFlags registers the DHT plane's own flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.P2PListen = append([]string(nil), defaultP2PListen...)
	fs.Var(&multiFlag{vals: &c.P2PListen}, "p2p-listen",
		"libp2p `multiaddr` to listen on (repeatable or comma-separated; TCP and QUIC)")
	fs.Var(&multiFlag{vals: &c.Announce}, "announce",
		"`multiaddr` to advertise instead of the listen addresses (repeatable or comma-separated; NAT, Kubernetes)")
	fs.StringVar(&c.OverlayURL, "overlay-url", DefaultOverlayURL,
		"`URL` of the local overlay's HTTP API: DHT peers to bootstrap from and this node's signed record")
	fs.StringVar(&c.StorageURL, "storage-url", DefaultStorageURL,
		"`URL` of the local storage plane: every address it lists is provided after a start")
	fs.DurationVar(&c.ReprovideInterval, "reprovide-interval", DefaultReprovideInterval,
		"provider records are announced again this often (they expire after 48h)")
}

// withDefaults fills the zero tuning fields.
func (c Config) withDefaults() Config {
	if c.P2PListen == nil {
		c.P2PListen = append([]string(nil), defaultP2PListen...)
	}
	if c.ReprovideInterval == 0 {
		c.ReprovideInterval = DefaultReprovideInterval
	}
	if c.BootstrapPoll == 0 {
		c.BootstrapPoll = DefaultBootstrapPoll
	}
	if c.RecordRefresh == 0 {
		c.RecordRefresh = DefaultRecordRefresh
	}
	if c.RefreshPeriod == 0 {
		c.RefreshPeriod = DefaultRefreshPeriod
	}
	if c.LookupTimeout == 0 {
		c.LookupTimeout = DefaultLookupTimeout
	}
	if c.ListPageSize == 0 {
		c.ListPageSize = DefaultListPageSize
	}
	return c
}

// validate names the first bad setting. Empty overlay or storage URLs turn
// those features off (a DHT run alone in a test).
func (c Config) validate() error {
	if c.DataDir == "" && !c.Amnesia {
		return errors.New("data dir is empty (or use amnesia)")
	}
	if len(c.P2PListen) == 0 {
		return errors.New("--p2p-listen: at least one address is needed")
	}
	for _, s := range c.P2PListen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return fmt.Errorf("--p2p-listen %q: %w", s, err)
		}
	}
	for _, s := range c.Announce {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return fmt.Errorf("--announce %q: %w", s, err)
		}
	}
	for name, u := range map[string]string{"--overlay-url": c.OverlayURL, "--storage-url": c.StorageURL} {
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil {
			return fmt.Errorf("%s %q: %w", name, u, err)
		}
		if (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%s %q: want http(s)://host:port", name, u)
		}
	}
	if c.ReprovideInterval < time.Minute {
		return fmt.Errorf("--reprovide-interval %s: must be at least 1m", c.ReprovideInterval)
	}
	if c.ListPageSize < 1 {
		return fmt.Errorf("list page size %d: must be positive", c.ListPageSize)
	}
	return nil
}
