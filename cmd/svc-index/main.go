// Command svc-index is the index plane of macronode as its own process, on the
// shared child runtime: a durable naming index.
package main

import (
	"context"
	"os"

	"github.com/macronode/macronode/pkg/planes/index"
	"github.com/macronode/macronode/pkg/svcrt"
)

func main() {
	var cfg index.Config
	os.Exit(svcrt.Main(svcrt.Plane{
		Name:        "index",
		DefaultAddr: "127.0.0.1:9400",
		Summary:     "index plane: names -> content addresses, versioned, compare-and-set",
		Flags:       cfg.RegisterFlags,
		Routes: []svcrt.Route{
			{Pattern: "GET /names", Doc: "list the names"},
			{Pattern: "GET /names/{name...}", Doc: "resolve a name to its record"},
			{Pattern: "PUT /names/{name...}", Doc: "set a name (If-Match for compare-and-set)"},
			{Pattern: "DELETE /names/{name...}", Doc: "delete a name"},
		},
		Build: func(_ context.Context, env svcrt.Env) (svcrt.Service, error) {
			cfg.DataDir, cfg.Amnesia = env.DataDir, env.Amnesia
			return index.New(cfg, env.Logger, env.Registry)
		},
	}))
}
