package dht

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	// maxOverlayBody caps what is read from the overlay's peer table.
	maxOverlayBody = 8 << 20
	// maxRecordBody caps a node record read from the overlay (identity's
	// Verify refuses anything larger anyway).
	maxRecordBody = 64 << 10
	// connectTimeout bounds one dial of a DHT peer the overlay named.
	connectTimeout = 5 * time.Second
	// maxParallelDials bounds the dials of one bootstrap round.
	maxParallelDials = 8
)

// overlayPeer is one entry of GET {overlay}/overlay/peers, as far as the DHT
// needs it.
type overlayPeer struct {
	NodeID    string   `json:"node_id"`
	Addrs     []string `json:"addrs"`
	DHTPeerID string   `json:"dht_peer_id"`
	DHTAddrs  []string `json:"dht_addrs"`
}

// nodeInfo is the overlay identity behind a DHT peer.
type nodeInfo struct {
	NodeID       string
	OverlayAddrs []string
}

// overlayPeers is the last peer table read from the overlay: the DHT peers
// to bootstrap from and a fallback map from DHT peer to node.
type overlayPeers struct {
	mu    sync.Mutex
	infos []peer.AddrInfo
	nodes map[peer.ID]nodeInfo
}

// set replaces the table with the usable entries of ps; entries without a
// valid DHT peer id or address are skipped.
func (o *overlayPeers) set(self peer.ID, ps []overlayPeer) {
	infos := make([]peer.AddrInfo, 0, len(ps))
	nodes := make(map[peer.ID]nodeInfo, len(ps))
	for _, p := range ps {
		id, err := peer.Decode(p.DHTPeerID)
		if err != nil || id == self {
			continue
		}
		nodes[id] = nodeInfo{NodeID: p.NodeID, OverlayAddrs: p.Addrs}
		ai := peer.AddrInfo{ID: id}
		for _, s := range p.DHTAddrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				ai.Addrs = append(ai.Addrs, a)
			}
		}
		if len(ai.Addrs) > 0 {
			infos = append(infos, ai)
		}
	}
	o.mu.Lock()
	o.infos, o.nodes = infos, nodes
	o.mu.Unlock()
}

// addrInfos returns the DHT peers to bootstrap from (kad-dht also calls it
// when its routing table runs low).
func (o *overlayPeers) addrInfos() []peer.AddrInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.infos)
}

// node returns the overlay node behind DHT peer p, if the overlay knows it.
func (o *overlayPeers) node(p peer.ID) (nodeInfo, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, ok := o.nodes[p]
	return n, ok
}

// getOverlay GETs path from the overlay and returns at most limit bytes of a
// 200 body.
func (s *Server) getOverlay(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.OverlayURL+path, nil)
	if err != nil {
		return nil, fmt.Errorf("overlay %s: %w", path, err)
	}
	res, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("overlay %s: %w", path, err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("overlay %s: status %s", path, res.Status)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("overlay %s: read body: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("overlay %s: body over %d bytes", path, limit)
	}
	return b, nil
}

// bootstrapLoop reads the overlay's peer table now and every BootstrapPoll,
// and dials the DHT peers it names that are not connected yet. kad-dht adds
// a peer to its routing table once identify shows it speaks the DHT
// protocol; when the table was empty, a refresh is started to find the
// peers those lead to.
func (s *Server) bootstrapLoop(ctx context.Context) {
	if s.cfg.OverlayURL == "" {
		return
	}
	t := time.NewTicker(s.cfg.BootstrapPoll)
	defer t.Stop()
	for {
		if err := s.bootstrapOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Debug("bootstrap from overlay", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) bootstrapOnce(ctx context.Context) error {
	b, err := s.getOverlay(ctx, "/overlay/peers", maxOverlayBody)
	if err != nil {
		return err
	}
	var body struct {
		Peers []overlayPeer `json:"peers"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return fmt.Errorf("overlay /overlay/peers: decode: %w", err)
	}
	s.peers.set(s.host.ID(), body.Peers)
	wasEmpty := s.kad.RoutingTable().Size() == 0
	if n := s.connect(ctx, s.peers.addrInfos()); n > 0 && wasEmpty {
		s.log.Info("connected to dht peers from the overlay", "peers", n)
		// The refresh runs in kad-dht's own goroutine; its result is only
		// logged there.
		_ = s.kad.RefreshRoutingTable()
	}
	return nil
}

// connect dials the peers of infos that are not connected, a few at a time,
// and returns how many connections it made.
func (s *Server) connect(ctx context.Context, infos []peer.AddrInfo) int {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		made int
		sem  = make(chan struct{}, maxParallelDials)
		errs []error
	)
	for _, ai := range infos {
		if s.host.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, connectTimeout)
			defer cancel()
			err := s.host.Connect(cctx, ai)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("dial %s: %w", ai.ID, err))
				return
			}
			made++
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil && ctx.Err() == nil {
		s.log.Debug("some dht peers from the overlay did not answer", "error", err)
	}
	return made
}
