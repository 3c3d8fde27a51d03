// Command svc-gateway is the gateway plane of macronode as its own process, on the
// shared child runtime: the public HTTP ingress.
package main

import (
	"context"
	"net"
	"os"

	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/planes/gateway"
	"github.com/macronode/macronode/pkg/routes"
	"github.com/macronode/macronode/pkg/svcrt"
)

func main() {
	var cfg gateway.Config
	os.Exit(svcrt.Main(svcrt.Plane{
		Name:        "gateway",
		DefaultAddr: "127.0.0.1:8090",
		Summary:     "gateway plane: public HTTP ingress routing /o, /names, /mailboxes to the planes; fetches blobs missing locally from peers",
		Flags:       cfg.RegisterFlags,
		Routes:      gatewayRoutes(),
		Listener:    func(ln net.Listener) net.Listener { return httpx.LimitListener(ln, cfg.MaxConns) },
		PrivateOps:  true, // /metrics and /version only on --internal-listen
		Build: func(_ context.Context, env svcrt.Env) (svcrt.Service, error) {
			cfg.DataDir, cfg.Amnesia, cfg.Ops = env.DataDir, env.Amnesia, env.Ops
			env.Logger.Debug("GOMAXPROCS", "n", cfg.ApplyMaxProcs())
			return gateway.New(cfg, env.Logger, env.Registry)
		},
	}))
}

// gatewayRoutes are the gateway's routes for --help: its own, then one
// pair per backend of the route table (pkg/routes) it proxies to.
func gatewayRoutes() []svcrt.Route {
	out := []svcrt.Route{
		{Pattern: "GET /ingress/ping", Doc: "the gateway itself answers (no backend involved)"},
		{Pattern: "POST /o", Doc: "store a blob on storage; its address is then announced to the DHT"},
		{Pattern: "GET /o/{addr}", Doc: "read a blob from storage, fetched from peers when missing here"},
		{Pattern: "GET /o", Doc: "refused here (405): storage's listing is internal to the node"},
		{Pattern: "PUT /o/{addr}", Doc: "refused here (405): storage's verified PUT is internal to the node"},
	}
	for _, r := range routes.All {
		out = append(out,
			svcrt.Route{Pattern: r.Prefix, Doc: "proxied to " + r.Name + " (" + r.Flag + ")"},
			svcrt.Route{Pattern: r.Prefix + "/", Doc: "anything under it, proxied to " + r.Name})
	}
	return out
}
