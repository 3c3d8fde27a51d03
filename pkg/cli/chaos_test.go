package cli

import (
	"context"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/audit"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/events"
	"github.com/macronode/macronode/pkg/supervisor"
)

// busNode is a real admin plane over a fake supervisor whose faults play
// out as events on a real bus: exited, then spawned and ready 20ms later.
type busNode struct {
	bus *events.Bus
	mu  sync.Mutex
	st  supervisor.Status
	url string
}

func (b *busNode) Snapshot() []supervisor.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return []supervisor.Status{b.st}
}
func (b *busNode) Restart(string) error                           { return nil }
func (b *busNode) Stop(string) error                              { return nil }
func (b *busNode) Start(string) error                             { return nil }
func (b *busNode) Logs(string, int) ([]supervisor.LogLine, error) { return nil, nil }

func (b *busNode) Fault(name string, kind supervisor.FaultKind, _ time.Duration) (int, error) {
	if name != "storage" {
		return 0, supervisor.ErrUnknownService
	}
	b.mu.Lock()
	old := b.st.PID
	b.st.PID++
	b.st.Restarts++
	b.mu.Unlock()
	b.bus.Publish(events.Fault, name, supervisor.FaultEvent{Kind: kind, PID: old})
	b.bus.Publish(events.Exited, name, supervisor.ExitedEvent{PID: old, Signal: "killed"})
	time.AfterFunc(20*time.Millisecond, func() {
		b.bus.Publish(events.Spawned, name, supervisor.SpawnedEvent{PID: old + 1})
		b.bus.Publish(events.Ready, name, supervisor.ReadyEvent{PID: old + 1})
	})
	return old, nil
}

// newBusAndAudit makes the event bus (boot id boot) and the in-memory audit
// log of a test admin plane; serveAdmin closes the bus.
func newBusAndAudit(t *testing.T, boot string) (*events.Bus, *audit.Log) {
	t.Helper()
	bus, err := events.New(boot, 0)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return bus, l
}

func newBusNode(t *testing.T) *busNode {
	t.Helper()
	bus, l := newBusAndAudit(t, "cafe")
	b := &busNode{bus: bus, st: supervisor.Status{Name: "storage", State: supervisor.StateRunning, PID: 100, Ready: true}}
	b.url = serveAdmin(t, admin.Options{Services: b, Events: bus, Audit: l}, "storage")
	return b
}

// serveAdmin serves a real admin plane with opts on a loopback port until
// the test ends, the named services enabled, and returns its address.
func serveAdmin(t *testing.T, opts admin.Options, enabled ...string) string {
	t.Helper()
	cfg := &config.Config{HTTPAddr: "127.0.0.1:0", Services: map[string]*config.Service{}}
	for _, n := range enabled {
		cfg.Services[n] = &config.Service{Enabled: true}
	}
	opts.Config = func() *config.Config { return cfg }
	opts.Getenv = func(string) string { return "" }
	srv, err := admin.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		<-served
		if opts.Events != nil {
			opts.Events.Close()
		}
	})
	return ln.Addr().String()
}

func runCLI(ctx context.Context, b *busNode, args ...string) (int, string, string) {
	var stdout, stderr syncBuffer
	env := Env{Stdout: &stdout, Stderr: &stderr, Environ: func() []string { return []string{"RON_HTTP_ADDR=" + b.url} }}
	code := Run(ctx, append([]string{"macronode"}, args...), env)
	return code, stdout.String(), stderr.String()
}

// startCLI runs a command that lasts until ctx ends; done gets its exit code.
func startCLI(ctx context.Context, b *busNode, args ...string) (*syncBuffer, <-chan int) {
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		env := Env{Stdout: &out, Stderr: &out, Environ: func() []string { return []string{"RON_HTTP_ADDR=" + b.url} }}
		done <- Run(ctx, append([]string{"macronode"}, args...), env)
	}()
	return &out, done
}

