// Package node is the macronode daemon: the body of `macronode run`. It wires
// the configuration, the supervisor and the admin plane together, handles
// signals (SIGTERM/SIGINT drain, a second SIGINT exits at once, SIGHUP
// reloads) and speaks the systemd notify protocol.
//
// The actors are: the admin HTTP server, the supervisor (which owns every
// child), the signal handler and the systemd notifier. Start-up order is
// explicit: the admin listener is bound first (a busy port fails before any
// child is spawned), then the supervisor starts the children in dependency
// order. Shutdown order is explicit too: readiness turns 503, systemd hears
// STOPPING=1, the supervisor stops the children in reverse dependency order
// within shutdown_timeout and reaps them all (systemd hears the progress),
// and the admin plane closes last.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/identity"
	"github.com/macronode/macronode/pkg/logging"
	"github.com/macronode/macronode/pkg/sdnotify"
	"github.com/macronode/macronode/pkg/supervisor"
)

// Options is what the CLI hands the daemon.
type Options struct {
	// Config is the validated configuration to start with.
	Config *config.Config
	// Reload re-reads every layer (file, environment, flags) and validates;
	// used by SIGHUP and POST /api/v1/reload.
	Reload func() (*config.Config, error)
	// Logger is the root logger; reload changes its level.
	Logger hclog.Logger
	// LogOutput, if not nil, is where the children's lines are passed on
	// (the Output Logger writes through).
	LogOutput *logging.Output
	// Signals delivers SIGTERM, SIGINT and SIGHUP; nil means the process's
	// own (signal.Notify from the start of Run to its end).
	Signals <-chan os.Signal
	// NewSupervisor builds the supervisor; nil means supervisor.New.
	NewSupervisor func(supervisor.Options) (Supervisor, error)
}

// ErrForced is returned when a second SIGINT cut the drain short.
var ErrForced = errors.New("forced exit on second interrupt")

// adminCloseTimeout bounds the admin plane's own graceful close, last of all.
const adminCloseTimeout = 5 * time.Second

// Run runs the node until ctx ends, a signal or the admin API asks it to
// stop. It returns nil after a clean drain.
func Run(ctx context.Context, opts Options) error {
	if opts.Config == nil {
		return errors.New("node: no configuration")
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	cfg := opts.Config
	n := &node{log: log, opts: opts, started: time.Now(), changes: make(chan struct{}, 1),
		pending: pendingRestarts{planes: map[string]bool{}}}
	n.cfg.Store(cfg)

	// Signals are ours from the first moment to the last: a SIGTERM during
	// start-up or during the final close must drain, not kill the parent.
	sigs := opts.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		defer signal.Stop(ch)
		sigs = ch
	}
	newSup := opts.NewSupervisor
	if newSup == nil {
		newSup = newSupervisor
	}

	// Bind the admin plane before anything else, so that a second node
	// started by mistake fails here and spawns nothing.
	ln, err := listen(cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	defer ln.Close()
	var mln net.Listener
	if cfg.MetricsAddr != "" {
		if mln, err = listen(cfg.MetricsAddr); err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		defer mln.Close()
	}

	runDir, cleanupRunDir, err := prepareRunDir(cfg.RunDir)
	if err != nil {
		return err
	}
	defer cleanupRunDir()
	if !cfg.Amnesia {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
		}
	}

	nodeKey, err := LoadNodeKey(cfg)
	if err != nil {
		return err
	}
	nodeID, err := identity.NodeID(nodeKey)
	if err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	n.nodeKey = nodeKey
	specs, err := n.specs(cfg)
	if err != nil {
		return err
	}
	bus, auditLog, closeEvents, err := openEventsAudit(cfg, log)
	if err != nil {
		return err
	}
	defer closeEvents()
	sup, err := newSup(supervisor.Options{
		RunDir:   runDir,
		Logger:   log.Named("supervisor"),
		Specs:    specs,
		OnChange: n.changed,

		LogOutput: opts.LogOutput,
		// shutdown_timeout is the whole drain's budget (SPEC §6).
		StopBudget: cfg.ShutdownTimeout.D(),
		Events:     bus,
	})
	if err != nil {
		return err
	}
	n.sup = sup

	// stop is the one way to ask for the drain, whatever asked for it. The
	// supervisor runs on its own context, cancelled only by the drain below
	// once readiness is 503, so no child stops while /readyz still says 200.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	n.stop = stop
	supCtx, stopSup := context.WithCancel(context.Background())
	defer stopSup()

	srv, err := admin.New(admin.Options{
		Config:     n.config,
		Services:   sup,
		Reload:     n.reload,
		Shutdown:   stop,
		Logger:     log.Named("admin"),
		Collectors: []prometheus.Collector{sup.Collector()},
		Started:    n.started,
		NodeID:     nodeID.String(),
		Events:     bus,
		Audit:      auditLog,
	})
	if err != nil {
		return errors.Join(fmt.Errorf("admin plane: %w", err), sup.Close())
	}
	n.admin = srv
	log.Info("starting node", "node_id", nodeID.String(), "run_dir", runDir, "data_dir", cfg.DataDir, "services", cfg.Enabled())

	var wg sync.WaitGroup
	serveErr := make(chan error, 2)
	serve := func(what string, f func(net.Listener) error, l net.Listener) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("%s: %w", what, err)
			}
		}()
	}
	serve("admin plane", srv.Serve, ln)
	if mln != nil {
		serve("metrics listener", srv.ServeMetrics, mln)
	}

	supErr := make(chan error, 1)
	supDone := make(chan struct{})
	go func() {
		defer close(supDone)
		supErr <- sup.Run(supCtx)
	}()

	forced := make(chan struct{})
	sigDone := n.handleSignals(runCtx, sigs, supDone, forced)
	notifyDone := n.notifier(runCtx)

	var runErr error
	select {
	case <-runCtx.Done():
	case err := <-serveErr:
		runErr = err
		log.Error("listener failed; shutting down", "error", err)
	case err := <-supErr:
		// Run returns before runCtx ends only when it could not supervise
		// (the supervisor was closed, or Run was called twice); put the
		// result back for the drain below, which reports it.
		supErr <- err
	}

	// Ordered drain: not ready first, then the children (within the stop
	// budget, reported to systemd: drain.go), then the admin plane, whose
	// close is outside the budget.
	log.Info("shutting down", "stop_budget", cfg.ShutdownTimeout.D().String())
	n.draining.Store(true)
	srv.SetDraining()
	n.notify(sdnotify.Stopping + "\n" + sdnotify.Status("stopping services"))
	stop()
	stopSup()
	drainOver := make(chan struct{})
	reported := n.drainReporter(cfg.ShutdownTimeout.D(), drainOver)
	select {
	case err := <-supErr:
		if err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("supervisor: %w", err))
		}
	case <-forced:
		close(drainOver)
		return ErrForced
	}
	close(drainOver)
	<-reported
	<-sigDone
	<-notifyDone

	closeCtx, cancel := context.WithTimeout(context.Background(), adminCloseTimeout)
	defer cancel()
	if err := srv.Shutdown(closeCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("close admin plane: %w", err))
	}
	wg.Wait()
	if runErr == nil {
		log.Info("stopped cleanly")
	}
	return runErr
}

