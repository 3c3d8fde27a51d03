// Command svc-dht is the DHT plane of macronode (Kademlia peers and provider
// records) as its own process, on the shared child runtime.
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
		Name:        "dht",
		DefaultAddr: "127.0.0.1:9200",
		Summary:     "DHT plane: Kademlia peers and provider records (who holds which address) (plane API not built yet: health, readiness, metrics and GET /info only)",
		Build: func(_ context.Context, _ svcrt.Env) (svcrt.Service, error) {
			return svcrt.HealthOnly("dht"), nil
		},
	}))
}
