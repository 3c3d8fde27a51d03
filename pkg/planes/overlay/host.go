package overlay

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/macronode/macronode/pkg/planes/overlay/oap"
)

// Resource manager limits: explicit numbers rather than a share of this
// machine's memory, so every node enforces the same bounds.
const (
	rcmSystemMemory  = 1 << 30
	rcmSystemFDs     = 1024
	rcmSystemConns   = 1024
	rcmSystemStreams = 8192
	rcmPeerConns     = 8
	rcmPeerStreams   = 512
	rcmPeerMemory    = 128 << 20
)

// newHost builds the overlay's libp2p host: TCP and QUIC, Noise and TLS 1.3,
// yamux, ping and identify, under a resource manager with explicit limits.
// It dials only what it is told: no relays, no hole punching, no NAT port
// mapping, no mDNS, and reachability fixed so AutoNAT never probes.
func newHost(cfg Config, key crypto.PrivKey) (host.Host, error) {
	rm, err := newResourceManager(cfg)
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(cfg.P2PListen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.DisableRelay(),
		libp2p.ForceReachabilityPublic(),
		libp2p.Ping(true),
		libp2p.UserAgent("macronode/" + cfg.Version),
		libp2p.DisableMetrics(),
	}
	if len(cfg.Announce) > 0 {
		announce := make([]ma.Multiaddr, 0, len(cfg.Announce))
		for _, s := range cfg.Announce {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				_ = rm.Close()
				return nil, fmt.Errorf("--announce %q: %w", s, err)
			}
			announce = append(announce, a)
		}
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return announce }))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		_ = rm.Close()
		return nil, fmt.Errorf("start libp2p host on %v: %w", cfg.P2PListen, err)
	}
	return h, nil
}

func newResourceManager(cfg Config) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	base := scaling.Scale(rcmSystemMemory, rcmSystemFDs)
	perPeerOAP := rcmgr.LimitVal(cfg.MaxStreamsPerPeer)
	limits := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns: rcmSystemConns, ConnsInbound: rcmSystemConns / 2, ConnsOutbound: rcmSystemConns / 2,
			Streams: rcmSystemStreams, FD: rcmSystemFDs, Memory: rcmSystemMemory,
		},
		PeerDefault: rcmgr.ResourceLimits{
			Conns: rcmPeerConns, Streams: rcmPeerStreams, Memory: rcmPeerMemory,
		},
		// A backstop behind the plane's own per-peer stream limit, which
		// answers REJECT instead of resetting the stream.
		ProtocolPeer: map[protocol.ID]rcmgr.ResourceLimits{
			oap.ProtocolID: {Streams: 4 * perPeerOAP, StreamsInbound: 2 * perPeerOAP, StreamsOutbound: 2 * perPeerOAP},
		},
	}.Build(base)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits))
	if err != nil {
		return nil, fmt.Errorf("libp2p resource manager: %w", err)
	}
	return rm, nil
}
