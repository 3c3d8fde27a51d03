// Command svc-gateway is the gateway plane of macronode as its own process, on the
// shared child runtime: the public HTTP ingress.
package main

import (
	"context"
	"net"
	"os"

	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/planes/gateway"
	"github.com/macronode/macronode/pkg/svcrt"
)

func main() {
	var cfg gateway.Config
	os.Exit(svcrt.Main(svcrt.Plane{
		Name:        "gateway",
		DefaultAddr: "127.0.0.1:8090",
		Summary:     "gateway plane: public HTTP ingress routing /o, /names, /mailboxes to the planes; fetches blobs missing locally from peers",
		Flags:       cfg.RegisterFlags,
		Listener:    func(ln net.Listener) net.Listener { return httpx.LimitListener(ln, cfg.MaxConns) },
		PrivateOps:  true, // /metrics and /version only on --internal-listen
		Build: func(_ context.Context, env svcrt.Env) (svcrt.Service, error) {
			cfg.DataDir, cfg.Amnesia, cfg.Ops = env.DataDir, env.Amnesia, env.Ops
			return gateway.New(cfg, env.Logger, env.Registry)
		},
	}))
}
