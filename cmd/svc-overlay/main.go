// Command svc-overlay is the overlay plane of macronode (node-to-node
// sessions and gossip) as its own process, on the shared child runtime.
//
// Its plane API is not built yet: today it runs on the child runtime with
// /healthz, /readyz, /metrics and GET /info only.
package main

import (
	"context"
	"os"

	"github.com/macronode/macronode/pkg/svcrt"
)

func main() {
	os.Exit(svcrt.Main(svcrt.Plane{
		Name:        "overlay",
		DefaultAddr: "127.0.0.1:9100",
		Summary:     "overlay plane: node-to-node sessions over TCP with a framed protocol, gossip (plane API not built yet: health, readiness, metrics and GET /info only)",
		Build: func(_ context.Context, _ svcrt.Env) (svcrt.Service, error) {
			return svcrt.HealthOnly("overlay"), nil
		},
	}))
}
