package dht

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/macronode/macronode/pkg/buildinfo"
)

// Resource limits of the DHT host. A DHT server talks to many peers with
// short request/response streams; these caps keep a flood of peers or
// streams from exhausting memory or file descriptors.
const (
	maxMemoryBytes      = 256 << 20 // whole host
	maxFDs              = 1024
	maxConns            = 512
	maxConnsInbound     = 256
	maxStreams          = 4096
	maxStreamsPerPeer   = 64
	maxInboundPerPeer   = 32
	maxConnsPerPeer     = 8
	maxPeerMemoryBytes  = 16 << 20
	connMgrLow, connMgr = 100, 400
)

// resourceManager builds the explicit limits over libp2p's scaled defaults
// (which also carry per-protocol and per-service limits for identify, ping
// and the like).
func resourceManager() (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	base := scaling.Scale(maxMemoryBytes, maxFDs)
	explicit := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns: maxConns, ConnsInbound: maxConnsInbound, ConnsOutbound: maxConns,
			Streams: maxStreams, FD: maxFDs, Memory: maxMemoryBytes,
		},
		PeerDefault: rcmgr.ResourceLimits{
			Conns: maxConnsPerPeer, Streams: maxStreamsPerPeer,
			StreamsInbound: maxInboundPerPeer, StreamsOutbound: maxStreamsPerPeer,
			Memory: maxPeerMemoryBytes,
		},
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(explicit.Build(base)))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}

// newHost starts the DHT's libp2p host: TCP and QUIC, Noise and TLS 1.3,
// yamux, ping and identify, explicit resource limits. It reaches for no
// other network on its own: no relay, no NAT port mapping, no hole
// punching, no mDNS, and reachability is fixed so AutoNAT never probes.
func newHost(key crypto.PrivKey, listen, announce []string) (host.Host, error) {
	var announceAddrs []ma.Multiaddr
	for _, s := range announce {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("announce address %q: %w", s, err)
		}
		announceAddrs = append(announceAddrs, a)
	}
	rm, err := resourceManager()
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(connMgrLow, connMgr)
	if err != nil {
		_ = rm.Close()
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.Ping(true),
		libp2p.DisableRelay(),
		libp2p.ForceReachabilityPublic(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("macronode-dht/" + buildinfo.Version),
	}
	if len(announceAddrs) > 0 {
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return announceAddrs }))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		_ = cm.Close()
		_ = rm.Close()
		return nil, fmt.Errorf("start libp2p host on %v: %w", listen, err)
	}
	return h, nil
}
