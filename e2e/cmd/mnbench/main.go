// Command mnbench measures macronode from the outside, as `make bench` runs
// it: real binaries, real processes, real sockets, all on 127.0.0.1. It
// prints figures, never pass/fail: every figure is the median over repeated
// runs, shown in a table and appended as a tab-separated line to -results.
//
// Subcommands:
//
//	restart    kill -9 svc-storage -> ready again, under macronode and under runit's runsv
//	healload   a steady client load across kill -9 of svc-storage: failed and refused
//	           requests, p50/p99 latency, under macronode (held socket) and runsv
//	exit503    kill -9 of a child -> the parent's /readyz answers 503
//	coldstart  exec `macronode run` with all six planes -> /readyz 200
//	idle       the parent's RSS and CPU while six children idle
//	loglines   log lines per second through the parent from a flooding child
//	storage    PUT/GET MB/s, direct and through the gateway, beside BLAKE3 and write+fsync
//	mailbox    durable send+receive+ack per second, beside Redis (AOF, fsync always)
//	smallput   4 KiB PUT ops/s straight to svc-storage, beside temp+write+fsync+rename+dir fsync
//	gateway    4 KiB GET req/s with wrk: direct, through svc-gateway, through nginx proxy_pass
//	summary    print every row of a -results file as one table
//
// The program is stdlib-only and does not import the macronode module: it
// speaks the documented HTTP and control-socket contracts only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func init() {
	// Every child process is started from the main goroutine with a
	// parent-death signal; Pdeathsig fires when the starting *thread* exits,
	// so keep the main goroutine on the main thread, which lives as long as
	// the process does.
	runtime.LockOSThread()
}

func main() {
	if os.Getenv(envRole) == roleFloodChild {
		os.Exit(floodChild())
	}
	os.Exit(run(os.Args[1:]))
}

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, o *opts) error
}

var commands = map[string]command{
	"restart":   {"kill -9 svc-storage -> ready again, macronode vs runsv", benchRestart},
	"healload":  {"failed/refused requests and latency of a steady load across kill -9, macronode vs runsv", benchHealLoad},
	"exit503":   {"kill -9 of a child -> parent /readyz 503", benchExit503},
	"coldstart": {"exec macronode run (six planes) -> /readyz 200", benchColdstart},
	"idle":      {"parent RSS and CPU with six idle children", benchIdle},
	"loglines":  {"log lines/s through the parent from a flooding child", benchLoglines},
	"storage":   {"PUT/GET MB/s direct and via gateway, vs BLAKE3 and write+fsync", benchStorage},
	"mailbox":   {"send+receive+ack msgs/s, svc-mailbox vs Redis", benchMailbox},
	"smallput":  {"4 KiB PUT ops/s to svc-storage vs temp+fsync+rename+dir fsync", benchSmallPut},
	"gateway":   {"4 KiB GET req/s (wrk): direct vs svc-gateway vs nginx", benchGateway},
	"summary":   {"print all rows of -results as one table", benchSummary},
}

// opts are the flags every subcommand shares, plus a few that only some use.
type opts struct {
	name     string
	binDir   string
	root     string
	tmp      string
	results  string
	runs     int
	timeout  time.Duration
	quick    bool
	stable   time.Duration
	idle     time.Duration
	flood    time.Duration
	runDur   time.Duration
	services string
	sizes    string
	conc     string
	msgSizes string
	clients  string
	redis    string
	noRunsv  bool
	keep     bool
	args     []string
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mnbench <subcommand> [flags]")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "run `mnbench <subcommand> -h` for its flags")
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "mnbench: unknown subcommand %q\n", args[0])
		usage()
		return exitUsage
	}
	o, err := parseOpts(args[0], args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(os.Stderr, "mnbench %s: %v\n", args[0], err)
		return exitUsage
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "mnbench: %v: stopping and cleaning up\n", s)
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "mnbench: second signal: killing what is left")
		runCleanups()
		os.Exit(exitError)
	}()
	defer runCleanups()

	if o.name != "summary" {
		if err := prepareTmp(o); err != nil {
			fmt.Fprintf(os.Stderr, "mnbench %s: %v\n", o.name, err)
			return exitError
		}
	}
	if err := cmd.run(ctx, o); err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (overall -timeout %s reached)", err, o.timeout)
		}
		fmt.Fprintf(os.Stderr, "mnbench %s: %v\n", o.name, err)
		return exitError
	}
	return exitOK
}

