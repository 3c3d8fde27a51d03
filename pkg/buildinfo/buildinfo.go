// Package buildinfo carries the version stamps that the Makefile sets with
// -ldflags -X at build time, shared by the parent and every child binary.
package buildinfo

import "runtime"

// These are overwritten by the linker; the defaults describe a plain `go build`.
var (
	Version   = "0.1.0"
	GitSHA    = "unknown"
	BuildTS   = "unknown"
	GoVersion = runtime.Version()
)

// Info is the JSON shape of GET /version.
type Info struct {
	Service string            `json:"service"`
	Version string            `json:"version"`
	GitSHA  string            `json:"git_sha"`
	BuildTS string            `json:"build_ts"`
	Go      string            `json:"go"`
	API     map[string]string `json:"api"`
}

// Get returns the build information for the named service.
func Get(service string) Info {
	return Info{
		Service: service,
		Version: Version,
		GitSHA:  GitSHA,
		BuildTS: BuildTS,
		Go:      GoVersion,
		API:     map[string]string{"http": "v1"},
	}
}
