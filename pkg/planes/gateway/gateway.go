// Package gateway is the public HTTP ingress of a macronode node. It answers
// GET /ingress/ping itself and reverse-proxies the plane APIs to their
// backends:
//
//	/o, /o/...                 -> storage  (--storage-addr)
//	/names, /names/...         -> index    (--index-addr)
//	/mailboxes, /mailboxes/... -> mailbox  (--mailbox-addr)
//
// Anything else is a 404 JSON error: the overlay's and the DHT's HTTP APIs
// are internal to the node and never routed. Storage's listing (GET /o) and
// its verified PUT /o/{addr} are internal too: the gateway answers them 405.
//
// With --dht-url and --overlay-url set, the blob routes reach beyond the
// node (SPEC §8, "across planes"; package fetch does the work):
//
//   - after storage answers a POST /o with 201 or 200, the address is queued
//     for the DHT (a bounded queue: the client never waits for it);
//   - a GET /o/{addr} (Range included) that storage answers 404 is fetched
//     from a provider into local storage, verified there by PUT /o/{addr},
//     then served by a second GET to storage; ModifyResponse does this only
//     on a 404, so a local hit costs nothing extra. No provider: 404; some
//     but none delivered, or the DHT failed: 502 JSON;
//   - a HEAD that misses asks a provider for the size and never fetches
//     (200 with Content-Length, or 404);
//   - Cache-Control: only-if-cached or ?local=1 never goes remote: a miss is
//     504 "not_cached" (RFC 9111).
//
// Every blob answer from storage carries X-Macronode-Source: "local", or
// "peer <node id>" on the answer that followed a fetch from that peer.
// Without both URLs the gateway never goes remote and a miss is storage's
// 404.
//
// Bodies stream both ways (nothing is buffered), capped per route
// (--max-object-bytes for /o, --max-body-bytes for the JSON routes). A request may last as long as it keeps moving: the
// server's read/write timeouts are replaced on every route by a progress
// deadline (--io-idle-timeout, httpx.Progress), so only a client that stalls
// is cut; a stalled request body gets 408 JSON and its connection is closed.
// At most --max-conns client connections are served at once; more wait in
// the listen backlog. Each client IP
// (IPv6: each /64) has a token-bucket rate limit (429 with Retry-After). A
// backend that is down or unconfigured answers 503 JSON at once; one that
// does not send response headers within --backend-timeout answers 504.
// A GET or HEAD whose backend connection fails (refused, reset, closed)
// before any response byte is sent once more after 50 ms to the same
// backend, which covers a plane's restart after a crash; POST /o
// (idempotent: content-addressed) is sent again only when connecting
// failed, so its body was never read and nothing is buffered; any other
// request is never retried (retry.go).
// X-Request-Id is propagated to the backend and echoed once, and
// X-Forwarded-For is set to the client's address: client-supplied
// X-Forwarded-* headers are dropped, except that a peer listed in
// --trusted-proxies has its X-Forwarded-For kept (its address appended) and
// the rate limit counts the client that chain names. Hop-by-hop headers and protocol upgrades are not forwarded.
package gateway

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/planes/gateway/fetch"
	"github.com/macronode/macronode/pkg/routes"
)

// Defaults of the gateway's flags.
const (
	DefaultMaxBodyBytes   = 1 << 20 // JSON bodies: names, mailboxes
	DefaultMaxObjectBytes = 1 << 30 // blob uploads to /o
	DefaultRate           = 1000    // requests per second per client IP
	DefaultBurst          = 2000
	DefaultBackendTimeout = 10 * time.Second
	DefaultRequestTimeout = 30 * time.Second
	DefaultIOIdleTimeout  = httpx.DefaultIOIdleTimeout
	DefaultMaxConns       = 4096 // concurrent client connections; more wait in the accept backlog
	DefaultFetchTimeout   = 5 * time.Second
)

