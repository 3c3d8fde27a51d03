package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/logging"
)

// syncBuffer is a concurrency-safe log sink the tests can search.
type syncBuffer struct{ testutil.SyncBuffer }

// entries parses the JSON log lines.
func (b *syncBuffer) entries() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
var eventually = testutil.Eventually

func testExe(tb testing.TB) string {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return exe
}

// fakeSpec describes a fake child with test-friendly timings.
func fakeSpec(tb testing.TB, name, mode string, env ...string) Spec {
	return Spec{
		Name:   name,
		Binary: testExe(tb),
		// atexit_sleep_ms=0: a -race child otherwise lingers 1s at exit.
		Env:              append([]string{"MN_FAKE_CHILD=" + mode, "MN_FAKE_HB=50ms", "GORACE=atexit_sleep_ms=0"}, env...),
		Critical:         true,
		StartTimeout:     10 * time.Second,
		HeartbeatTimeout: 3 * time.Second,
		ShutdownTimeout:  3 * time.Second,
		Policy: Policy{
			Initial:     20 * time.Millisecond,
			Max:         200 * time.Millisecond,
			MaxRestarts: 100,
			Window:      10 * time.Second,
			FailedRetry: time.Hour,
			StableAfter: 300 * time.Millisecond,
		},
	}
}

// harness runs one Supervisor for a test and checks, at the end, that Run
// returned and that no process it spawned remains.
type harness struct {
	tb     testing.TB
	s      *Supervisor
	dir    string
	logs   *syncBuffer
	out    *logging.Output
	cancel context.CancelFunc
	runErr chan error
	once   sync.Once

	mu       sync.Mutex
	pids     []int
	readyLog []readyAt
	changed  chan struct{} // signalled on every OnChange
}

type readyAt struct {
	at    time.Time
	ready bool
}

func startHarness(tb testing.TB, specs []Spec, mod func(*Options)) *harness {
	tb.Helper()
	return startHarnessWith(tb, specs, mod, nil)
}

// startHarnessWith is startHarness with setup, if not nil, called on the
// Supervisor before Run (to set test hooks).
func startHarnessWith(tb testing.TB, specs []Spec, mod func(*Options), setup func(*Supervisor)) *harness {
	tb.Helper()
	dir, err := os.MkdirTemp("", "mn")
	if err != nil {
		tb.Fatal(err)
	}
	h := &harness{tb: tb, dir: dir, logs: &syncBuffer{}, runErr: make(chan error, 1), changed: make(chan struct{}, 1)}
	out, err := logging.NewOutput(h.logs, "json", "")
	if err != nil {
		tb.Fatal(err)
	}
	h.out = out
	opts := Options{
		RunDir:    filepath.Join(dir, "run"),
		Logger:    out.Logger("macronode", hclog.Debug),
		LogOutput: out,
		Specs:     specs,
		OnChange:  h.onChange,
	}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		_ = out.Close()
		_ = os.RemoveAll(dir)
		tb.Fatalf("New: %v", err)
	}
	h.s = s
	s.testHookSpawn = func(_ string, pid int) {
		h.mu.Lock()
		h.pids = append(h.pids, pid)
		h.mu.Unlock()
	}
	if setup != nil {
		setup(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.runErr <- s.Run(ctx) }()
	tb.Cleanup(h.stop)
	return h
}

// ready reports whether every critical service is ready, by the one rule
// (Status.IsReady), as the admin plane judges the node.
func (h *harness) ready() bool {
	for _, st := range h.s.Snapshot() {
		if st.Critical && !st.IsReady() {
			return false
		}
	}
	return true
}

func (h *harness) onChange() {
	r := h.ready()
	h.mu.Lock()
	h.readyLog = append(h.readyLog, readyAt{time.Now(), r})
	h.mu.Unlock()
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// stop cancels Run, waits for it, and checks that every child is gone.
func (h *harness) stop() {
	h.once.Do(func() {
		h.tb.Helper()
		h.cancel()
		select {
		case err := <-h.runErr:
			if err != nil {
				h.tb.Errorf("Run: %v", err)
			}
		case <-time.After(60 * time.Second):
			h.tb.Fatalf("Run did not return; logs:\n%s", h.logs.String())
		}
		_ = h.out.Close()
		h.mu.Lock()
		pids := append([]int(nil), h.pids...)
		h.mu.Unlock()
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				h.tb.Errorf("child %d still exists after Run returned (kill 0: %v)", pid, err)
			}
		}
		if _, err := os.Stat(h.s.SocketPath()); !errors.Is(err, os.ErrNotExist) {
			h.tb.Errorf("control socket not removed: %v", err)
		}
		if os.Getenv("MN_TEST_DUMP") == "1" {
			h.tb.Logf("supervisor log:\n%s", h.logs.String())
		}
		_ = os.RemoveAll(h.dir)
	})
}

func (h *harness) status(name string) Status {
	for _, st := range h.s.Snapshot() {
		if st.Name == name {
			return st
		}
	}
	h.tb.Fatalf("no service %q in snapshot", name)
	return Status{}
}

// waitReady waits until name is running and ready (with a pid other than
// notPID, if given) and returns its status.
func (h *harness) waitReady(name string, notPID int) Status {
	h.tb.Helper()
	var st Status
	eventually(h.tb, 15*time.Second, name+" ready", func() bool {
		st = h.status(name)
		return st.IsReady() && st.PID != 0 && st.PID != notPID
	})
	return st
}

func (h *harness) logsContain(name, text string) bool {
	lines, err := h.s.Logs(name, 0)
	if err != nil {
		h.tb.Fatal(err)
	}
	for _, l := range lines {
		if strings.Contains(l.Text, text) {
			return true
		}
	}
	return false
}

// gone reports whether pid no longer runs (or is a zombie awaiting a reaper
// that is not us: grandchildren are reparented away from the test).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// counter reads one counter value from a collector.
func counter(tb testing.TB, c prometheus.Collector, name string, labels map[string]string) float64 {
	tb.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		tb.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func readFile(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, io.EOF) {
		tb.Fatal(err)
	}
	return string(b)
}

func nopCounter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "test_counter"})
}