func TestChaosPrintsRecoveryRounds(t *testing.T) {
	b := newBusNode(t)
	code, out, errOut := runCLI(context.Background(), b, "chaos", "storage", "--count", "3", "--interval", "1ms")
	if code != ExitOK {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	rounds := regexp.MustCompile(`(?m)^round (\d): pid (\d+) -> (\d+)  exit \d+ms  spawned \d+ms  ready (\d+)ms$`).FindAllStringSubmatch(out, -1)
	if len(rounds) != 3 || rounds[0][2] != "100" || rounds[2][3] != "103" {
		t.Fatalf("output:\n%s", out)
	}
	if !regexp.MustCompile(`fault -> ready over 3 rounds: median \d+ms, max \d+ms`).MatchString(out) {
		t.Fatalf("no summary:\n%s", out)
	}
	code, out, _ = runCLI(context.Background(), b, "audit", "--json")
	if code != ExitOK || strings.Count(out, `"kind":"fault"`) != 3 {
		t.Fatalf("audit (%d):\n%s", code, out)
	}
	if code, _, _ := runCLI(context.Background(), b, "chaos", "storage", "--kind", "boom"); code != ExitUsage {
		t.Errorf("bad kind: exit %d", code)
	}
	if code, _, errOut := runCLI(context.Background(), b, "chaos", "nope"); code != ExitUsage || !strings.Contains(errOut, "unknown service") {
		t.Errorf("unknown service: exit %d %s", code, errOut)
	}
}

func TestEventsCommand(t *testing.T) {
	b := newBusNode(t)
	first := b.bus.Publish(events.Spawned, "storage", supervisor.SpawnedEvent{PID: 100})
	b.bus.Publish(events.Ready, "storage", supervisor.ReadyEvent{PID: 100})
	code, out, _ := runCLI(context.Background(), b, "events")
	if code != ExitOK || strings.Count(out, "\n") != 2 || !strings.Contains(out, " cafe-2 ready storage {\"pid\":100}") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	code, out, _ = runCLI(context.Background(), b, "events", "--since", first.ID)
	if code != ExitOK || strings.Count(out, "\n") != 1 || !strings.Contains(out, "cafe-2") {
		t.Fatalf("--since: exit %d:\n%s", code, out)
	}
	if code, _, _ := runCLI(context.Background(), b, "events", "--since", "junk"); code != ExitUsage {
		t.Errorf("junk --since: exit %d", code)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, done := startCLI(ctx, b, "events", "-f")
	testutil.Eventually(t, 5*time.Second, "follower subscribed", func() bool { return b.bus.Subscribers() > 0 })
	b.bus.Publish(events.Exited, "storage", supervisor.ExitedEvent{PID: 100})
	testutil.Eventually(t, 5*time.Second, "live event printed", func() bool { return strings.Contains(stdout.String(), "cafe-3 exited storage") })
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("events -f exit %d", code)
	}
}

func TestStatusWatchPipedPrintsChanges(t *testing.T) {
	b := newBusNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, done := startCLI(ctx, b, "status", "--watch")
	testutil.Eventually(t, 5*time.Second, "first line", func() bool {
		return strings.Contains(stdout.String(), "storage state running pid 100 ready yes restarts 0")
	})
	testutil.Eventually(t, 5*time.Second, "watcher subscribed", func() bool { return b.bus.Subscribers() > 0 })
	if _, err := b.Fault("storage", supervisor.FaultKill, 0); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "change line", func() bool {
		return strings.Contains(stdout.String(), "storage pid 100->101 restarts 0->1")
	})
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("status --watch exit %d:\n%s", code, stdout.String())
	}
}

func TestChangeLines(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := map[string]admin.ServiceStatus{"a": {State: "running", PID: 1, Ready: true}}
	for _, tc := range []struct {
		cur  map[string]admin.ServiceStatus
		want string
	}{
		{cur: prev, want: ""},
		{cur: map[string]admin.ServiceStatus{"a": {State: "backoff", PID: 0, Restarts: 1}},
			want: "2026-01-01T00:00:00Z a state running->backoff pid 1->0 ready yes->no restarts 0->1"},
		{cur: map[string]admin.ServiceStatus{"a": prev["a"], "b": {State: "starting", PID: 7}},
			want: "2026-01-01T00:00:00Z b state starting pid 7 ready no restarts 0"},
	} {
		if got := strings.Join(changeLines(prev, tc.cur, now), "\n"); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
