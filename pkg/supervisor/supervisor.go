package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/macronode/macronode/pkg/events"
	"github.com/macronode/macronode/pkg/logging"
)

// Spec defaults (SPEC §6 Liveness).
const (
	defaultStartTimeout     = 10 * time.Second
	defaultHeartbeatTimeout = 3 * time.Second
	defaultShutdownTimeout  = 15 * time.Second
	defaultLogLines         = 1000
)

// ErrShuttingDown is returned by Restart, Stop and Start once the supervisor
// has begun its final shutdown (or was closed without running).
var ErrShuttingDown = errors.New("supervisor is shutting down")

// ErrClosed is returned by Run on a supervisor that was closed (Close).
var ErrClosed = errors.New("supervisor is closed")

// Lifecycle of a Supervisor: New, then either Run (once) or Close.
const (
	lifeNew int32 = iota
	lifeRunning
	lifeClosed
)

// Options configures a Supervisor.
type Options struct {
	RunDir   string       // directory for control.sock; created 0700 if missing
	Logger   hclog.Logger // used as is (name it, e.g. Named("supervisor")); child lines go to LogOutput
	LogLines int          // ring buffer lines per service; default 1000
	Specs    []Spec       // start order derived from DependsOn (ties in slice order)
	OnChange func()       // called without locks after state changes; may be nil

	// LogOutput, if not nil, is where child lines are passed on, tagged with
	// their service (pkg/logging Output.Child); nil keeps them in the ring
	// buffers only.
	LogOutput *logging.Output

	// StopBudget is the whole final drain's budget (shutdown_timeout),
	// shared out tier by tier (drain.go); zero: the largest ShutdownTimeout.
	StopBudget time.Duration
	// Events receives every state change of every child (events.go); may be nil.
	Events events.Publisher
}

// Supervisor runs and watches a set of child processes.
type Supervisor struct {
	opts     Options
	log      hclog.Logger
	services []*service // start order
	byName   map[string]*service
	ln       *net.UnixListener
	sockPath string
	metrics  *metrics
	clock    *pauseClock // notices when the parent was not scheduled (liveness.go)
	refusals *refusalLog // rate-limits the refused-connection warnings

	life     atomic.Int32 // lifeNew, lifeRunning, lifeClosed
	shutting atomic.Bool
	closed   chan struct{} // closed once no service goroutine runs (end of Run, or release)
	bg       sync.WaitGroup
	pending  chan struct{} // connections awaiting hello

	connMu      sync.Mutex
	conns       map[net.Conn]struct{}
	connsClosed bool
	connWG      sync.WaitGroup

	chMu    sync.Mutex
	changed chan struct{} // closed and replaced on every state change
	kick    chan struct{} // wakes the OnChange notifier

	reloadMu  sync.Mutex
	reloadGen uint64          // 0: no reload yet
	reloadCfg json.RawMessage // the latest Reload payload

	// Set by tests before Run.
	testHookSpawn     func(name string, pid int) // after a child started
	testHookAfterExec func(name string)          // after exec, before the pid is recorded
	testHookPIDWait   func(name string)          // a hello waits for its child's pid
	testHookLoop      func(name string)          // at the top of each service loop turn
}

