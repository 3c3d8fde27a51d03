// Command svc-dht is the DHT plane of macronode (Kademlia peers and provider
// records) as its own process, on the shared child runtime.
package main

import (
	"context"
	"os"

	"github.com/macronode/macronode/pkg/svcrt"
)

func main() {
	os.Exit(svcrt.Main(svcrt.Plane{
		Name:        "dht",
		DefaultAddr: "127.0.0.1:9200",
		Summary:     "DHT plane: Kademlia peers and provider records (who holds which address)",
		Build: func(_ context.Context, _ svcrt.Env) (svcrt.Service, error) {
			return svcrt.HealthOnly("dht"), nil
		},
	}))
}