func parseOpts(name string, args []string) (*opts, error) {
	quick := os.Getenv("BENCH_QUICK") == "1"
	o := &opts{name: name, quick: quick}
	fs := flag.NewFlagSet("mnbench "+name, flag.ContinueOnError)
	fs.StringVar(&o.binDir, "bin", "bin", "directory holding macronode and the svc-* binaries")
	fs.StringVar(&o.root, "root", ".", "root of the macronode source tree (for `go test -bench` figures)")
	fs.StringVar(&o.tmp, "tmp", "", "base directory for data, run dirs and logs (default: a new temp dir, removed at exit)")
	fs.StringVar(&o.results, "results", "", "append one tab-separated line per figure to this file")
	fs.IntVar(&o.runs, "runs", 0, "repetitions per figure (0: the subcommand's default; BENCH_QUICK=1 lowers it)")
	fs.DurationVar(&o.timeout, "timeout", 8*time.Minute, "overall deadline of the subcommand")
	fs.BoolVar(&o.quick, "quick", quick, "shorter runs (also BENCH_QUICK=1)")
	fs.DurationVar(&o.stable, "stable-after", time.Second,
		"restart/exit503: set services.<plane>.stable_after to this in a config file (0: keep the default 5s and wait it out)")
	fs.DurationVar(&o.idle, "idle", 0, "idle: length of the idle window (default 60s, quick 10s)")
	fs.DurationVar(&o.flood, "flood", 0, "loglines: how long the child floods (default 5s, quick 3s)")
	fs.DurationVar(&o.runDur, "run-time", 0, "storage/mailbox: length of one timed run (default 400ms/1.5s, quick 250ms/1s)")
	fs.StringVar(&o.services, "services", "storage", "exit503: planes to run (the first is killed)")
	fs.StringVar(&o.sizes, "sizes", "4KiB,1MiB,64MiB", "storage: object sizes")
	fs.StringVar(&o.conc, "concurrency", "1,8", "storage: concurrent clients")
	fs.StringVar(&o.msgSizes, "msg-sizes", "256B,4KiB", "mailbox: message sizes")
	fs.StringVar(&o.clients, "clients", "1,16,64", "mailbox: concurrent clients")
	fs.StringVar(&o.redis, "redis", "redis-server", "mailbox: redis-server binary (empty: skip Redis)")
	fs.BoolVar(&o.noRunsv, "no-runsv", false, "restart, healload: skip the runsv comparison")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (logs, data) for inspection")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.args = fs.Args()
	if o.runs < 0 {
		return nil, fmt.Errorf("-runs must be >= 0, got %d", o.runs)
	}
	return o, nil
}

// prepareTmp makes the base temp dir (short, so that Unix socket paths stay
// well under 107 bytes) and registers its removal.
func prepareTmp(o *opts) error {
	if o.tmp == "" {
		d, err := os.MkdirTemp("", "mnb")
		if err != nil {
			return fmt.Errorf("make temp dir: %w", err)
		}
		o.tmp = d
		if !o.keep {
			addCleanup(func() { _ = os.RemoveAll(d) })
		}
		return nil
	}
	if err := os.MkdirAll(o.tmp, 0o700); err != nil {
		return fmt.Errorf("make temp dir %s: %w", o.tmp, err)
	}
	return nil
}

// runsOr returns -runs if set, else def (or quick when -quick).
func (o *opts) runsOr(def, quick int) int {
	if o.runs > 0 {
		return o.runs
	}
	if o.quick {
		return quick
	}
	return def
}

// durOr returns v if set, else def (or quick when -quick).
func (o *opts) durOr(v, def, quick time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	if o.quick {
		return quick
	}
	return def
}

// splitList splits a comma-separated flag value.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