// Config holds the gateway's settings. DataDir and Amnesia come from the
// runtime's common flags; the gateway stores nothing, so it ignores both
// (it does not create DataDir).
type Config struct {
	DataDir string
	Amnesia bool

	// Backends maps a route's plane name (routes.All: "storage", "index",
	// "mailbox") to its address, as host:port (or a full http:// or https://
	// URL). A missing or empty address makes that route answer 503 "backend
	// not configured".
	Backends map[string]string

	// DHTURL and OverlayURL are the base URLs of this node's svc-dht and
	// svc-overlay HTTP APIs (loopback, never routed to clients). With both
	// set, a blob that local storage misses is fetched from a peer (package
	// fetch) and a stored one is announced; with either empty the gateway
	// never goes remote.
	DHTURL       string
	OverlayURL   string
	FetchTimeout time.Duration // provider lookup + first byte from a peer

	MaxBodyBytes   int64         // body cap for /names, /mailboxes
	MaxObjectBytes int64         // body cap for /o
	Rate           float64       // requests/s per client IP; <= 0 disables (Rate and Burst both 0 take the defaults)
	Burst          int           // bucket size of the rate limit
	BackendTimeout time.Duration // dial + wait for response headers; never cuts a body stream
	RequestTimeout time.Duration // whole-request deadline on the JSON routes (not /o)
	IOIdleTimeout  time.Duration // every route: longest stall of a client's body or of a response write
	MaxConns       int           // concurrent client connections; past it new ones wait in the accept backlog
	MaxProcs       int           // GOMAXPROCS of svc-gateway (ApplyMaxProcs); 0: GOMAXPROCS from the environment, else half the CPUs
	// TrustedProxies are CIDRs or addresses of proxies in front of the
	// gateway: from them, X-Forwarded-For names the client (for the rate
	// limit) and is passed on to the backend with the proxy appended.
	TrustedProxies []string

	// InternalListen is the loopback address serving Ops (the runtime's
	// /metrics and /version); "" serves them nowhere. The public listener
	// never serves them.
	InternalListen string
	Ops            http.Handler

	defaulted bool // applyDefaults has run
}

// RegisterFlags registers the gateway's own flags on fs, with production
// defaults for any field still zero.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.applyDefaults()
	if c.Backends == nil {
		c.Backends = map[string]string{}
	}
	for _, r := range routes.All {
		fs.Func(r.FlagName(), fmt.Sprintf("host:port of svc-%s, served under %s; empty answers 503 on %s", r.Name, r.Prefix, r.Prefix),
			func(v string) error { c.Backends[r.Name] = v; return nil })
	}
	fs.StringVar(&c.DHTURL, "dht-url", c.DHTURL,
		"base URL of this node's svc-dht HTTP API (e.g. http://127.0.0.1:9200), used to find providers of a missing blob "+
			"and to announce stored ones; never routed to clients; empty (or an empty --overlay-url) never goes remote")
	fs.StringVar(&c.OverlayURL, "overlay-url", c.OverlayURL,
		"base URL of this node's svc-overlay HTTP API (e.g. http://127.0.0.1:9100), through which a missing blob is fetched from a peer; never routed to clients")
	fs.DurationVar(&c.FetchTimeout, "fetch-timeout", c.FetchTimeout,
		"how long a GET that misses locally may spend finding providers and getting the first byte from a peer (502 past it); "+
			"once bytes flow only a stall longer than --io-idle-timeout cuts the transfer")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes,
		"largest request body in bytes on /names and /mailboxes; larger answers 413")
	fs.Int64Var(&c.MaxObjectBytes, "max-object-bytes", c.MaxObjectBytes,
		"largest blob upload in bytes on /o; larger answers 413 (uploads stream, they are never buffered)")
	fs.Float64Var(&c.Rate, "rate", c.Rate,
		"sustained requests per second allowed per client IP (token bucket); over it answers 429; 0 disables")
	fs.IntVar(&c.Burst, "burst", c.Burst,
		"requests a client IP may send at once above --rate before it is limited")
	fs.DurationVar(&c.BackendTimeout, "backend-timeout", c.BackendTimeout,
		"how long to wait for a backend's response headers after sending the request (504 past it); "+
			"a body already streaming is never cut; connecting is capped at 1s (503 when down)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout,
		"deadline for a whole request on the JSON routes (/names, /mailboxes); /o streams have none")
	fs.DurationVar(&c.IOIdleTimeout, "io-idle-timeout", c.IOIdleTimeout,
		"longest a request body or a response write may make no progress, on every route; a stalled body gets 408 "+
			"and its connection is closed; a transfer that keeps moving is never cut, however long it lasts "+
			"(it replaces the server's read/write timeouts)")
	fs.StringVar(&c.InternalListen, "internal-listen", c.InternalListen,
		"loopback host:port serving /metrics and /version for the parent's scrape (never the public --listen); empty serves them nowhere")
	fs.Func("trusted-proxies", "CIDRs or addresses (comma-separated, repeatable) of proxies in front of the gateway whose "+
		"X-Forwarded-For names the client: the rate limit counts that client, and the chain reaches the backend; "+
		"from any other peer X-Forwarded-* headers are dropped",
		func(v string) error {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					c.TrustedProxies = append(c.TrustedProxies, p)
				}
			}
			return nil
		})
	fs.IntVar(&c.MaxConns, "max-conns", c.MaxConns,
		"most client connections served at once; past it new connections wait in the listen backlog (none is refused)")
	fs.IntVar(&c.MaxProcs, "max-procs", c.MaxProcs,
		"CPUs the gateway's Go runtime uses at once (GOMAXPROCS); 0 takes the GOMAXPROCS environment variable when set, "+
			"else half the CPUs Go would use (the host's, or a cgroup CPU limit; at least 1): a small proxied request is mostly syscalls, and fewer threads wake each other less")
}

