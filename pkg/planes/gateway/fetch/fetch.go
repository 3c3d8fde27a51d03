// Package fetch is the gateway's reach beyond its own node (SPEC §8, "across
// planes"): a blob that local storage does not hold is looked up in the DHT,
// fetched through the local overlay from a provider, and spooled into local
// storage with PUT /o/{addr}, which stores the bytes only if they hash to the
// address. So a byte reaches a client only after the whole blob was verified
// and kept; a provider whose bytes do not match is skipped and counted, and
// the next one is tried. After a fetch the node provides the address itself.
//
// The package also carries the announce queue: after a POST /o the gateway
// hands the address to Announce, which never blocks the client (a bounded
// queue; a full queue drops and counts).
//
// The DHT, overlay and storage planes are reached over their loopback HTTP
// APIs, the same ones an operator can curl.
package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

// Errors of Ensure and Stat, mapped by the gateway to HTTP statuses.
var (
	// ErrNoProvider: the DHT knows no other node holding the address (404).
	ErrNoProvider = errors.New("no provider holds this address")
	// ErrNoDelivery: providers exist but none delivered verified bytes (502).
	ErrNoDelivery = errors.New("no provider delivered the blob")
	// ErrLookup: the DHT plane could not be asked (502).
	ErrLookup = errors.New("provider lookup failed")
)

// Config says where the planes are and how long to wait for them.
type Config struct {
	DHT     string // base URL of the local svc-dht, e.g. http://127.0.0.1:9200
	Overlay string // base URL of the local svc-overlay
	Storage string // base URL of the local svc-storage
	// Timeout bounds the provider lookup plus the first byte from a peer
	// (fetch_timeout, default 5s).
	Timeout time.Duration
	// IOIdle bounds a transfer that makes no progress (io_idle_timeout).
	IOIdle time.Duration
	// QueueSize bounds the announce queue (default 1024).
	QueueSize int
	// MaxProviders caps how many providers one fetch tries (default 8).
	MaxProviders int
}

// Fetcher fetches missing blobs from peers and announces stored ones. It is
// safe for concurrent use; Close stops the announce worker.
type Fetcher struct {
	cfg    Config
	log    hclog.Logger
	client *http.Client
	m      *metrics
	sf     singleflight.Group

	queue     chan string
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	selfMu sync.Mutex
	self   string // this node's id, learned from the overlay
}

