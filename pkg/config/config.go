// Package config loads macronode's configuration in layers (SPEC §3):
// built-in defaults, then a YAML or JSON file, then RON_* environment
// variables (MACRO_* accepted as deprecated aliases), then CLI flags. Every
// value remembers the layer that set it, and validation errors name the field
// and that source.
package config

import "time"

// Planes lists the six service planes in their default start order.
var Planes = []string{"storage", "index", "mailbox", "overlay", "dht", "gateway"}

// Config is the whole effective configuration of a node.
type Config struct {
	HTTPAddr        string   `yaml:"http_addr" json:"http_addr"`
	MetricsAddr     string   `yaml:"metrics_addr" json:"metrics_addr"`
	LogLevel        string   `yaml:"log_level" json:"log_level"`
	LogFormat       string   `yaml:"log_format" json:"log_format"`
	ReadTimeout     Duration `yaml:"read_timeout" json:"read_timeout"`
	WriteTimeout    Duration `yaml:"write_timeout" json:"write_timeout"`
	IdleTimeout     Duration `yaml:"idle_timeout" json:"idle_timeout"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"`
	RunDir          string   `yaml:"run_dir" json:"run_dir"`
	DataDir         string   `yaml:"data_dir" json:"data_dir"`

	MaxBodyBytes       Size   `yaml:"max_body_bytes" json:"max_body_bytes"`
	MaxObjectBytes     Size   `yaml:"max_object_bytes" json:"max_object_bytes"`
	ChunkBytes         Size   `yaml:"chunk_bytes" json:"chunk_bytes"`
	OAPMaxFrameBytes   Size   `yaml:"oap_max_frame_bytes" json:"oap_max_frame_bytes"`
	DecompressRatioCap int    `yaml:"decompress_ratio_cap" json:"decompress_ratio_cap"`
	AdminToken         string `yaml:"admin_token" json:"admin_token"`
	// AdminTokenFile names a file holding the admin token (surrounding
	// whitespace trimmed). Load reads it into AdminToken; when neither is
	// set, $CREDENTIALS_DIRECTORY/admin_token (systemd LoadCredential=) is
	// used if it exists.
	AdminTokenFile string `yaml:"admin_token_file" json:"admin_token_file"`
	// AdminAllowedHosts are Host headers the admin plane accepts on a
	// loopback bind besides the bound address and localhost: "name" (any
	// port) or "name:port".
	AdminAllowedHosts []string `yaml:"admin_allowed_hosts" json:"admin_allowed_hosts"`
	// MetricsPublic keeps /metrics open when an admin token is set.
	MetricsPublic bool `yaml:"metrics_public" json:"metrics_public"`

	AdminTLS   TLS    `yaml:"admin_tls" json:"admin_tls"`
	GatewayTLS TLS    `yaml:"gateway_tls" json:"gateway_tls"`
	Amnesia    bool   `yaml:"amnesia" json:"amnesia"`
	PQMode     string `yaml:"pq_mode" json:"pq_mode"`

	// IOIdleTimeout bounds how long a request body or a response may make
	// no progress.
	IOIdleTimeout Duration `yaml:"io_idle_timeout" json:"io_idle_timeout"`
	// FetchTimeout bounds the gateway's provider lookup and the first byte
	// from a peer on a local miss.
	FetchTimeout Duration `yaml:"fetch_timeout" json:"fetch_timeout"`
	// GatewayRate and GatewayBurst are the gateway's per-client token bucket
	// (requests per second, bucket size); 0 turns it off.
	GatewayRate  float64 `yaml:"gateway_rate" json:"gateway_rate"`
	GatewayBurst int     `yaml:"gateway_burst" json:"gateway_burst"`
	// GatewayTrustedProxies are the CIDRs (or single addresses) whose
	// X-Forwarded-For header names the client.
	GatewayTrustedProxies []string `yaml:"gateway_trusted_proxies" json:"gateway_trusted_proxies"`
	// GatewayMaxConns caps the gateway's concurrent connections.
	GatewayMaxConns int `yaml:"gateway_max_conns" json:"gateway_max_conns"`

	Network Network `yaml:"network" json:"network"`
	DHT     DHT     `yaml:"dht" json:"dht"`

	// Services is keyed by plane name; after loading it holds all six planes.
	Services map[string]*Service `yaml:"services" json:"services"`

	// Sources maps a field path ("http_addr", "services.storage.listen") to
	// the layer that last set it: "default", "file <path>", "env RON_X",
	// "flag --x". Fields absent from the map were set by defaults.
	Sources map[string]string `yaml:"-" json:"-"`

	// devInsecure is MACRONODE_DEV_INSECURE=1 at Load: an unauthenticated
	// non-loopback admin plane is allowed (with a warning).
	devInsecure bool
}

// TLS names certificate files; all empty means off.
type TLS struct {
	Cert     string `yaml:"cert" json:"cert"`
	Key      string `yaml:"key" json:"key"`
	ClientCA string `yaml:"client_ca" json:"client_ca"`
}

// Network is how the node finds and is found by other nodes.
type Network struct {
	// Bootstrap are the peers to dial first: multiaddrs ending in /p2p/<node id>.
	Bootstrap []string `yaml:"bootstrap" json:"bootstrap"`
	// Announce are the addresses to advertise instead of the listen ones
	// (NAT, Kubernetes).
	Announce []string `yaml:"announce" json:"announce"`
}

// DHT holds the settings of the DHT's provider records.
type DHT struct {
	// ReprovideInterval is how often this node re-announces what it stores.
	ReprovideInterval Duration `yaml:"reprovide_interval" json:"reprovide_interval"`
}

// Service is the configuration of one plane's child process.
type Service struct {
	Enabled bool   `yaml:"enabled" json:"enabled"`
	Binary  string `yaml:"binary" json:"binary"`
	Listen  string `yaml:"listen" json:"listen"`
	// P2PListen are the libp2p listen multiaddrs of overlay and dht; the
	// other planes must leave it empty.
	P2PListen []string          `yaml:"p2p_listen" json:"p2p_listen"`
	Args      []string          `yaml:"args" json:"args"`
	Env       map[string]string `yaml:"env" json:"env"`
	Critical  bool              `yaml:"critical" json:"critical"`
	DependsOn []string          `yaml:"depends_on" json:"depends_on"`

	Backoff          Backoff  `yaml:"backoff" json:"backoff"`
	MaxRestarts      int      `yaml:"max_restarts" json:"max_restarts"`
	RestartWindow    Duration `yaml:"restart_window" json:"restart_window"`
	FailedRetry      Duration `yaml:"failed_retry" json:"failed_retry"`
	StableAfter      Duration `yaml:"stable_after" json:"stable_after"`
	StartTimeout     Duration `yaml:"start_timeout" json:"start_timeout"`
	HeartbeatTimeout Duration `yaml:"heartbeat_timeout" json:"heartbeat_timeout"`
}

// Backoff is the exponential restart delay of one service.
type Backoff struct {
	Initial    Duration `yaml:"initial" json:"initial"`
	Max        Duration `yaml:"max" json:"max"`
	Multiplier float64  `yaml:"multiplier" json:"multiplier"`
}

// Duration is a time.Duration written as a string such as "500ms" or "10s".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written as a plain number or with a unit ("1MiB").
type Size int64
