// Package index is the naming plane of macronode: it binds names to content
// addresses ("b3:<64 hex>") with a version per name, so clients can publish
// "latest" pointers and update them with compare-and-set.
//
// The API, mounted by the child runtime (svc-index):
//
//	PUT    /names/{name}   {"address":"b3:..."} -> 201 created / 200 updated
//	GET    /names/{name}   -> {"name","address","version","updated_at"}
//	DELETE /names/{name}   -> 204
//	GET    /names?prefix=&limit=&after= -> {"names":[...],"next":"..."}
//
// Each write of a name increases its version by one (the first is 1; a name
// deleted and bound again continues from its last version). The version is
// also the ETag, and If-Match / If-None-Match make writes conditional (412 on
// mismatch). Records live in bbolt at DataDir/index.db and every 2xx answer
// to a write follows an fsynced commit; in amnesia mode they live in memory.
package index

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

// DefaultMaxBodyBytes caps a PUT body; a record is a few dozen bytes.
const DefaultMaxBodyBytes = 64 << 10

// Config holds the index plane's settings. DataDir and Amnesia are filled by
// the runtime from the common flags.
type Config struct {
	DataDir      string // index.db lives here; created 0700 if missing
	Amnesia      bool   // keep records in RAM only, write nothing under DataDir
	MaxBodyBytes int64  // cap on a PUT /names body
	// IOIdleTimeout is the longest a request body may make no progress
	// (408 past it); zero means httpx.DefaultIOIdleTimeout.
	IOIdleTimeout time.Duration
}

// RegisterFlags registers the index plane's own flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes,
		"largest PUT /names body in bytes; a larger one is refused with 413 (a record body is ~90 bytes)")
	if c.IOIdleTimeout == 0 {
		c.IOIdleTimeout = httpx.DefaultIOIdleTimeout
	}
	fs.DurationVar(&c.IOIdleTimeout, "io-idle-timeout", c.IOIdleTimeout,
		"longest a request body may make no progress; a stalled body gets 408 and its connection is closed")
}

// Server is the index plane: its store and its HTTP API.
type Server struct {
	cfg     Config
	log     hclog.Logger
	store   store
	m       *metrics
	handler http.Handler

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New opens the store (bbolt under cfg.DataDir, or memory when cfg.Amnesia)
// and builds the handler. Metrics are registered on reg.
func New(cfg Config, log hclog.Logger, reg prometheus.Registerer) (*Server, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("index: max-body-bytes must be positive, got %d", cfg.MaxBodyBytes)
	}
	if cfg.IOIdleTimeout == 0 {
		cfg.IOIdleTimeout = httpx.DefaultIOIdleTimeout
	}
	if cfg.IOIdleTimeout < 0 {
		return nil, fmt.Errorf("index: io-idle-timeout must be positive, got %s", cfg.IOIdleTimeout)
	}
	var st store
	if cfg.Amnesia {
		st = newMemStore()
		log.Info("index store in memory (amnesia): nothing is written to disk")
	} else {
		if cfg.DataDir == "" {
			return nil, errors.New("index: data dir is required unless amnesia is set")
		}
		bs, err := openBolt(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
		st = bs
		log.Info("index store opened", "path", cfg.DataDir+"/"+DBFile, "names", bs.count())
	}
	s := &Server{cfg: cfg, log: log, store: st}
	m, err := newMetrics(reg, st.count)
	if err != nil {
		_ = st.close()
		return nil, fmt.Errorf("index: %w", err)
	}
	s.m = m
	s.handler = s.routes()
	return s, nil
}

// Handler returns the plane API.
func (s *Server) Handler() http.Handler { return s.handler }

// Ready is nil while the store is open.
func (s *Server) Ready() error {
	if s.closed.Load() {
		return errClosed
	}
	return nil
}

// Close closes the store; later requests answer 503. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = s.store.close()
	})
	return s.closeErr
}
