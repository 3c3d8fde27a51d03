package node

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/macronode/macronode/pkg/supervisor"
)

// fakeSup is a Supervisor for the node's own tests: its services are
// always ready, Probe fails while wedged, and Run records the stop.
type fakeSup struct {
	snap    []supervisor.Status
	wedged  atomic.Bool
	probes  atomic.Int32
	running chan struct{} // closed when Run starts
	release chan struct{} // Run returns once ctx ended and this is closed (nil: at once)
	stopped chan struct{} // closed when Run's ctx ended
	onStop  func()        // called by Run once its ctx ended, before stopped is closed

	mu       sync.Mutex
	reloads  []string
	updates  []supervisor.Spec
	cancels  []string
	restarts []string
	with     []string // "<plane>:<with,...>" of each Update
}

func newFakeSup(names ...string) *fakeSup {
	f := &fakeSup{running: make(chan struct{}), stopped: make(chan struct{})}
	for i, name := range names {
		f.snap = append(f.snap, supervisor.Status{Name: name, State: supervisor.StateRunning, Ready: true, Critical: true, PID: 1000 + i})
	}
	return f
}

var errWedged = errors.New("wedged")

func (f *fakeSup) Snapshot() []supervisor.Status { return append([]supervisor.Status(nil), f.snap...) }
func (f *fakeSup) Restart(name string) error {
	f.mu.Lock()
	f.restarts = append(f.restarts, name)
	f.mu.Unlock()
	return nil
}
func (f *fakeSup) Stop(string) error  { return nil }
func (f *fakeSup) Start(string) error { return nil }
func (f *fakeSup) Logs(string, int) ([]supervisor.LogLine, error) {
	return nil, nil
}
func (f *fakeSup) Close() error { return nil }

func (f *fakeSup) Update(sp supervisor.Spec, with []string) error {
	f.mu.Lock()
	f.updates = append(f.updates, sp)
	f.with = append(f.with, sp.Name+":"+strings.Join(with, ","))
	f.mu.Unlock()
	return nil
}

func (f *fakeSup) CancelUpdate(name string) error {
	f.mu.Lock()
	f.cancels = append(f.cancels, name)
	f.mu.Unlock()
	return nil
}
func (f *fakeSup) Collector() prometheus.Collector {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "fake_supervisor_total", Help: "fake"})
}

func (f *fakeSup) Probe(ctx context.Context) error {
	f.probes.Add(1)
	if f.wedged.Load() {
		return errWedged
	}
	return ctx.Err()
}

func (f *fakeSup) reloaded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reloads...)
}

func (f *fakeSup) Reload(cfg json.RawMessage) {
	f.mu.Lock()
	f.reloads = append(f.reloads, string(cfg))
	f.mu.Unlock()
}

func (f *fakeSup) Run(ctx context.Context) error {
	close(f.running)
	<-ctx.Done()
	if f.onStop != nil {
		f.onStop()
	}
	close(f.stopped)
	if f.release != nil {
		<-f.release
	}
	return nil
}
