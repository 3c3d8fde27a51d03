package svcrt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/control"
	"github.com/macronode/macronode/pkg/httpx"
)

const (
	// readyPoll is how often the runtime re-checks Service.Ready to announce
	// readiness and report health changes.
	readyPoll = 250 * time.Millisecond
	// handlerExitGrace caps the wait for handlers after connections were
	// cut (their request contexts are cancelled, so they should return at
	// once); the shutdown budget may allow less (shutdown.go).
	handlerExitGrace = 2 * time.Second
	// lostControlGrace caps the drain after the parent's connection drops:
	// the parent is gone or has given up on us, so exit quickly.
	lostControlGrace = time.Second
)

// runtime is one run of a plane.
type runtime struct {
	plane  Plane
	opts   options
	log    hclog.Logger
	getenv func(string) string
	// listenEnv is the process's LISTEN_* convention (listenfds.go); tests
	// set it, zero means the real process.
	listenEnv listenEnv
	draining  atomic.Bool
	active    inflight
}

// exitCause says why the serving phase ended.
type exitCause struct {
	reason  string        // for logs and goodbye
	orderly bool          // signal or parent shutdown: say goodbye
	grace   time.Duration // drain grace
	err     error         // non-nil for failures
	served  bool          // the Serve goroutine already returned
}

func (r *runtime) run(ctx context.Context) error {
	name := r.plane.Name

	var ctl *controlClient
	mode := "standalone"
	if sock := r.getenv(control.EnvSocket); sock != "" {
		service := name
		if s := r.getenv(control.EnvService); s != "" {
			if s != name {
				r.log.Warn("parent names this service differently from the plane; announcing the parent's name",
					"plane", name, "service", s)
			}
			service = s
		}
		c, err := dialControl(ctx, sock, service, r.getenv(control.EnvToken), r.log, r.reload)
		if err != nil {
			return fmt.Errorf("supervised mode (%s is set): %w", control.EnvSocket, err)
		}
		defer c.Close()
		ctl = c
		mode = "supervised"
		r.log.Debug("connected to parent control socket", "socket", sock)
	}

	ln, inherited, err := r.listen(ctx)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	if r.plane.Listener != nil {
		ln = r.plane.Listener(ln)
	}
	if r.opts.tlsCert != "" {
		tc, err := httpx.ServerTLS(r.opts.tlsCert, r.opts.tlsKey, r.opts.pqMode)
		if err != nil {
			_ = ln.Close()
			return err
		}
		ln = tls.NewListener(ln, tc)
	}

	svc, handler, err := r.build(ctx)
	if err != nil {
		_ = ln.Close()
		return err
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          r.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	r.log.Info("serving", "addr", addr, "inherited_listener", inherited, "tls", r.opts.tlsCert != "", "mode", mode,
		"data_dir", r.opts.dataDir, "amnesia", r.opts.amnesia)

	monCtx, stopMonitor := context.WithCancel(context.Background())
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		r.monitor(monCtx, svc, ctl, addr)
	}()

	cause := r.wait(ctx, ctl, serveErr)
	// The grace covers everything from here to exit; the parent kills us
	// when it ends, so the stores must be closed before that (shutdown.go).
	budget := newShutdownBudget(time.Now(), cause.grace)

	// Drain: readiness first, then in-flight requests, then the stores.
	r.draining.Store(true)
	stopMonitor()
	<-monDone
	if cause.err != nil {
		r.log.Error("shutting down after failure", "reason", cause.reason, "grace", cause.grace.String(), "error", cause.err)
	} else {
		r.log.Info("draining", "reason", cause.reason, "grace", cause.grace.String())
	}
	if ctl != nil && cause.orderly {
		_ = ctl.send(control.Health(false, "draining: "+cause.reason))
	}
	runErr := cause.err
	if d, ok := svc.(Drainer); ok {
		d.Drain()
	}
	drain := budget.drain(time.Now())
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	if err := srv.Shutdown(sctx); err != nil {
		r.log.Warn("drain grace expired; closing remaining connections", "grace", drain.String(), "error", err)
		_ = srv.Close()
	}
	cancel()
	hctx, hcancel := context.WithTimeout(context.Background(), budget.handlerWait())
	if n := r.active.wait(hctx); n > 0 {
		r.log.Warn("closing the plane while handlers still run; they ignored their request context", "handlers", n)
	}
	hcancel()
	if !cause.served {
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			runErr = errors.Join(runErr, fmt.Errorf("serve http on %s: %w", addr, err))
		}
	}
	if err := r.closePlane(svc, budget); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("close %s plane: %w", name, err))
	}
	if ctl != nil && cause.orderly {
		_ = ctl.send(control.Goodbye(cause.reason))
	}
	if runErr == nil {
		r.log.Info("stopped", "reason", cause.reason)
	}
	return runErr
}