// Supervisor is what the node needs of its supervisor;
// *supervisor.Supervisor implements it.
type Supervisor interface {
	admin.Services
	// Run supervises the children until ctx ends, then stops them all.
	Run(ctx context.Context) error
	// Close releases a supervisor that was never Run.
	Close() error
	// Probe is the liveness check behind /healthz and the systemd watchdog.
	Probe(ctx context.Context) error
	// Reload hands every child (and every later spawn) the payload.
	Reload(cfg json.RawMessage)
	// Update records a plane's new launch settings for its next operator
	// restart or start (which also restarts with, the planes calling it);
	// CancelUpdate forgets them.
	Update(spec supervisor.Spec, with []string) error
	CancelUpdate(name string) error
	// Collector exports the supervisor's own metrics.
	Collector() prometheus.Collector
}

type node struct {
	log     hclog.Logger
	opts    Options
	started time.Time
	cfg     atomic.Pointer[config.Config]
	sup     Supervisor
	admin   *admin.Server
	stop    context.CancelFunc

	nodeKey  crypto.PrivKey  // handed to the overlay (identity.go)
	pending  pendingRestarts // what reloads left for `macronode restart` (restartreq.go)
	reloadMu sync.Mutex      // one reload at a time
	changes  chan struct{}   // supervisor state changed (coalesced)
	ready    atomic.Bool     // READY=1 has been sent to systemd
	draining atomic.Bool     // shutdown has begun
}

func (n *node) config() *config.Config { return n.cfg.Load() }

// specs is Specs(cfg) with the node key handed to the overlay.
func (n *node) specs(cfg *config.Config) ([]supervisor.Spec, error) {
	specs := Specs(cfg)
	if err := HandNodeKey(specs, n.nodeKey); err != nil {
		return nil, err
	}
	return specs, nil
}

// newSupervisor is supervisor.New as a Supervisor.
func newSupervisor(o supervisor.Options) (Supervisor, error) {
	s, err := supervisor.New(o)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// prepareRunDir makes the control socket's directory (0700). With no run_dir
// configured (and no systemd RuntimeDirectory) it is a private temp dir that
// is removed on exit.
func prepareRunDir(dir string) (string, func(), error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "macronode-")
		if err != nil {
			return "", nil, fmt.Errorf("create run dir: %w", err)
		}
		return d, func() { os.RemoveAll(d) }, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("create run dir %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("chmod run dir %s: %w", dir, err)
	}
	return dir, func() {}, nil
}

// listen binds a TCP address. TLS for the admin plane (admin_tls, with the
// pq_mode key-exchange preference) is applied by admin.Server.Serve.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// handleSignals: SIGTERM/SIGINT start the drain, a second SIGINT exits at
// once (children die with us through Pdeathsig and their lost control
// connection), SIGHUP reloads. The returned channel closes when it stops.
func (n *node) handleSignals(ctx context.Context, sigs <-chan os.Signal, supDone <-chan struct{}, forced chan<- struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		draining := false
		for {
			var sig os.Signal
			if !draining {
				select {
				case sig = <-sigs:
				case <-ctx.Done():
					draining = true
					continue
				}
			} else {
				// While draining, keep listening for a second SIGINT
				// until the supervisor has finished.
				select {
				case sig = <-sigs:
				case <-supDone:
					return
				}
			}
			switch sig {
			case syscall.SIGHUP:
				if draining {
					n.log.Info("SIGHUP while shutting down: ignored")
					continue
				}
				n.log.Info("SIGHUP: reloading configuration")
				// The admin plane logs and counts the outcome, as for POST /api/v1/reload.
				_, _ = n.admin.Reload(context.Background())
			case syscall.SIGINT:
				if draining {
					n.log.Warn("second interrupt: exiting now")
					close(forced)
					return
				}
				n.log.Info("interrupt: draining (interrupt again to exit at once)")
				draining = true
				n.stop()
			default:
				n.log.Info("terminated: draining", "signal", sig.String())
				draining = true
				n.stop()
			}
		}
	}()
	return done
}
