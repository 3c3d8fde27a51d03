package svcrt

import (
	"fmt"
	"strings"
)

// Route is one HTTP route a plane serves, as --help lists it.
type Route struct {
	// Pattern is a net/http ServeMux pattern: "GET /o/{addr}" (GET also
	// matches HEAD), or "/o/" for any method under a prefix.
	Pattern string
	// Doc says what the route does, in one line.
	Doc string
}

// runtimeRoutes are the routes the runtime itself serves around every
// plane (newHandler, newOps): on --listen, and on the plane's own ops
// listener instead when PrivateOps.
func runtimeRoutes(p Plane) (listen, ops []Route) {
	listen = []Route{
		{"GET /healthz", "liveness: 200 while the process serves"},
		{"GET /readyz", "readiness: 200 when the plane can take traffic, else 503"},
	}
	ops = []Route{
		{"GET /metrics", "Prometheus text exposition"},
		{"GET /version", "service, version, git sha, build time, Go version (JSON)"},
	}
	if p.PrivateOps {
		return listen, ops
	}
	return append(listen, ops...), nil
}

// writeRoutes writes the route table of --help.
func writeRoutes(b *strings.Builder, p Plane) {
	listen, ops := runtimeRoutes(p)
	width := 0
	for _, r := range append(append(append([]Route(nil), p.Routes...), listen...), ops...) {
		width = max(width, len(r.Pattern))
	}
	section := func(title string, rs []Route) {
		if len(rs) == 0 {
			return
		}
		fmt.Fprintf(b, "\n%s:\n", title)
		for _, r := range rs {
			fmt.Fprintf(b, "  %-*s  %s\n", width, r.Pattern, r.Doc)
		}
	}
	section("HTTP routes on --listen", append(append([]Route(nil), p.Routes...), listen...))
	section("HTTP routes on the ops listener (--internal-listen)", ops)
}
