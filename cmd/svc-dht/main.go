// Command svc-dht is the DHT plane of macronode (Kademlia peers and provider
// records) as its own process, on the shared child runtime.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/macronode/macronode/pkg/planes/dht"
	"github.com/macronode/macronode/pkg/svcrt"
)

func main() {
	var cfg dht.Config
	os.Exit(svcrt.Main(svcrt.Plane{
		Name:        "dht",
		DefaultAddr: "127.0.0.1:9200",
		Summary:     "DHT plane: Kademlia (go-libp2p-kad-dht, prefix /macronode) mapping content addresses to the nodes that provide them",
		Flags:       cfg.RegisterFlags,
		Routes: []svcrt.Route{
			{Pattern: "POST /dht/providers/{addr}", Doc: "announce this node as a provider of addr (?sync=1: now)"},
			{Pattern: "GET /dht/providers/{addr}", Doc: "find the nodes that provide addr"},
			{Pattern: "GET /dht/peers", Doc: "the routing table"},
			{Pattern: "GET /dht/info", Doc: "the DHT host's id, addresses and table size"},
			{Pattern: "GET /info", Doc: "what this process is (service, plane, peer id)"},
		},
		Build: func(_ context.Context, env svcrt.Env) (svcrt.Service, error) {
			cfg.DataDir, cfg.Amnesia = env.DataDir, env.Amnesia
			s, err := dht.New(cfg, env.Logger, env.Registry)
			if errors.Is(err, dht.ErrConfig) {
				return nil, &svcrt.UsageError{Err: err}
			}
			return s, err
		},
	}))
}
