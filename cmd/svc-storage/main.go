// Command svc-storage is the storage plane of macronode as its own process, on the
// shared child runtime: a BLAKE3 content-addressed blob store.
package main

import (
	"context"
	"os"

	"github.com/macronode/macronode/pkg/planes/storage"
	"github.com/macronode/macronode/pkg/svcrt"
)

func main() {
	var cfg storage.Config
	os.Exit(svcrt.Main(svcrt.Plane{
		Name:        "storage",
		DefaultAddr: "127.0.0.1:9300",
		Summary:     "storage plane: BLAKE3 content-addressed blob store (b3:<64 hex>)",
		Flags:       cfg.RegisterFlags,
		Routes: []svcrt.Route{
			{Pattern: "POST /o", Doc: "store the body as a blob; answers its address b3:<hex>"},
			{Pattern: "PUT /o/{addr}", Doc: "store a blob at a known address, verified against it"},
			{Pattern: "GET /o", Doc: "list the stored addresses"},
			{Pattern: "GET /o/{addr}", Doc: "read a blob (HEAD: its size; Range supported)"},
		},
		Build: func(_ context.Context, env svcrt.Env) (svcrt.Service, error) {
			cfg.DataDir, cfg.Amnesia = env.DataDir, env.Amnesia
			return storage.New(cfg, env.Logger, env.Registry)
		},
	}))
}
