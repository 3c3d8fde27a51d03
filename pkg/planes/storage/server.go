package storage

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/macronode/macronode/pkg/httpx"
)

// Production defaults for the plane-specific settings.
const (
	DefaultMaxObjectBytes  int64 = 1 << 30   // 1 GiB
	DefaultChunkBytes            = 64 << 10  // 64 KiB
	DefaultAmnesiaMaxBytes int64 = 256 << 20 // 256 MiB
	DefaultIOIdleTimeout         = httpx.DefaultIOIdleTimeout

	// VerifyBeforeSendBytes is the largest object a full GET hashes entirely
	// before sending the first byte (so corruption becomes a clean 500).
	// Larger objects are hashed while they stream; see the package doc.
	VerifyBeforeSendBytes int64 = 8 << 20

	minChunkBytes = 1 << 10
	maxChunkBytes = 16 << 20
)

// Config holds the storage plane's settings. DataDir and Amnesia are filled
// by the runtime from the common flags; the rest come from RegisterFlags.
// Zero values of the plane-specific fields mean "use the default".
type Config struct {
	DataDir string // e.g. data_dir/storage; created (0700) if missing
	Amnesia bool   // RAM only: nothing is written under DataDir

	MaxObjectBytes  int64 // largest blob a POST /o accepts
	ChunkBytes      int   // size of the pieces GET reads, hashes and writes
	AmnesiaMaxBytes int64 // total blob bytes the amnesia memory store holds
	// IOIdleTimeout is how long an upload or download may make no progress
	// before its connection is cut; while it progresses it is never cut,
	// whatever the server's whole-request timeouts.
	IOIdleTimeout time.Duration
}

// RegisterFlags registers the storage plane's own flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.MaxObjectBytes, "max-object-bytes", DefaultMaxObjectBytes,
		"largest blob, in bytes, that POST /o accepts; bigger uploads get 413 and leave nothing behind (1073741824 = 1 GiB)")
	fs.IntVar(&c.ChunkBytes, "chunk-bytes", DefaultChunkBytes,
		fmt.Sprintf("GET streams blobs in pieces of this many bytes, hashing each before it is sent (%d..%d; 65536 = 64 KiB)", minChunkBytes, maxChunkBytes))
	fs.Int64Var(&c.AmnesiaMaxBytes, "amnesia-max-bytes", DefaultAmnesiaMaxBytes,
		"with --amnesia, blobs live in RAM up to this many bytes in total; uploads beyond it get 507 (268435456 = 256 MiB)")
	fs.DurationVar(&c.IOIdleTimeout, "io-idle-timeout", DefaultIOIdleTimeout,
		"an upload or download that moves no bytes for this long is cut (a stalled upload gets 408); one that keeps moving is never cut, however slow (e.g. 30s, 2m)")
}

// withDefaults fills zero fields and validates the rest.
func (c Config) withDefaults() (Config, error) {
	if c.MaxObjectBytes == 0 {
		c.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if c.ChunkBytes == 0 {
		c.ChunkBytes = DefaultChunkBytes
	}
	if c.AmnesiaMaxBytes == 0 {
		c.AmnesiaMaxBytes = DefaultAmnesiaMaxBytes
	}
	if c.IOIdleTimeout == 0 {
		c.IOIdleTimeout = DefaultIOIdleTimeout
	}
	var errs []error
	if c.MaxObjectBytes < 0 {
		errs = append(errs, fmt.Errorf("--max-object-bytes: %d is negative", c.MaxObjectBytes))
	}
	if c.ChunkBytes < minChunkBytes || c.ChunkBytes > maxChunkBytes {
		errs = append(errs, fmt.Errorf("--chunk-bytes: %d is outside %d..%d", c.ChunkBytes, minChunkBytes, maxChunkBytes))
	}
	if c.AmnesiaMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("--amnesia-max-bytes: %d is negative", c.AmnesiaMaxBytes))
	}
	if c.IOIdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("--io-idle-timeout: %s is negative", c.IOIdleTimeout))
	}
	if !c.Amnesia && c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir: empty (required unless --amnesia)"))
	}
	return c, errors.Join(errs...)
}

// Server is the storage plane: its store plus the HTTP API.
type Server struct {
	cfg     Config
	log     hclog.Logger
	store   Store
	m       *metrics
	handler http.Handler

	verifyBefore int64 // VerifyBeforeSendBytes; a field so tests can vary it
	chunks       sync.Pool
	verified     *verifiedCache

	// Test hooks: called before each chunk verifyAll hashes, and before
	// corrupt quarantines a blob.
	hookVerifyChunk      func(*http.Request)
	hookBeforeQuarantine func()
	closed               atomic.Bool
	closeOnce            sync.Once
	closeErr             error
}

