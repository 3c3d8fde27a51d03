// Package overlay is the overlay plane (SPEC §8 overlay): a libp2p host
// with the node key, sessions to the bootstrap peers and the peers they lead
// to, a peer table, signed node records gossiped on gossipsub, and OAP/1
// (package oap) to serve blobs from this node's storage plane and fetch
// them from peers, behind a small internal HTTP API.
package overlay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/macronode/macronode/pkg/identity"
	"github.com/macronode/macronode/pkg/planes/overlay/oap"
)

// Server is the overlay plane. It satisfies the child runtime's Service.
type Server struct {
	cfg     Config
	log     hclog.Logger
	key     crypto.PrivKey
	host    host.Host
	peers   *peerTable
	dialer  *dialer
	limits  *peerLimits
	metrics *metrics
	httpc   *http.Client
	gossip  gossip
	handler http.Handler

	recMu  sync.Mutex
	rec    identity.NodeRecord
	recRaw []byte

	publishReq chan struct{}
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
}

// New starts the overlay: it loads the node key (--identity-file, or a
// fresh one in memory under amnesia, or DataDir/node.key, created if missing),
// starts the libp2p host and gossip, and begins dialing the bootstrap peers.
// Close stops it all.
func New(cfg Config, log hclog.Logger, reg prometheus.Registerer) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	key, err := loadKey(cfg)
	if err != nil {
		return nil, err
	}
	h, err := newHost(cfg, key)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: log, key: key, host: h,
		peers:      newPeerTable(h.ID()),
		limits:     newPeerLimits(),
		httpc:      &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: cfg.FetchTimeout, MaxIdleConnsPerHost: 16}},
		publishReq: make(chan struct{}, 1),
		ctx:        ctx, cancel: cancel,
	}
	s.metrics, err = newMetrics(reg, s.peerCount)
	if err != nil {
		cancel()
		return nil, errors.Join(fmt.Errorf("register overlay metrics: %w", err), h.Close())
	}
	s.dialer = newDialer(h, log.Named("dialer"), cfg.MaxPeers, s.peerUp)
	s.handler = s.routes()
	h.SetStreamHandler(oap.ProtocolID, s.handleStream)
	if err := s.startGossip(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	if err := s.watchConnections(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	s.refreshRecord(ctx, false) // the record loop's first poll (PollInterval) asks the DHT
	for _, b := range cfg.Bootstrap {
		info, _ := peer.AddrInfoFromString(b) // validated in withDefaults
		s.dialer.add(*info, true)
	}
	s.goFunc(func() { s.dialer.run(ctx, cfg.DialTick) })
	s.goFunc(func() { s.recordLoop(ctx) })
	s.goFunc(func() { s.maintain(ctx) })
	log.Info("overlay host started", "node_id", h.ID().String(), "listen", fmt.Sprint(h.Network().ListenAddresses()),
		"bootstrap", len(cfg.Bootstrap))
	return s, nil
}

func loadKey(cfg Config) (crypto.PrivKey, error) {
	if cfg.IdentityFile != "" {
		key, err := identity.Load(cfg.IdentityFile)
		if err != nil {
			return nil, fmt.Errorf("node key: %w", err)
		}
		return key, nil
	}
	if cfg.Amnesia {
		return identity.Generate() // a fresh key, in memory only
	}
	path := filepath.Join(cfg.DataDir, KeyFileName)
	key, _, err := identity.LoadOrCreate(path)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	return key, nil
}

func (s *Server) goFunc(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// NodeID returns this node's id.
func (s *Server) NodeID() peer.ID { return s.host.ID() }

// Handler serves the overlay's HTTP API.
func (s *Server) Handler() http.Handler { return s.handler }

// Ready reports whether the host listens; zero peers is still ready (a lone
// first node).
func (s *Server) Ready() error {
	if s.ctx.Err() != nil {
		return errors.New("overlay closed")
	}
	if len(s.host.Network().ListenAddresses()) == 0 {
		return errors.New("libp2p host has no listen address")
	}
	return nil
}

// Close stops the goroutines, gossip and the host.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.host.RemoveStreamHandler(oap.ProtocolID)
		errs := []error{s.closeGossip()} // while the PubSub still runs
		s.cancel()
		s.wg.Wait()
		errs = append(errs, s.host.Close())
		s.httpc.CloseIdleConnections()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *Server) peerCount(connected bool) float64 {
	known, conn := s.peers.counts(s.host)
	if connected {
		return float64(conn)
	}
	return float64(known)
}

// peerUp notes a new connection in the peer table.
func (s *Server) peerUp(id peer.ID) { s.peers.seen(id, time.Now()) }

// watchConnections adds every peer that connects, inbound or outbound, to
// the peer table.
func (s *Server) watchConnections(ctx context.Context) error {
	sub, err := s.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return fmt.Errorf("subscribe to connection events: %w", err)
	}
	s.goFunc(func() {
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				if ev := e.(event.EvtPeerConnectednessChanged); ev.Connectedness == network.Connected {
					s.peerUp(ev.Peer)
				}
			}
		}
	})
	return nil
}

// maintain pings connected peers for their RTT (kept in the peerstore)
// and forgets peers gone for longer than PeerTTL.
func (s *Server) maintain(ctx context.Context) {
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		s.pingAll(ctx)
		for _, id := range s.peers.expire(s.host, time.Now().Add(-s.cfg.PeerTTL)) {
			s.dialer.remove(id)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) pingAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, id := range s.host.Network().Peers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if res := <-ping.Ping(pctx, s.host, id); res.Error == nil {
				s.peers.seen(id, time.Now()) // ping.Ping recorded the RTT in the peerstore
			}
		}()
	}
	wg.Wait()
}
