// Command macronode is the node host: it supervises the service planes
// (`macronode run`) and is the operator's client of a running node.
package main

import (
	"os"

	"github.com/macronode/macronode/pkg/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr))
}
