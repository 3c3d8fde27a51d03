// Command svc-overlay is the overlay plane of macronode (node-to-node
// sessions over libp2p, gossip of signed node records, OAP/1 blob transfer)
// as its own process, on the shared child runtime.
package main

import (
	"context"
	"os"

	"github.com/macronode/macronode/pkg/buildinfo"
	"github.com/macronode/macronode/pkg/planes/overlay"
	"github.com/macronode/macronode/pkg/svcrt"
)

func main() {
	var cfg overlay.Config
	os.Exit(svcrt.Main(svcrt.Plane{
		Name:        "overlay",
		DefaultAddr: "127.0.0.1:9100",
		Summary:     "overlay plane: libp2p sessions between nodes, gossip of signed node records, OAP/1 blob transfer",
		Flags:       cfg.RegisterFlags,
		Routes: []svcrt.Route{
			{Pattern: "GET /overlay/info", Doc: "this node's id, addresses and peer counts"},
			{Pattern: "GET /overlay/peers", Doc: "the peer table"},
			{Pattern: "GET /overlay/record", Doc: "this node's signed node record"},
			{Pattern: "POST /overlay/connect", Doc: "dial a peer by multiaddr"},
			{Pattern: "GET /overlay/blobs/{addr}", Doc: "fetch a blob from peers over OAP/1 (HEAD too)"},
		},
		Build: func(_ context.Context, env svcrt.Env) (svcrt.Service, error) {
			cfg.Amnesia, cfg.DataDir, cfg.Version = env.Amnesia, env.DataDir, buildinfo.Version
			if err := cfg.Validate(); err != nil {
				return nil, &svcrt.UsageError{Err: err}
			}
			return overlay.New(cfg, env.Logger, env.Registry)
		},
	}))
}