func (c *Config) applyDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxObjectBytes == 0 {
		c.MaxObjectBytes = DefaultMaxObjectBytes
	}
	// Rate and Burst both 0 mean "the defaults" only in a Config literal:
	// once RegisterFlags has filled the defaults, --rate 0 --burst 0 is an
	// explicit "off".
	if !c.defaulted && c.Rate == 0 && c.Burst == 0 {
		c.Rate, c.Burst = DefaultRate, DefaultBurst
	}
	c.defaulted = true
	if c.BackendTimeout == 0 {
		c.BackendTimeout = DefaultBackendTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.IOIdleTimeout == 0 {
		c.IOIdleTimeout = DefaultIOIdleTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max-body-bytes must be positive, got %d", c.MaxBodyBytes))
	}
	if c.MaxObjectBytes < 0 {
		errs = append(errs, fmt.Errorf("max-object-bytes must be positive, got %d", c.MaxObjectBytes))
	}
	if c.Rate > 0 && c.Burst < 1 {
		errs = append(errs, fmt.Errorf("burst must be at least 1 when rate is set, got %d", c.Burst))
	}
	if c.BackendTimeout < 0 {
		errs = append(errs, fmt.Errorf("backend-timeout must be positive, got %s", c.BackendTimeout))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("request-timeout must be positive, got %s", c.RequestTimeout))
	}
	if c.IOIdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("io-idle-timeout must be positive, got %s", c.IOIdleTimeout))
	}
	if c.FetchTimeout < 0 {
		errs = append(errs, fmt.Errorf("fetch-timeout must be positive, got %s", c.FetchTimeout))
	}
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("max-conns must be positive, got %d", c.MaxConns))
	}
	if c.MaxProcs < 0 {
		errs = append(errs, fmt.Errorf("max-procs must be positive, got %d", c.MaxProcs))
	}
	return errors.Join(errs...)
}

// limits are a route's body cap, whole-request deadline (0: none) and
// the time its backend may take to send response headers.
func (c *Config) limits(name string) (maxBody int64, deadline, header time.Duration) {
	switch name {
	case "storage":
		// Blob streams have no whole-request deadline: a 1 GiB transfer on
		// a slow link must not be cut; only a stalled one is.
		return c.MaxObjectBytes, 0, c.BackendTimeout
	case "mailbox":
		// A mailbox receive is a long poll: its headers legitimately wait
		// up to the request deadline.
		return c.MaxBodyBytes, c.RequestTimeout, max(c.BackendTimeout, c.RequestTimeout)
	}
	return c.MaxBodyBytes, c.RequestTimeout, c.BackendTimeout
}

// Server is the gateway: a router, its backends and its limits.
type Server struct {
	cfg      Config
	log      hclog.Logger
	m        *metrics
	limiter  *httpx.IPLimiter
	trusted  trustedProxies
	backends []*backend
	storage  *backend       // the /o route
	fetcher  *fetch.Fetcher // nil: never go remote
	handler  http.Handler
	ops      *opsServer // nil without --internal-listen

	closeOnce sync.Once
	closeErr  error
}

