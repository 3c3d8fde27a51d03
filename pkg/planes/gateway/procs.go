package gateway

import (
	"os"
	"runtime"
)

// autoMaxProcs is the gateway's share of the CPUs the runtime would use
// when neither --max-procs nor the GOMAXPROCS environment variable sets
// it: half of them, at least one. The gateway shares the host with five other planes,
// and a small proxied request spends most of its time in syscalls and
// scheduler handoffs: with one P, a socket that becomes ready is served by
// the thread already running instead of waking a second one. Measured on
// the 2-CPU bench host, a 4 KiB GET through the gateway (wrk, 1 connection)
// made 9 syscalls per request with GOMAXPROCS=1 against 24 with 2 (the
// difference is futex wake-ups and spinning threads' nanosleeps).
func autoMaxProcs(numCPU int) int {
	return max(numCPU/2, 1)
}

// maxProcs is the GOMAXPROCS the gateway runs with: --max-procs when set
// (> 0), else the environment's GOMAXPROCS when set (the Go runtime has
// applied it already: 0, keep it), else autoMaxProcs.
func maxProcs(flag int, env string, numCPU int) int {
	switch {
	case flag > 0:
		return flag
	case env != "":
		return 0
	}
	return autoMaxProcs(numCPU)
}

// ApplyMaxProcs sets the process's GOMAXPROCS from c.MaxProcs, the
// environment and the host's CPUs (maxProcs) and returns the value in
// effect. svc-gateway calls it once at start; the library never changes the
// process's settings by itself.
func (c *Config) ApplyMaxProcs() int {
	// The runtime's own default (runtime.GOMAXPROCS(0) before any change)
	// already honours the CPU affinity and a cgroup CPU limit (Go 1.25+),
	// so a container limited to 1 CPU on a large host gets 1, not half the
	// host's cores.
	if n := maxProcs(c.MaxProcs, os.Getenv("GOMAXPROCS"), runtime.GOMAXPROCS(0)); n > 0 {
		runtime.GOMAXPROCS(n)
	}
	return runtime.GOMAXPROCS(0)
}
