// Command dhtsim simulates a large macronode DHT in one process: N
// go-libp2p-kad-dht servers (the plane's protocol prefix and validators)
// on libp2p's mocknet, bootstrapped from a few seeds. Keys are provided,
// then a share of the nodes leaves while as many new ones join, and
// find-providers lookups run before, during and after that churn. It
// prints figures, never pass/fail: lookup success, hops, peers queried,
// latency, provide latency and the process's RSS. No socket is opened:
// every connection is an in-process mocknet pipe.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	nodes, seeds, parallel int
	churn                  float64
	keys, lookups          int
	lookupTimeout, timeout time.Duration
	buildShare             float64
	latency                time.Duration
	results                string
	memProfile             string
	cpuProfile             string
	join                   string
	seed                   uint64
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("dhtsim", flag.ContinueOnError)
	fs.IntVar(&c.nodes, "nodes", 1000, "DHT servers to start")
	fs.IntVar(&c.seeds, "seeds", 3, "bootstrap seeds every node connects to first")
	fs.IntVar(&c.parallel, "parallel", 8, "nodes joining, and lookups running, at once")
	fs.Float64Var(&c.churn, "churn", 0.10, "share of the nodes that leave (and of new nodes that join) during the churn phase")
	fs.IntVar(&c.keys, "keys", 200, "keys provided before the churn (half as many more are provided during it)")
	fs.IntVar(&c.lookups, "lookups", 300, "find-providers lookups before and after the churn (each)")
	fs.DurationVar(&c.lookupTimeout, "lookup-timeout", 10*time.Second, "deadline of one lookup")
	fs.DurationVar(&c.timeout, "timeout", 290*time.Second, "overall deadline")
	fs.Float64Var(&c.buildShare, "build-share", 0.7, "share of -timeout the initial joins may take; the simulation goes on with the nodes joined by then")
	fs.DurationVar(&c.latency, "latency", 0, "one-way mocknet link latency per message")
	fs.StringVar(&c.results, "results", "", "append one tab-separated line per figure to this file (mnbench's format)")
	fs.StringVar(&c.memProfile, "memprofile", "", "write a heap profile here after the joins")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the joins here")
	fs.StringVar(&c.join, "join", joinSelf, "how a node fills its routing table: self (one lookup of its own ID) or refresh (the plane's kad-dht auto refresh)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the random choices (nodes, keys, churn order)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.nodes < 2 || c.seeds < 1 || c.seeds > c.nodes:
		return c, fmt.Errorf("want -nodes >= 2 and 1 <= -seeds <= -nodes, got %d and %d", c.nodes, c.seeds)
	case c.parallel < 1 || c.keys < 1 || c.lookups < 1:
		return c, errors.New("-parallel, -keys and -lookups must be at least 1")
	case c.churn < 0 || c.churn >= 1:
		return c, fmt.Errorf("-churn must be in [0, 1), got %g", c.churn)
	case c.join != joinSelf && c.join != joinRefresh:
		return c, fmt.Errorf("-join must be %s or %s, got %q", joinSelf, joinRefresh, c.join)
	case c.buildShare <= 0 || c.buildShare > 1:
		return c, fmt.Errorf("-build-share must be in (0, 1], got %g", c.buildShare)
	}
	return c, nil
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "dhtsim: %v\n", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	err = run(ctx, c)
	stop()
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dhtsim: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	rep := reporter{results: c.results}
	fmt.Printf("dhtsim: %d kad-dht servers on mocknet, prefix /macronode, %d seeds, %.0f%% churn, join %q, GOMAXPROCS %d, link latency %s\n",
		c.nodes, c.seeds, 100*c.churn, c.join, runtime.GOMAXPROCS(0), c.latency)
	fmt.Println("  hops: RPC rounds from the looker's routing table to the first queried peer holding the record")
	fmt.Println("        (1: a routing-table peer held it; 0: the looker held it itself)")
	s := newSim(c)
	defer func() {
		if err := s.net.close(); err != nil {
			fmt.Fprintf(os.Stderr, "dhtsim: %v\n", err)
		}
	}()
	start := time.Now()
	if err := s.build(ctx, rep); err != nil {
		return err
	}
	if err := s.provideInitial(ctx, rep); err != nil {
		return err
	}
	rep.phase("before churn", s.lookupRound(ctx, c.lookups))
	if ctx.Err() == nil {
		during, err := s.churnPhase(ctx, rep)
		if err != nil {
			return err
		}
		rep.phase("during churn", during)
	}
	if ctx.Err() == nil {
		rep.phase("after churn", s.lookupRound(ctx, c.lookups))
	}
	rss, peak, err := memory()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dhtsim: %v\n", err)
	} else {
		rep.figure("rss at end", rss, "MiB", 1, rss, rss, fmt.Sprintf("%d live nodes", s.net.liveCount()))
		rep.figure("rss peak", peak, "MiB", 1, peak, peak, "VmHWM of the whole simulation")
	}
	rep.figure("wall time", time.Since(start).Seconds(), "s", 1, 0, 0, "")
	if ctx.Err() != nil {
		fmt.Printf("  note: the -timeout of %s ended the run early; the figures above are what was measured\n", c.timeout)
	}
	return nil
}