// New builds the gateway from cfg. Backends are not contacted: a backend
// that is down shows as 503 answers on its route, not as an error here.
// Metrics are registered on reg.
func New(cfg Config, log hclog.Logger, reg prometheus.Registerer) (*Server, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	trusted, err := parseTrusted(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s := &Server{cfg: cfg, log: log, m: m, trusted: trusted}
	if cfg.Rate > 0 {
		s.limiter = httpx.NewIPLimiter(cfg.Rate, cfg.Burst)
	}
	for _, r := range routes.All {
		b, err := newBackend(s, r, cfg.Backends[r.Name])
		if err != nil {
			s.closeBackends()
			return nil, fmt.Errorf("gateway: %s: %w", r.Flag, err)
		}
		if b.target == nil {
			log.Warn("backend not configured; its route answers 503", "backend", r.Name)
		} else {
			log.Info("backend", "backend", r.Name, "url", b.target.String())
		}
		s.backends = append(s.backends, b)
		if r.Name == "storage" {
			s.storage = b
			b.modify = s.storageResponse
		}
	}
	if err := s.startFetcher(reg); err != nil {
		s.closeBackends()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s.handler = s.routes()
	if cfg.InternalListen != "" {
		o, err := startOps(cfg.InternalListen, cfg.Ops)
		if err != nil {
			s.closeBackends()
			return nil, fmt.Errorf("gateway: %w", err)
		}
		s.ops = o
		log.Info("internal listener serves /metrics and /version", "addr", o.addr)
	}
	return s, nil
}

// MetricsAddr is InternalAddr: the runtime sends it to the parent in the
// ready message (svcrt.MetricsAddresser), so the parent scrapes /metrics there.
func (s *Server) MetricsAddr() string { return s.InternalAddr() }

// InternalAddr is the bound address of the internal listener, "" without one.
func (s *Server) InternalAddr() string {
	if s.ops == nil {
		return ""
	}
	return s.ops.addr
}

// Patterns of the storage route with behaviour of their own: a blob's
// address is announced after POST, and GET/HEAD may go remote on a miss.
const (
	patternPost = "POST /o"
	patternGet  = "GET /o/{addr}" // GET patterns also match HEAD
)

func (s *Server) routes() http.Handler {
	mux := httpx.NewMux()
	mux.HandleFunc("GET /ingress/ping", handlePing)
	for _, b := range s.backends {
		mux.Handle(b.route.Prefix, b)
		mux.Handle(b.route.Prefix+"/", b)
	}
	mux.Handle(patternPost, s.storage)
	mux.Handle(patternGet, s.storage)
	// Storage's listing and its verified PUT are internal: the DHT walks
	// the one, the fetcher spools peers' bytes through the other.
	mux.HandleFunc("GET /o", internalOnly("POST"))
	mux.HandleFunc("PUT /o/{addr}", internalOnly("GET, HEAD"))
	// Recover, RequestID and per-route request metrics are the child
	// runtime's, around this handler.
	return s.rateLimit(mux)
}

// Handler returns the gateway's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Ready is always nil: the gateway can always answer, and a backend's state
// shows as 503 answers on its route.
func (s *Server) Ready() error { return nil }

// Close releases the idle backend connections and stops the internal
// listener. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closeBackends()
		if s.fetcher != nil {
			s.fetcher.Close()
		}
		if s.ops != nil {
			s.closeErr = s.ops.close()
		}
	})
	return s.closeErr
}

func (s *Server) closeBackends() {
	for _, b := range s.backends {
		b.transport.CloseIdleConnections()
		if b.direct != nil {
			b.direct.CloseIdleConnections()
		}
	}
}

// startFetcher builds the remote path when the DHT and overlay URLs and
// the storage backend are all configured.
func (s *Server) startFetcher(reg prometheus.Registerer) error {
	switch {
	case s.cfg.DHTURL == "" || s.cfg.OverlayURL == "":
		s.log.Info("no --dht-url/--overlay-url: a blob missing locally is not fetched from peers")
		return nil
	case s.storage.target == nil:
		s.log.Warn("no storage backend: blobs are neither fetched from peers nor announced")
		return nil
	}
	f, err := fetch.New(fetch.Config{
		DHT:     strings.TrimSuffix(s.cfg.DHTURL, "/"),
		Overlay: strings.TrimSuffix(s.cfg.OverlayURL, "/"),
		Storage: strings.TrimSuffix(s.storage.target.String(), "/"),
		Timeout: s.cfg.FetchTimeout,
		IOIdle:  s.cfg.IOIdleTimeout,
	}, s.log.Named("fetch"), reg)
	if err != nil {
		return err
	}
	s.fetcher = f
	s.log.Info("remote fetch on", "dht", s.cfg.DHTURL, "overlay", s.cfg.OverlayURL, "fetch_timeout", s.cfg.FetchTimeout)
	return nil
}

// internalOnly answers a storage method that clients may not use through
// the gateway: 405 with the methods they may.
func internalOnly(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		httpx.Errorf(w, http.StatusMethodNotAllowed, "", "%s %s is internal to the node and not served by the gateway", r.Method, r.URL.Path)
	}
}

// pingBody is the answer of GET /ingress/ping.
type pingBody struct {
	OK      bool   `json:"ok"`
	Service string `json:"service"`
	Profile string `json:"profile"`
}

func handlePing(w http.ResponseWriter, _ *http.Request) {
	httpx.JSON(w, http.StatusOK, pingBody{OK: true, Service: "svc-gateway", Profile: "macronode"})
}

// rateLimit answers 429 JSON with Retry-After to a client IP over its rate.
func (s *Server) rateLimit(next http.Handler) http.Handler {
	if s.limiter == nil {
		return next
	}
	retry := "1"
	if s.cfg.Rate < 1 {
		retry = strconv.Itoa(int(1/s.cfg.Rate) + 1)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.limiter.Allow(s.trusted.clientIP(r)) {
			s.m.rateLimited.Inc()
			w.Header().Set("Retry-After", retry)
			httpx.Error(w, http.StatusTooManyRequests, "", "rate limit exceeded for this client")
			return
		}
		next.ServeHTTP(w, r)
	})
}