// New opens the store (the memory store in amnesia mode, which touches
// nothing under DataDir; the disk store otherwise) and builds the handler.
// Metrics are registered on reg under macronode_storage_*.
func New(cfg Config, log hclog.Logger, reg prometheus.Registerer) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("storage config: %w", err)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	var st Store
	if cfg.Amnesia {
		st = NewMemory(cfg.AmnesiaMaxBytes)
		log.Info("amnesia: blobs kept in memory only", "max_bytes", cfg.AmnesiaMaxBytes)
	} else {
		d, err := OpenDisk(cfg.DataDir, log)
		if err != nil {
			return nil, err
		}
		st = d
		objs, bytes := d.Usage()
		log.Info("disk store opened", "dir", cfg.DataDir, "objects", objs, "bytes", bytes)
	}
	return newWithStore(cfg, st, log, reg)
}

// newWithStore builds a Server over an already open store, which it owns:
// Close closes it.
func newWithStore(cfg Config, st Store, log hclog.Logger, reg prometheus.Registerer) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("storage config: %w", err)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	m, err := newMetrics(reg, st)
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	s := &Server{cfg: cfg, log: log, store: st, m: m, verifyBefore: VerifyBeforeSendBytes,
		verified: newVerifiedCache(verifiedCacheEntries)}
	chunk := cfg.ChunkBytes
	s.chunks.New = func() any { b := make([]byte, chunk); return &b }
	mux := httpx.NewMux()
	mux.HandleFunc("POST /o", s.handlePut)
	mux.HandleFunc("PUT /o/{addr}", s.handlePutAt)
	mux.HandleFunc("GET /o", s.handleList)
	mux.HandleFunc("GET /o/{addr}", s.handleGet) // GET patterns also match HEAD
	s.handler = mux
	return s, nil
}

// Handler returns the plane API: POST /o, PUT /o/{addr}, GET /o (listing),
// GET and HEAD /o/{addr}.
func (s *Server) Handler() http.Handler { return s.handler }

// Ready reports whether the plane can serve: not closed and, for the disk
// store, the objects directory is still there.
func (s *Server) Ready() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if c, ok := s.store.(interface{ check() error }); ok {
		return c.check()
	}
	return nil
}

// Close closes the store; it is idempotent. Every acknowledged PUT is already
// durable, so there is nothing to flush.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = s.store.Close()
	})
	return s.closeErr
}

// metrics are the plane's Prometheus series.
type metrics struct {
	puts, gets, dedup, verifyFail prometheus.Counter
	verifyCacheHits               prometheus.Counter
	putBytes, getBytes            prometheus.Counter
	putFail                       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, st Store) (*metrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "macronode", Subsystem: "storage", Name: name, Help: help})
	}
	m := &metrics{
		puts:       c("puts_total", "Blobs accepted by POST /o and PUT /o/{addr} (new and deduplicated)."),
		gets:       c("gets_total", "GET and HEAD requests answered for a stored blob."),
		dedup:      c("dedup_hits_total", "Uploads whose content was already stored (answered 200)."),
		verifyFail: c("verify_failures_total", "Blobs whose bytes did not match their BLAKE3 address and were quarantined."),
		verifyCacheHits: c("verify_cache_hits_total",
			"GETs (range, or full up to 8 MiB) served from a copy verified recently and unchanged since, without hashing it again."),
		putBytes: c("put_bytes_total", "Bytes received in accepted uploads."),
		getBytes: c("get_bytes_total", "Blob bytes written to GET responses."),
		putFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "macronode", Subsystem: "storage", Name: "put_failures_total",
			Help: "POST /o and PUT /o/{addr} uploads that failed, by reason (too_large, mismatch, storage_full, client, internal).",
		}, []string{"reason"}),
	}
	objects := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "macronode", Subsystem: "storage", Name: "objects",
		Help: "Blobs stored (counted at start-up by walking the store, then kept up to date).",
	}, func() float64 { o, _ := st.Usage(); return float64(o) })
	bytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "macronode", Subsystem: "storage", Name: "bytes",
		Help: "Total size of the stored blobs in bytes.",
	}, func() float64 { _, b := st.Usage(); return float64(b) })
	var done []prometheus.Collector
	for _, col := range []prometheus.Collector{m.puts, m.gets, m.dedup, m.verifyFail, m.verifyCacheHits, m.putBytes, m.getBytes, m.putFail, objects, bytes} {
		if err := reg.Register(col); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return nil, fmt.Errorf("register storage metrics: %w", err)
		}
		done = append(done, col)
	}
	return m, nil
}
