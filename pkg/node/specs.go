package node

import (
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/routes"
	"github.com/macronode/macronode/pkg/supervisor"
)

// Specs translates the configuration into one supervisor.Spec per enabled
// plane, in start order. The parent hands each child everything it needs as
// flags (SPEC §3): listen address, its own data directory, log settings,
// limits; for the gateway, the backends' addresses (routes.All) and the
// DHT's and overlay's URLs; for the overlay and the DHT, their libp2p listen
// and announce addresses, the bootstrap peers and the URLs of the planes
// they talk to. A developer running a
// child by hand passes the same flags.
//
// A binary that cannot be resolved is kept as its bare name: the spawn then
// fails, the service goes through backoff and its last_error says why, which
// is what an operator can see and fix (`macronode doctor` reports it too).
func Specs(cfg *config.Config) []supervisor.Spec {
	enabled := cfg.Enabled()
	on := make(map[string]bool, len(enabled))
	for _, p := range enabled {
		on[p] = true
	}
	specs := make([]supervisor.Spec, 0, len(enabled))
	for _, plane := range enabled {
		s := cfg.Services[plane]
		bin, err := config.ResolveBinary(plane, s.Binary)
		if err != nil {
			bin = config.BinaryName(plane)
			if s.Binary != "" {
				bin = s.Binary
			}
		}
		var deps []string
		for _, d := range s.DependsOn {
			if on[d] && d != plane {
				deps = append(deps, d)
			}
		}
		specs = append(specs, supervisor.Spec{
			Name:   plane,
			Binary: bin,
			Args:   append(childArgs(cfg, plane, on), s.Args...),
			Env:    envList(s.Env),
			Listen: s.Listen,
			// The parent holds every plane's HTTP socket across restarts
			// (pkg/supervisor held.go); the gateway's internal metrics port
			// and the libp2p ports stay the child's own.
			HoldListener: true,
			Critical:     s.Critical,
			DependsOn:    deps,
			Policy: supervisor.Policy{
				Initial:       s.Backoff.Initial.D(),
				Max:           s.Backoff.Max.D(),
				Multiplier:    s.Backoff.Multiplier,
				Randomization: 0.2,
				MaxRestarts:   s.MaxRestarts,
				Window:        s.RestartWindow.D(),
				FailedRetry:   s.FailedRetry.D(),
				StableAfter:   s.StableAfter.D(),
			},
			StartTimeout:     s.StartTimeout.D(),
			HeartbeatTimeout: s.HeartbeatTimeout.D(),
			ShutdownTimeout:  cfg.ShutdownTimeout.D(),
		})
	}
	return specs
}

// childArgs are the flags of one plane's child, common ones first.
func childArgs(cfg *config.Config, plane string, on map[string]bool) []string {
	args := []string{
		"--listen", cfg.Services[plane].Listen,
		"--data-dir", filepath.Join(cfg.DataDir, plane),
		"--log-level", cfg.LogLevel,
		"--log-format", "json",
		"--shutdown-timeout", cfg.ShutdownTimeout.D().String(),
	}
	if cfg.Amnesia {
		args = append(args, "--amnesia")
	}
	size := func(s config.Size) string { return strconv.FormatInt(int64(s), 10) }
	idle := []string{"--io-idle-timeout", cfg.IOIdleTimeout.D().String()}
	switch plane {
	case "storage":
		args = append(args,
			"--max-object-bytes", size(cfg.MaxObjectBytes),
			"--chunk-bytes", size(cfg.ChunkBytes))
		args = append(args, idle...)
	case "index", "mailbox":
		args = append(args, idle...)
	case "gateway":
		args = append(args, gatewayArgs(cfg, on)...)
		args = append(args, idle...)
	case "overlay":
		args = append(args, repeat("--p2p-listen", cfg.Services[plane].P2PListen)...)
		args = append(args, repeat("--bootstrap", cfg.Network.Bootstrap)...)
		args = append(args, repeat("--announce", announceFor(cfg, "overlay"))...)
		args = append(args, planeURLs(cfg, on, "storage", "dht")...)
		args = append(args,
			"--max-frame-bytes", size(cfg.OAPMaxFrameBytes),
			"--chunk-bytes", size(cfg.ChunkBytes))
	case "dht":
		args = append(args, repeat("--p2p-listen", cfg.Services[plane].P2PListen)...)
		args = append(args, repeat("--announce", announceFor(cfg, "dht"))...)
		args = append(args, planeURLs(cfg, on, "overlay", "storage")...)
		args = append(args, "--reprovide-interval", cfg.DHT.ReprovideInterval.D().String())
	}
	return args
}

