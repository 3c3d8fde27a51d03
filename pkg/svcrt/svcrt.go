// Package svcrt is the child runtime shared by every svc-* binary (SPEC §7).
//
// A plane hands the runtime a Plane: its name, default address, plane-specific
// flags and a Build function. The runtime owns everything else that makes a
// plane an operable process: the common flags (--listen, --data-dir,
// --log-level, --log-format, --amnesia, --shutdown-timeout, --tls-cert,
// --tls-key, --pq-mode, --version), a JSON
// hclog logger on stderr, the listener (inherited by systemd's LISTEN_FDS
// convention when addressed to this process, else bound first, so a port
// conflict fails fast), an http.Server with timeouts, request ids, panic recovery and
// per-route metrics, the /healthz, /readyz and /metrics endpoints, graceful
// draining on SIGTERM/SIGINT, and — when MACRONODE_CONTROL_SOCKET is set — the
// supervised mode that speaks pkg/control to the parent: hello, ready with the
// real bound address, heartbeats, health changes, shutdown with a deadline
// (the drain keeps a reserve of it for closing the stores, so they are closed
// before the parent's SIGKILL), reload (the log level, live), and exit when
// the control connection is lost (the guard beside Pdeathsig).
package svcrt

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// Exit codes returned by Main.
const (
	ExitOK      = 0 // orderly exit, --help, --version
	ExitFailure = 1 // runtime failure: port taken, build failed, lost parent, ...
	ExitUsage   = 2 // bad flags or bad flag-derived configuration
)

// Service is what a plane gives the runtime (every pkg/planes/<p>.*Server
// satisfies it).
type Service interface {
	// Handler serves the plane API; the runtime mounts it at "/".
	Handler() http.Handler
	// Ready returns nil when the plane can serve, or why it cannot.
	Ready() error
	// Close flushes and closes the plane's stores; it runs after the HTTP
	// server has drained.
	Close() error
}

// Drainer is optionally implemented by a Service whose handlers can wait a
// long time (long polls). Drain is called once when a drain begins, before
// in-flight requests are waited for, and must make those handlers return
// promptly; the store stays open until Close.
type Drainer interface {
	Drain()
}

// Env is what the runtime hands a plane's Build function.
type Env struct {
	Name     string                // plane name, e.g. "storage"
	Listen   string                // from --listen (as given, e.g. "127.0.0.1:0")
	DataDir  string                // from --data-dir (default ./data/<name>)
	Amnesia  bool                  // --amnesia (also RON_AMNESIA=1/true)
	Logger   hclog.Logger          // JSON to stderr, named svc-<name>
	Registry prometheus.Registerer // served on /metrics
	Ops      http.Handler          // serves /metrics and /version (for a plane with PrivateOps)
}

// Plane describes one svc-* binary to the runtime.
type Plane struct {
	Name        string                 // "storage"
	DefaultAddr string                 // "127.0.0.1:9300"
	Summary     string                 // one line for --help
	Flags       func(fs *flag.FlagSet) // plane-specific flags (may be nil)
	Build       func(ctx context.Context, env Env) (Service, error)
	// Listener, when set, wraps the bound listener (before TLS), e.g. to cap
	// concurrent connections. It is called after the flags are parsed.
	Listener func(net.Listener) net.Listener
	// PrivateOps keeps /metrics and /version off --listen: the plane serves
	// Env.Ops on a listener of its own (the gateway's --internal-listen).
	PrivateOps bool
	// Routes are the plane's own HTTP routes, listed by --help.
	Routes []Route
}

// UsageError reports bad command-line input; Main exits with ExitUsage.
type UsageError struct {
	Err error
}

func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *UsageError) Unwrap() error { return e.Err }

// ErrLostControl is wrapped by the error Run returns when the parent's control
// connection drops while the child is supervised.
var ErrLostControl = errors.New("lost control connection to parent")

// Main runs the plane with os.Args[1:], logging to os.Stderr, until SIGTERM or
// SIGINT (or, when supervised, a shutdown message or the loss of the parent).
// It returns the process exit code: ExitOK, ExitFailure or ExitUsage.
// A second SIGTERM/SIGINT during the drain kills the process at once.
func Main(p Plane) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		// After the first signal, restore the default disposition so that a
		// second one terminates the process immediately.
		<-ctx.Done()
		stop()
	}()
	// --help and --version print to stdout: they are what the user asked for.
	return ExitCode(runIO(ctx, p, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// ExitCode maps an error returned by Run to a process exit code.
func ExitCode(err error) int {
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	default:
		return ExitFailure
	}
}

// Run is the testable core of Main: it parses args, serves the plane and
// returns when ctx is cancelled (the equivalent of SIGTERM) after a graceful
// drain, or on failure. It returns flag.ErrHelp (wrapped) after printing help,
// a *UsageError for bad flags, nil after an orderly shutdown, and any other
// error for a runtime failure. Failures are also logged to stderr.
func Run(ctx context.Context, p Plane, args []string, stderr io.Writer) error {
	return run(ctx, p, args, stderr, os.Getenv)
}

func run(ctx context.Context, p Plane, args []string, stderr io.Writer, getenv func(string) string) error {
	return runIO(ctx, p, args, stderr, stderr, getenv)
}

// runIO is run with --help and --version printed to stdout.
func runIO(ctx context.Context, p Plane, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if err := p.validate(); err != nil {
		fmt.Fprintf(stderr, "svcrt: %v\n", err)
		return err
	}
	opts, err := parseFlagsTo(p, args, stdout, stderr, getenv)
	if err != nil {
		return err
	}
	if opts.version {
		printVersion(stdout, p.Name)
		return nil
	}
	log, err := newLogger(p.Name, opts, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "svc-%s: %v\n", p.Name, err)
		return err
	}
	r := &runtime{plane: p, opts: opts, log: log, getenv: getenv}
	if err := r.run(ctx); err != nil {
		log.Error("exiting with failure", "error", err)
		return err
	}
	return nil
}

func (p Plane) validate() error {
	switch {
	case p.Name == "":
		return errors.New("plane has no name")
	case p.Build == nil:
		return fmt.Errorf("plane %s has no Build function", p.Name)
	case p.DefaultAddr == "":
		return fmt.Errorf("plane %s has no default address", p.Name)
	}
	return nil
}