// New validates the specs, orders them by DependsOn and binds the control
// socket (0600) in RunDir. Call Run to start the children; a caller that
// gives up before running them calls Close (or Run with a cancelled
// context), which releases the socket without starting anything.
func New(opts Options) (*Supervisor, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.LogLines <= 0 {
		opts.LogLines = defaultLogLines
	}
	if opts.RunDir == "" {
		return nil, errors.New("supervisor: run dir is required")
	}
	specs := make([]Spec, len(opts.Specs))
	for i, sp := range opts.Specs {
		sp, err := sp.withDefaults()
		if err != nil {
			return nil, fmt.Errorf("supervisor: service %q: %w", opts.Specs[i].Name, err)
		}
		specs[i] = sp
	}
	order, err := startOrder(specs)
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	s := &Supervisor{
		opts:     opts,
		log:      opts.Logger,
		byName:   make(map[string]*service, len(specs)),
		metrics:  newMetrics(),
		refusals: newRefusalLog(),
		closed:   make(chan struct{}),
		pending:  make(chan struct{}, maxPendingConns),
		conns:    make(map[net.Conn]struct{}),
		changed:  make(chan struct{}),
		kick:     make(chan struct{}, 1),
	}
	s.clock = newPauseClock(specs, time.Now())
	for _, i := range order {
		sp := specs[i]
		v := &service{
			sup:      s,
			spec:     sp,
			log:      s.log.With("service", sp.Name),
			events:   make(chan event, 64),
			cmdKick:  make(chan struct{}, 1),
			loopDone: make(chan struct{}),
			st:       Status{Name: sp.Name, State: StateStopped, Critical: sp.Critical, Listen: sp.Listen, MetricsAddr: sp.MetricsAddr, Exits: []Exit{}},
			sink:     newLogSink(sp.Name, opts.LogLines, opts.LogOutput, s.metrics),
		}
		s.services = append(s.services, v)
		s.byName[sp.Name] = v
	}
	for _, v := range s.services {
		for _, d := range v.spec.DependsOn {
			v.deps = append(v.deps, s.byName[d])
		}
	}
	if err := s.bindHeld(); err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	ln, path, warning, err := listenControl(opts.RunDir)
	if err != nil {
		s.closeHeld()
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	if warning != "" {
		s.log.Warn(warning)
	}
	s.ln, s.sockPath = ln, path
	return s, nil
}

// withDefaults fills zero fields and validates the spec.
func (sp Spec) withDefaults() (Spec, error) {
	switch {
	case sp.Name == "":
		return sp, errors.New("name is required")
	case strings.ContainsAny(sp.Name, " /=\x00"):
		return sp, fmt.Errorf("name %q contains a space, '/', '=' or NUL", sp.Name)
	case sp.Binary == "":
		return sp, errors.New("binary is required")
	case sp.StartTimeout < 0, sp.HeartbeatTimeout < 0, sp.ShutdownTimeout < 0:
		return sp, errors.New("negative timeout")
	}
	if sp.StartTimeout == 0 {
		sp.StartTimeout = defaultStartTimeout
	}
	if sp.HeartbeatTimeout == 0 {
		sp.HeartbeatTimeout = defaultHeartbeatTimeout
	}
	if sp.ShutdownTimeout == 0 {
		sp.ShutdownTimeout = defaultShutdownTimeout
	}
	sp.Policy = sp.Policy.withDefaults()
	if err := sp.Policy.validate(); err != nil {
		return sp, err
	}
	return sp, nil
}

// startOrder sorts specs topologically by DependsOn; among the services
// whose dependencies are placed, the earliest in the slice goes first.
func startOrder(specs []Spec) ([]int, error) {
	index := make(map[string]int, len(specs))
	for i, sp := range specs {
		if _, dup := index[sp.Name]; dup {
			return nil, fmt.Errorf("service %q is listed twice", sp.Name)
		}
		index[sp.Name] = i
	}
	for _, sp := range specs {
		for _, d := range sp.DependsOn {
			if _, ok := index[d]; !ok {
				return nil, fmt.Errorf("service %q depends on unknown service %q", sp.Name, d)
			}
		}
	}
	placed := make([]bool, len(specs))
	order := make([]int, 0, len(specs))
	for len(order) < len(specs) {
		progress := false
		for i, sp := range specs {
			if placed[i] {
				continue
			}
			ok := true
			for _, d := range sp.DependsOn {
				if !placed[index[d]] {
					ok = false
					break
				}
			}
			if ok {
				placed[i] = true
				order = append(order, i)
				progress = true
				break
			}
		}
		if !progress {
			var left []string
			for i, sp := range specs {
				if !placed[i] {
					left = append(left, sp.Name)
				}
			}
			return nil, fmt.Errorf("dependency cycle among %s", strings.Join(left, ", "))
		}
	}
	return order, nil
}

// Run starts the children in dependency order (before its first start each
// waits until its dependencies are running and ready, failed, stopped by the
// operator, or past their StartTimeout; see deps.go) and supervises them.
// When ctx is done it stops them within Options.StopBudget, one dependency
// tier at a time, dependents first (drain.go), reaps them all, closes and
// removes the control socket and returns nil. It returns only when every
// child is reaped.
//
// If ctx is already done, Run starts nothing: it releases the socket and
// returns nil. Run may be called once, and not after Close (ErrClosed).
func (s *Supervisor) Run(ctx context.Context) error {
	if !s.life.CompareAndSwap(lifeNew, lifeRunning) {
		if s.life.Load() == lifeClosed {
			return fmt.Errorf("supervisor: run: %w", ErrClosed)
		}
		return errors.New("supervisor: Run called twice")
	}
	if ctx.Err() != nil {
		s.log.Info("not starting any service: the node is already stopping", "cause", context.Cause(ctx).Error())
		s.release()
		return nil
	}
	stopNotifier := make(chan struct{})
	s.bg.Add(3)
	go s.acceptLoop()
	go s.notifier(stopNotifier)
	go func() { defer s.bg.Done(); s.clock.run(stopNotifier) }()
	for _, v := range s.services {
		if v.held != nil { // bound by New, before any subscriber could hear of it
			v.emit(events.Listener, ListenerEvent{State: ListenerHeld, Addr: v.held.boundAddr()})
		}
		go v.loop()
	}
	s.log.Info("supervising", "services", s.names(false), "control_socket", s.sockPath)

	<-ctx.Done()
	s.shutting.Store(true)
	s.notify()
	s.log.Info("stopping services", "order", s.names(true), "budget", s.stopBudget().String())
	s.drain()
	for _, v := range s.services {
		<-v.loopDone // every child reaped
	}
	close(s.closed)
	_ = s.ln.Close()
	s.closeConns()
	close(stopNotifier)
	s.bg.Wait()
	s.removeSocket()
	s.log.Info("all services stopped")
	return nil
}

// Close releases the control socket of a supervisor that was never Run:
// it closes and removes the socket, starts nothing, and makes a later Run
// fail with ErrClosed. It is idempotent. Once Run has been called, Close
// does nothing: Run releases the socket itself when its context ends.
func (s *Supervisor) Close() error {
	if s.life.CompareAndSwap(lifeNew, lifeClosed) {
		s.release()
	}
	return nil
}

// release frees what New acquired, for a supervisor that never supervised.
func (s *Supervisor) release() {
	s.shutting.Store(true)
	close(s.closed)
	_ = s.ln.Close()
	s.closeHeld()
	s.removeSocket()
}

func (s *Supervisor) removeSocket() {
	if err := os.Remove(s.sockPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("remove control socket", "error", err)
	}
}

func (s *Supervisor) names(reverse bool) []string {
	out := make([]string, 0, len(s.services))
	for _, v := range s.services {
		out = append(out, v.spec.Name)
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// notify announces a state change: it wakes dependency waiters and the
// OnChange notifier. It never blocks.
func (s *Supervisor) notify() {
	s.chMu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.chMu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Supervisor) changedCh() <-chan struct{} {
	s.chMu.Lock()
	defer s.chMu.Unlock()
	return s.changed
}

// notifier calls OnChange, serialized and coalesced, without locks held.
func (s *Supervisor) notifier(stop <-chan struct{}) {
	defer s.bg.Done()
	call := func() {
		if s.opts.OnChange != nil {
			s.opts.OnChange()
		}
	}
	for {
		select {
		case <-s.kick:
			call()
		case <-stop:
			select {
			case <-s.kick:
				call()
			default:
			}
			return
		}
	}
}

func (s *Supervisor) lookup(name string) (*service, error) {
	v := s.byName[name]
	if v == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownService, name)
	}
	return v, nil
}

func (s *Supervisor) command(name string, c command) error {
	v, err := s.lookup(name)
	if err != nil {
		return err
	}
	if s.shutting.Load() {
		return ErrShuttingDown
	}
	return v.enqueue(c)
}

// Snapshot returns the status of every service, in start order.
func (s *Supervisor) Snapshot() []Status {
	out := make([]Status, 0, len(s.services))
	for _, v := range s.services {
		out = append(out, v.status())
	}
	return out
}

// Restart (re)starts the service now: a running child is stopped gracefully
// and started again at once; a failed one is retried. The backoff and the
// crash window are reset. It returns once the request is scheduled.
// A restart that applies settings recorded by Update also restarts the
// services recorded with them.
func (s *Supervisor) Restart(name string) error {
	if err := s.command(name, cmdRestart); err != nil {
		return err
	}
	return s.restartWith(name)
}

// Stop stops the service gracefully; it stays stopped until Start or Restart.
func (s *Supervisor) Stop(name string) error { return s.command(name, cmdStop) }

// Start starts a stopped, backing-off or failed service. Like Restart, it
// resets the backoff and the crash window and closes an open breaker.
func (s *Supervisor) Start(name string) error { return s.command(name, cmdStart) }

// Logs returns the service's last n lines, oldest first (n <= 0: all kept).
func (s *Supervisor) Logs(name string, n int) ([]LogLine, error) {
	v, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	return v.sink.ring.last(n), nil
}

// Collector exports macronode_child_log_lines_total{service,stream},
// macronode_child_log_dropped_total{service} and
// macronode_control_refused_total{reason}.
func (s *Supervisor) Collector() prometheus.Collector { return s.metrics }

// SocketPath is the control socket's path.
func (s *Supervisor) SocketPath() string { return s.sockPath }