// gatewayArgs are the gateway's own flags: its backends (routes.All), the
// planes it reaches to fetch and announce blobs, and its limits.
func gatewayArgs(cfg *config.Config, on map[string]bool) []string {
	var args []string
	for _, r := range routes.All {
		if on[r.Name] {
			args = append(args, r.Flag, cfg.Services[r.Name].Listen)
		}
	}
	// The gateway reaches the DHT and the overlay directly (never routing
	// them) to fetch blobs missing locally and announce stored ones.
	args = append(args, planeURLs(cfg, on, "dht", "overlay")...)
	args = append(args,
		"--fetch-timeout", cfg.FetchTimeout.D().String(),
		"--max-body-bytes", strconv.FormatInt(int64(cfg.MaxBodyBytes), 10),
		"--max-object-bytes", strconv.FormatInt(int64(cfg.MaxObjectBytes), 10),
		"--max-conns", strconv.Itoa(cfg.GatewayMaxConns),
		"--rate", strconv.FormatFloat(cfg.GatewayRate, 'g', -1, 64),
		"--burst", strconv.Itoa(cfg.GatewayBurst))
	if len(cfg.GatewayTrustedProxies) > 0 {
		args = append(args, "--trusted-proxies", strings.Join(cfg.GatewayTrustedProxies, ","))
	}
	// /metrics and /version are off the public port (SPEC §7): the gateway
	// serves them on a loopback port the kernel picks when it binds, and
	// names it in its ready message, where the parent scrapes it. (A port
	// picked here and bound later could be taken in between, for good.)
	args = append(args, FlagInternalListen, "127.0.0.1:0")
	if t := cfg.GatewayTLS; t.Cert != "" {
		args = append(args, "--tls-cert", t.Cert, "--tls-key", t.Key, "--pq-mode", cfg.PQMode)
	}
	return args
}

// planeURLs gives --<plane>-url http://<listen> for each enabled plane of
// planes: the loopback HTTP API one child calls on another.
func planeURLs(cfg *config.Config, on map[string]bool, planes ...string) []string {
	var out []string
	for _, p := range planes {
		if on[p] {
			out = append(out, "--"+p+"-url", "http://"+cfg.Services[p].Listen)
		}
	}
	return out
}

// repeat gives flag once per value: the overlay and dht children take
// repeatable flags.
func repeat(flag string, values []string) []string {
	out := make([]string, 0, 2*len(values))
	for _, v := range values {
		out = append(out, flag, v)
	}
	return out
}

// envList turns a service's env map into sorted KEY=VALUE pairs, so that the
// child's environment does not depend on map iteration order.
func envList(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// FlagInternalListen is the gateway's flag for its internal listener.
const FlagInternalListen = "--internal-listen"

// announceFor is the part of network.announce that the libp2p host of plane
// (overlay or dht) advertises. The two hosts listen on different ports, so
// an entry whose TCP or UDP port is one of a plane's p2p_listen ports is
// that plane's alone; an entry that matches neither plane's ports (a NAT
// mapping to another port) goes to both, and a peer that dials the wrong
// host fails its peer-id check and tries the next address.
func announceFor(cfg *config.Config, plane string) []string {
	ports := func(p string) map[string]bool {
		m := map[string]bool{}
		for _, a := range cfg.Services[p].P2PListen {
			if port := p2pPort(a); port != "" {
				m[port] = true
			}
		}
		return m
	}
	own, other := ports(plane), ports(map[string]string{"overlay": "dht", "dht": "overlay"}[plane])
	var out []string
	for _, a := range cfg.Network.Announce {
		port := p2pPort(a)
		if own[port] || !other[port] {
			out = append(out, a)
		}
	}
	return out
}

// p2pPort is the port after the first /tcp/ or /udp/ component of a
// multiaddr ("" when it has none).
func p2pPort(addr string) string {
	parts := strings.Split(addr, "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "tcp" || parts[i] == "udp" {
			return parts[i+1]
		}
	}
	return ""
}
