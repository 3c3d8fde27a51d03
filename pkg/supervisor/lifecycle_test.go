package supervisor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/control"
)

// newIdle returns a Supervisor that has not been Run, its run dir, and a
// counter of the children it spawned.
func newIdle(t *testing.T, logs *syncBuffer, specs ...Spec) (*Supervisor, string, *atomic.Int32) {
	t.Helper()
	dir, err := os.MkdirTemp("", "mn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	runDir := filepath.Join(dir, "run")
	opts := Options{RunDir: runDir, Specs: specs}
	if logs != nil {
		// As the daemon does: the caller names the supervisor's logger.
		opts.Logger = hclog.New(&hclog.LoggerOptions{Name: "macronode", Output: logs, Level: hclog.Debug, JSONFormat: true}).Named("supervisor")
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var spawned atomic.Int32
	s.testHookSpawn = func(string, int) { spawned.Add(1) }
	return s, runDir, &spawned
}

// socketReleased fails unless the control socket is gone and its run dir
// can be bound again (as a second node on the same run_dir would).
func socketReleased(t *testing.T, s *Supervisor, runDir string) {
	t.Helper()
	if _, err := os.Stat(s.SocketPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket still exists: %v", err)
	}
	if c, err := net.Dial("unix", s.SocketPath()); err == nil {
		_ = c.Close()
		t.Error("control socket still accepts connections")
	}
	again, err := New(Options{RunDir: runDir})
	if err != nil {
		t.Fatalf("New on the released run dir: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}

// Run with a context that is already done (the node gave up before running
// its children, e.g. its admin port is taken) spawns nothing.
func TestRunWithCancelledContextSpawnsNothing(t *testing.T) {
	logs := &syncBuffer{}
	s, runDir, spawned := newIdle(t, logs, fakeSpec(t, "a", "good"), fakeSpec(t, "b", "good"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run(cancelled) = %v, want nil", err)
	}
	if n := spawned.Load(); n != 0 {
		t.Fatalf("Run(cancelled) spawned %d children", n)
	}
	for _, st := range s.Snapshot() {
		if st.State != StateStopped || st.PID != 0 {
			t.Errorf("%s: %+v", st.Name, st)
		}
	}
	socketReleased(t, s, runDir)
	if err := s.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}
	if err := s.Start("a"); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("Start after Run(cancelled) = %v, want ErrShuttingDown", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after Run = %v", err)
	}

	// Finding: the daemon names the logger "supervisor"; the package must
	// not add a second one.
	found := false
	for _, e := range logs.entries() {
		if e["@module"] == "macronode.supervisor.supervisor" {
			t.Fatalf("doubled logger name: %v", e)
		}
		found = found || e["@module"] == "macronode.supervisor"
	}
	if !found {
		t.Fatalf("no line from the macronode.supervisor logger:\n%s", logs.String())
	}
}

// Close releases the socket of a supervisor that was never Run; it is
// idempotent, and Run after it fails without starting anything.
func TestCloseWithoutRun(t *testing.T) {
	s, runDir, spawned := newIdle(t, nil, fakeSpec(t, "a", "good"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	socketReleased(t, s, runDir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Run(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run after Close waited for its context")
	}
	if n := spawned.Load(); n != 0 {
		t.Fatalf("spawned %d children after Close", n)
	}
	if err := s.Restart("a"); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("Restart after Close = %v", err)
	}
}

// A Stop after the breaker opened, then Start, is a fresh start: the crash
// window, backoff and breaker are reset, as Restart does.
func TestStopStartResetsBreaker(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "crash")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sp := fakeSpec(t, "flaky", "crash-if-file", "MN_FAKE_FILE="+flag)
	sp.Policy.Initial, sp.Policy.Max, sp.Policy.MaxRestarts = 10*time.Millisecond, 20*time.Millisecond, 2
	h := startHarness(t, []Spec{sp}, nil)
	var st Status
	eventually(t, 15*time.Second, "flaky failed", func() bool {
		st = h.status("flaky")
		return st.State == StateFailed
	})
	before := st.Restarts

	if err := h.s.Stop("flaky"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "flaky stopped", func() bool { return h.status("flaky").State == StateStopped })
	startAt := time.Now()
	if err := h.s.Start("flaky"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "flaky failed again", func() bool {
		st = h.status("flaky")
		last := st.Exits[len(st.Exits)-1]
		return st.State == StateFailed && last.Time.After(startAt)
	})
	var decisions []string
	for _, e := range st.Exits {
		if e.Time.After(startAt) {
			decisions = append(decisions, e.Restart)
		}
	}
	want := []string{"backoff", "backoff", "failed"} // MaxRestarts = 2 again
	if st.Restarts != before+2 || len(decisions) != len(want) {
		t.Fatalf("after Start: restarts %d (was %d), decisions %v; want +2 and %v", st.Restarts, before, decisions, want)
	}
	for i := range want {
		if decisions[i] != want[i] {
			t.Fatalf("decisions after Start %v, want %v", decisions, want)
		}
	}
}

func TestChildEnv(t *testing.T) {
	tests := []struct {
		name   string
		parent []string
		own    []string
		want   []string // before the three control variables
	}{
		{"allowed", []string{"PATH=/usr/bin", "TZ=UTC", "LANG=C.UTF-8", "LC_ALL=C", "LC_TIME=de_DE",
			"GOMAXPROCS=2", "GOGC=50", "GOMEMLIMIT=1GiB", "GODEBUG=x=1", "GOTRACEBACK=all",
			"MACRONODE_DEV_READY=1"},
			nil, []string{"PATH=/usr/bin", "TZ=UTC", "LANG=C.UTF-8", "LC_ALL=C", "LC_TIME=de_DE",
				"GOMAXPROCS=2", "GOGC=50", "GOMEMLIMIT=1GiB", "GODEBUG=x=1", "GOTRACEBACK=all",
				"MACRONODE_DEV_READY=1"}},
		{"secrets stay in the parent", []string{"RON_ADMIN_TOKEN=s3cret", "MACRO_ADMIN_TOKEN=s3cret",
			"RON_ADMIN_TOKEN_FILE=/tok", "CREDENTIALS_DIRECTORY=/run/credentials/x", "AWS_SECRET_ACCESS_KEY=k",
			"PATH=/bin"}, nil, []string{"PATH=/bin"}},
		{"systemd's variables are the parent's", []string{"NOTIFY_SOCKET=/run/systemd/notify",
			"WATCHDOG_USEC=1000000", "WATCHDOG_PID=1", "LISTEN_FDS=1", "LISTEN_PID=1", "INVOCATION_ID=x"}, nil, []string{}},
		{"other variables do not pass", []string{"HOME=/root", "RON_AMNESIA=1", "GORACE=halt_on_error=1",
			"GOPATH=/go", "LC=1", "PATHX=1", "XPATH=1", "lang=x"}, nil, []string{}},
		{"stale control variables are replaced", []string{"MACRONODE_CONTROL_SOCKET=/old",
			"MACRONODE_CONTROL_TOKEN=old", "MACRONODE_SERVICE=old", "MACRONODE_SERVICE_EXTRA=kept"},
			nil, []string{"MACRONODE_SERVICE_EXTRA=kept"}},
		{"malformed entries are dropped", []string{"PATH", "=x", ""}, nil, []string{}},
		{"the service's own env comes after, so it wins", []string{"GOGC=50"},
			[]string{"GOGC=off", "RON_ADMIN_TOKEN=given-on-purpose"},
			[]string{"GOGC=50", "GOGC=off", "RON_ADMIN_TOKEN=given-on-purpose"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := childEnv(tt.parent, tt.own, "/run/mn/control.sock", "storage", "tok")
			want := append(slices.Clone(tt.want), control.EnvSocket+"=/run/mn/control.sock",
				control.EnvService+"=storage", control.EnvToken+"=tok")
			if !slices.Equal(got, want) {
				t.Errorf("childEnv =\n %q\nwant\n %q", got, want)
			}
		})
	}
}

// A real child sees only the allow-listed part of the parent's environment:
// not the systemd notify socket and watchdog, not the admin token.
func TestChildEnvOmitsParentOnlyVars(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("WATCHDOG_USEC", "1000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	t.Setenv("RON_ADMIN_TOKEN", "s3cret")
	t.Setenv("TZ", "UTC")
	sp := fakeSpec(t, "envy", "good", "MN_FAKE_PRINTENV=NOTIFY_SOCKET,WATCHDOG_USEC,WATCHDOG_PID,RON_ADMIN_TOKEN,TZ")
	h := startHarness(t, []Spec{sp}, nil)
	h.waitReady("envy", 0)
	for _, want := range []string{"env NOTIFY_SOCKET unset", "env WATCHDOG_USEC unset", "env WATCHDOG_PID unset", "env RON_ADMIN_TOKEN unset", "env TZ=UTC"} {
		eventually(t, 5*time.Second, want, func() bool { return h.logsContain("envy", want) })
	}
}
