// Command svc-overlay is the overlay plane of macronode (node-to-node
// sessions and gossip) as its own process, on the shared child runtime.
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
		Summary:     "overlay plane: node-to-node sessions over TCP with a framed protocol, gossip",
		Build: func(_ context.Context, _ svcrt.Env) (svcrt.Service, error) {
			return svcrt.HealthOnly("overlay"), nil
		},
	}))
}
