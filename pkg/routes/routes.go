// Package routes is the one table of the gateway's backend routes: which
// plane serves which path prefix, and the gateway flag that names its
// address. The gateway builds its mux, its per-backend metric labels and its
// address flags from it; the parent (pkg/node) builds the flags it hands
// the gateway from it. It imports nothing but the standard library.
package routes

import "strings"

// Route is one plane the gateway proxies to.
type Route struct {
	// Name is the plane's name, as in services.<name> and in metric labels.
	Name string
	// Prefix is the path the plane serves: Prefix itself and everything
	// under Prefix + "/".
	Prefix string
	// Flag is the gateway's flag (with its dashes) that takes the plane's
	// address.
	Flag string
}

// All are the gateway's routes, in the order the gateway lists them. The
// overlay and DHT planes are internal and have none.
var All = []Route{
	{Name: "storage", Prefix: "/o", Flag: "--storage-addr"},
	{Name: "index", Prefix: "/names", Flag: "--index-addr"},
	{Name: "mailbox", Prefix: "/mailboxes", Flag: "--mailbox-addr"},
}

// FlagName is the flag without its leading dashes, as package flag wants.
func (r Route) FlagName() string { return strings.TrimLeft(r.Flag, "-") }

// Names are the planes of All, in order.
func Names() []string {
	out := make([]string, len(All))
	for i, r := range All {
		out[i] = r.Name
	}
	return out
}