// New validates cfg, registers metrics on reg and starts the announce worker.
func New(cfg Config, log hclog.Logger, reg prometheus.Registerer) (*Fetcher, error) {
	for name, u := range map[string]string{"dht": cfg.DHT, "overlay": cfg.Overlay, "storage": cfg.Storage} {
		if err := checkBase(u); err != nil {
			return nil, fmt.Errorf("fetch: %s url: %w", name, err)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.IOIdle <= 0 {
		cfg.IOIdle = 30 * time.Second
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	if cfg.MaxProviders <= 0 {
		cfg.MaxProviders = 8
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	f := &Fetcher{
		cfg: cfg,
		log: log,
		m:   m,
		client: &http.Client{Transport: &http.Transport{
			Proxy:               nil, // loopback planes only, never an environment proxy
			DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}},
		queue: make(chan string, cfg.QueueSize),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go f.announcer()
	return f, nil
}

func checkBase(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return err
	}
	if p.Scheme != "http" && p.Scheme != "https" || p.Host == "" {
		return fmt.Errorf("%q is not an http(s) base URL", u)
	}
	return nil
}

// Close stops the announce worker; queued announces are dropped.
func (f *Fetcher) Close() {
	f.closeOnce.Do(func() {
		close(f.stop)
		<-f.done
		f.client.CloseIdleConnections()
	})
}

// Ensure makes sure local storage holds addr, fetching it from a provider
// when it does not. It returns the node id the bytes came from. Concurrent
// calls for one address share one fetch; each caller waits with its own ctx.
func (f *Fetcher) Ensure(ctx context.Context, addr string) (string, error) {
	ch := f.sf.DoChan("get "+addr, func() (any, error) {
		return f.fetch(addr)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Stat asks the providers of addr for its size, without fetching it.
func (f *Fetcher) Stat(ctx context.Context, addr string) (int64, string, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	ids, err := f.providers(ctx, addr)
	if err != nil {
		return 0, "", err
	}
	for _, id := range ids {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, f.blobURL(addr, id), nil)
		if err != nil {
			return 0, "", fmt.Errorf("fetch: stat %s: %w", addr, err)
		}
		resp, err := f.client.Do(req)
		if err != nil {
			f.log.Debug("stat from peer failed", "address", addr, "peer", id, "error", err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && resp.ContentLength >= 0 {
			return resp.ContentLength, id, nil
		}
	}
	return 0, "", ErrNoDelivery
}

// fetch runs once per address at a time (singleflight). It is detached from
// any one client: a client that leaves does not cancel the others' fetch.
func (f *Fetcher) fetch(addr string) (string, error) {
	start := time.Now()
	lookupCtx, cancel := context.WithTimeout(context.Background(), f.cfg.Timeout)
	ids, err := f.providers(lookupCtx, addr)
	cancel()
	if err != nil {
		f.m.fetches.WithLabelValues(resultOf(err)).Inc()
		return "", err
	}
	var errs []error
	for _, id := range ids {
		n, err := f.fetchFrom(addr, id, start)
		if err == nil {
			f.m.fetches.WithLabelValues("ok").Inc()
			f.m.duration.Observe(time.Since(start).Seconds())
			f.m.bytes.Add(float64(n))
			f.Announce(addr)
			return id, nil
		}
		f.log.Warn("fetch from peer failed", "address", addr, "peer", id, "error", err)
		errs = append(errs, fmt.Errorf("peer %s: %w", id, err))
	}
	f.m.fetches.WithLabelValues("no_delivery").Inc()
	return "", fmt.Errorf("%w: %w", ErrNoDelivery, errors.Join(errs...))
}

// errMismatch marks a provider whose bytes local storage refused.
var errMismatch = errors.New("bytes do not hash to the address (refused by storage)")

// minFirstByte is the least time a provider gets for its first byte, even
// when earlier providers used up the fetch timeout: a liar whose long
// transfer was refused must not leave the next provider no chance at all.
const minFirstByte = time.Second

// fetchFrom streams addr from one peer through the overlay into local
// storage. The first byte must come within what is left of the fetch
// timeout (at least min(minFirstByte, Timeout)); after that only a stall
// (IOIdle without progress) cuts it.
func (f *Fetcher) fetchFrom(addr, id string, start time.Time) (int64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := max(f.cfg.Timeout-time.Since(start), min(minFirstByte, f.cfg.Timeout))
	first := time.AfterFunc(wait, cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.blobURL(addr, id), nil)
	if err != nil {
		first.Stop()
		return 0, err
	}
	resp, err := f.client.Do(req)
	first.Stop()
	if err != nil {
		return 0, fmt.Errorf("overlay: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("overlay answered %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	body := newIdleReader(resp.Body, f.cfg.IOIdle, cancel)
	defer body.stop()
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, f.cfg.Storage+"/o/"+addr, body)
	if err != nil {
		return 0, err
	}
	put.ContentLength = resp.ContentLength
	put.Header.Set("Content-Type", "application/octet-stream")
	presp, err := f.client.Do(put)
	if err != nil {
		if body.stalled() {
			return 0, fmt.Errorf("transfer stalled for %s", f.cfg.IOIdle)
		}
		return 0, fmt.Errorf("storage put: %w", err)
	}
	defer presp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(presp.Body, 4096))
	switch presp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		return body.n(), nil
	case http.StatusUnprocessableEntity:
		f.m.lies.Inc()
		return 0, errMismatch
	default:
		return 0, fmt.Errorf("storage put answered %d: %s", presp.StatusCode, strings.TrimSpace(string(b)))
	}
}

func (f *Fetcher) blobURL(addr, id string) string {
	return f.cfg.Overlay + "/overlay/blobs/" + addr + "?from=" + url.QueryEscape(id)
}

// provider is one entry of GET /dht/providers/{addr}.
type provider struct {
	PeerID string `json:"peer_id"`
	NodeID string `json:"node_id"`
}

// providers returns the node ids of addr's providers, this node excluded,
// in the DHT's order, at most MaxProviders.
func (f *Fetcher) providers(ctx context.Context, addr string) ([]string, error) {
	self := f.selfID(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.cfg.DHT+"/dht/providers/"+addr, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLookup, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLookup, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%w: dht answered %d: %s", ErrLookup, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var out struct {
		Providers []provider `json:"providers"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("%w: decode dht answer: %w", ErrLookup, err)
	}
	var ids []string
	seen := map[string]bool{}
	for _, p := range out.Providers {
		if p.NodeID == "" || p.NodeID == self || seen[p.NodeID] {
			continue
		}
		seen[p.NodeID] = true
		ids = append(ids, p.NodeID)
		if len(ids) == f.cfg.MaxProviders {
			break
		}
	}
	if len(ids) == 0 {
		return nil, ErrNoProvider
	}
	return ids, nil
}

// selfID is this node's id from the overlay ("" until it answers).
func (f *Fetcher) selfID(ctx context.Context) string {
	f.selfMu.Lock()
	id := f.self
	f.selfMu.Unlock()
	if id != "" {
		return id
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.cfg.Overlay+"/overlay/info", nil)
	if err != nil {
		return ""
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var info struct {
		NodeID string `json:"node_id"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&info) != nil {
		return ""
	}
	f.selfMu.Lock()
	f.self = info.NodeID
	f.selfMu.Unlock()
	return info.NodeID
}

func resultOf(err error) string {
	switch {
	case errors.Is(err, ErrNoProvider):
		return "no_provider"
	case errors.Is(err, ErrLookup):
		return "lookup_error"
	default:
		return "no_delivery"
	}
}