// listen returns the listener to serve on: the one handed down by the
// parent or systemd (listenfds.go) when addressed to this process, else
// --listen bound here. Either way it happens before any store is opened, so
// a port conflict fails fast.
func (r *runtime) listen(ctx context.Context) (net.Listener, bool, error) {
	env := r.listenEnv
	if env.getenv == nil {
		env = processListenEnv()
	}
	ln, err := inheritedListener(env, r.plane.Name)
	if err != nil {
		return nil, false, fmt.Errorf("inherited listener: %w", err)
	}
	if ln != nil {
		if got := ln.Addr().String(); got != r.opts.listen {
			r.log.Debug("inherited listener differs from --listen; serving on the inherited one", "inherited", got, "listen", r.opts.listen)
		}
		return ln, true, nil
	}
	var lc net.ListenConfig
	ln, err = lc.Listen(ctx, "tcp", r.opts.listen)
	if err != nil {
		return nil, false, fmt.Errorf("listen on %s: %w", r.opts.listen, err)
	}
	return ln, false, nil
}

// build creates the registry, builds the plane and wraps its handler.
func (r *runtime) build(ctx context.Context) (Service, http.Handler, error) {
	name := r.plane.Name
	reg, err := newRegistry(name)
	if err != nil {
		return nil, nil, fmt.Errorf("register runtime metrics: %w", err)
	}
	ops := newOps(name, reg, r.log)
	env := Env{
		Name:     name,
		Listen:   r.opts.listen,
		DataDir:  r.opts.dataDir,
		Amnesia:  r.opts.amnesia,
		Logger:   r.log,
		Registry: reg,
		Ops:      ops,
	}
	svc, err := r.plane.Build(ctx, env)
	if err != nil {
		return nil, nil, fmt.Errorf("build %s plane: %w", name, err)
	}
	if svc == nil {
		return nil, nil, fmt.Errorf("build %s plane: Build returned no service", name)
	}
	if r.plane.PrivateOps {
		ops = nil
	}
	handler, err := newHandler(name, svc, reg, ops, &r.draining, &r.active, r.log)
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("register http metrics: %w", err), svc.Close())
	}
	return svc, handler, nil
}

// wait blocks until a reason to stop: ctx (a signal), a parent shutdown, the
// loss of the parent, or the HTTP server failing.
func (r *runtime) wait(ctx context.Context, ctl *controlClient, serveErr <-chan error) exitCause {
	var shutdown <-chan control.Message
	var lost <-chan struct{}
	if ctl != nil {
		shutdown, lost = ctl.shutdown, ctl.Lost()
	}
	grace := r.opts.shutdownTimeout
	select {
	case <-ctx.Done():
		return exitCause{reason: "terminated by signal", orderly: true, grace: grace}
	case m := <-shutdown:
		if m.Deadline != nil {
			grace = min(grace, max(time.Until(*m.Deadline), 0))
		}
		return exitCause{reason: "shutdown requested by parent", orderly: true, grace: grace}
	case <-lost:
		err := ctl.Err()
		r.log.Error("lost control connection to parent", "error", err)
		return exitCause{
			reason: "lost control connection to parent",
			grace:  min(grace, lostControlGrace),
			err:    fmt.Errorf("%w: %w", ErrLostControl, err),
		}
	case err := <-serveErr:
		return exitCause{reason: "http server failed", grace: grace, served: true,
			err: fmt.Errorf("serve http: %w", err)}
	}
}

// monitor polls Service.Ready: the first success is announced to the parent
// as ready{addr}; later changes are sent as health{ok,detail} and logged.
func (r *runtime) monitor(ctx context.Context, svc Service, ctl *controlClient, addr string) {
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	known, lastOK, announced := false, false, false
	for {
		err := svc.Ready()
		ok := err == nil
		if !known || ok != lastOK {
			known, lastOK = true, ok
			detail := "ready"
			if ok {
				r.log.Info("plane ready", "addr", addr)
			} else {
				detail = err.Error()
				r.log.Warn("plane not ready", "error", err)
			}
			if ctl != nil {
				if ok && !announced {
					announced = true
					_ = ctl.send(readyMessage(svc, addr))
				} else {
					_ = ctl.send(control.Health(ok, detail))
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// MetricsAddresser is implemented by a Service that serves /metrics on an
// address of its own (a plane with PrivateOps): the parent learns it from
// the ready message and scrapes it there.
type MetricsAddresser interface {
	MetricsAddr() string
}

// readyMessage is ready{addr} plus the service's metrics address, if any.
func readyMessage(svc Service, addr string) control.Message {
	if m, ok := svc.(MetricsAddresser); ok {
		if ma := m.MetricsAddr(); ma != "" {
			return control.ReadyWithMetrics(addr, ma)
		}
	}
	return control.Ready(addr)
}
