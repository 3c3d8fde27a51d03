package dht

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/macronode/macronode/pkg/httpx"
)

const (
	defaultProviderLimit = 20
	maxProviderLimit     = 100
	// maxParallelResolves bounds the record lookups of one GET /dht/providers.
	maxParallelResolves = 8
)

// Provider is one entry of GET /dht/providers/{addr}.
type Provider struct {
	PeerID       string   `json:"peer_id"`
	NodeID       string   `json:"node_id"`
	OverlayAddrs []string `json:"overlay_addrs"`
}

// Info is GET /dht/info.
type Info struct {
	PeerID          string        `json:"peer_id"`
	Addrs           []string      `json:"addrs"`
	RoutingTable    int           `json:"routing_table"`
	ProvidersStored int           `json:"providers_stored"`
	Reprovider      ReproviderSum `json:"reprovider"`
}

// ReproviderSum is the reprovider's state in GET /dht/info.
type ReproviderSum struct {
	Connectivity   string `json:"connectivity"`
	Keys           int64  `json:"keys"`
	PendingKeys    int64  `json:"pending_keys"`
	KeysProvided   int64  `json:"keys_provided"`
	KeysFailed     int64  `json:"keys_failed"`
	IntervalString string `json:"interval"`
}

// PeerEntry is one entry of GET /dht/peers.
type PeerEntry struct {
	PeerID    string   `json:"peer_id"`
	Addrs     []string `json:"addrs"`
	Connected bool     `json:"connected"`
}

func (s *Server) routes() *httpx.Mux {
	m := httpx.NewMux()
	m.HandleFunc("POST /dht/providers/{addr}", s.handleProvide)
	m.HandleFunc("GET /dht/providers/{addr}", s.handleFindProviders)
	m.HandleFunc("GET /dht/peers", s.handlePeers)
	m.HandleFunc("GET /dht/info", s.handleInfo)
	// GET /info says what this process is, as every plane's placeholder did.
	m.HandleFunc("GET /info", func(w http.ResponseWriter, _ *http.Request) {
		httpx.JSON(w, http.StatusOK, map[string]string{"service": "svc-dht", "plane": "dht", "peer_id": s.host.ID().String()})
	})
	return m
}

// handleProvide announces an address. By default the key goes to the
// reprovider's queue and keystore (it is provided by the sweep and kept on
// the reprovide schedule): 202. With ?sync=1 it is also provided at once
// to the closest peers, and the answer (200) comes after that.
func (s *Server) handleProvide(w http.ResponseWriter, r *http.Request) {
	addr := r.PathValue("addr")
	c, err := KeyFor(addr)
	if err != nil {
		httpx.Error(w, http.StatusBadRequest, "bad_address", err.Error())
		return
	}
	sync := r.URL.Query().Get("sync") == "1"
	mode, state := "queued", "queued"
	if sync {
		mode, state = "sync", "provided"
	}
	start := time.Now()
	// Record self as a provider locally at once, so this node answers for
	// the address even before the sweep (or while it has no peers).
	if err := s.kad.Provide(r.Context(), c, false); err != nil {
		s.metrics.provides.WithLabelValues(mode, "error").Inc()
		httpx.Errorf(w, http.StatusInternalServerError, "provide_failed", "record self as provider: %v", err)
		return
	}
	if err := s.prov.StartProviding(false, c.Hash()); err != nil {
		s.metrics.provides.WithLabelValues(mode, "error").Inc()
		httpx.Errorf(w, http.StatusServiceUnavailable, "provider_closed", "queue provide: %v", err)
		return
	}
	status := http.StatusAccepted
	if sync {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.LookupTimeout)
		defer cancel()
		if err := s.kad.Provide(ctx, c, true); err != nil {
			s.metrics.provides.WithLabelValues(mode, "error").Inc()
			httpx.Errorf(w, http.StatusBadGateway, "provide_failed", "provide to peers (the reprovider keeps trying): %v", err)
			return
		}
		status = http.StatusOK
	}
	s.metrics.provides.WithLabelValues(mode, "ok").Inc()
	s.metrics.provideSeconds.WithLabelValues(mode).Observe(time.Since(start).Seconds())
	httpx.JSON(w, status, map[string]string{"address": addr, "key": c.String(), "status": state})
}

// handleFindProviders looks up who provides an address and maps each
// provider to its node.
func (s *Server) handleFindProviders(w http.ResponseWriter, r *http.Request) {
	addr := r.PathValue("addr")
	c, err := KeyFor(addr)
	if err != nil {
		httpx.Error(w, http.StatusBadRequest, "bad_address", err.Error())
		return
	}
	limit := defaultProviderLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxProviderLimit {
			httpx.Errorf(w, http.StatusBadRequest, "bad_limit", "limit %q: want 1..%d", v, maxProviderLimit)
			return
		}
		limit = n
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.LookupTimeout)
	defer cancel()
	var ids []peer.ID
	for ai := range s.kad.FindProvidersAsync(ctx, c, limit) {
		ids = append(ids, ai.ID)
	}
	result := "found"
	if len(ids) == 0 {
		result = "none"
		if r.Context().Err() != nil {
			result = "canceled"
		}
	}
	s.metrics.lookups.WithLabelValues(result).Inc()
	s.metrics.lookupSeconds.Observe(time.Since(start).Seconds())
	out := s.resolveAll(r.Context(), ids)
	httpx.JSON(w, http.StatusOK, map[string][]Provider{"providers": out})
}

// resolveAll maps providers to nodes, a few lookups at a time, keeping the
// order kad-dht found them in.
func (s *Server) resolveAll(ctx context.Context, ids []peer.ID) []Provider {
	out := make([]Provider, len(ids))
	sem := make(chan struct{}, maxParallelResolves)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			n := s.resolve(ctx, id)
			addrs := n.OverlayAddrs
			if addrs == nil {
				addrs = []string{}
			}
			out[i] = Provider{PeerID: id.String(), NodeID: n.NodeID, OverlayAddrs: addrs}
		}()
	}
	wg.Wait()
	return out
}

func (s *Server) handlePeers(w http.ResponseWriter, _ *http.Request) {
	ids := s.kad.RoutingTable().ListPeers()
	out := make([]PeerEntry, 0, len(ids))
	for _, id := range ids {
		out = append(out, PeerEntry{
			PeerID:    id.String(),
			Addrs:     addrStrings(s.host.Peerstore().Addrs(id)),
			Connected: s.host.Network().Connectedness(id) == network.Connected,
		})
	}
	httpx.JSON(w, http.StatusOK, map[string][]PeerEntry{"peers": out})
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	info := Info{
		PeerID:          s.host.ID().String(),
		Addrs:           addrStrings(s.host.Addrs()),
		RoutingTable:    s.kad.RoutingTable().Size(),
		ProvidersStored: s.providersStored(r.Context()),
	}
	if st, err := s.prov.Stats(r.Context()); err == nil {
		info.Reprovider = ReproviderSum{
			Connectivity:   st.Connectivity.Status,
			Keys:           st.Schedule.Keys,
			PendingKeys:    st.Queues.PendingKeyProvides,
			KeysProvided:   st.Operations.Past.KeysProvided,
			KeysFailed:     st.Operations.Past.KeysFailed,
			IntervalString: s.cfg.ReprovideInterval.String(),
		}
	}
	httpx.JSON(w, http.StatusOK, info)
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}
