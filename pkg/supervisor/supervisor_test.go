package supervisor

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNewRejectsBadSpecs(t *testing.T) {
	exe := testExe(t)
	sp := func(name string, deps ...string) Spec { return Spec{Name: name, Binary: exe, DependsOn: deps} }
	cases := []struct {
		name   string
		specs  []Spec
		runDir string
		want   string
	}{
		{"unknown dep", []Spec{sp("a", "zz")}, "", `depends on unknown service "zz"`},
		{"cycle", []Spec{sp("a", "b"), sp("b", "c"), sp("c", "a"), sp("d")}, "", "dependency cycle among a, b, c"},
		{"self dep", []Spec{sp("a", "a")}, "", "dependency cycle among a"},
		{"duplicate", []Spec{sp("a"), sp("a")}, "", "listed twice"},
		{"no name", []Spec{sp("")}, "", "name is required"},
		{"bad name", []Spec{sp("a/b")}, "", "contains"},
		{"no binary", []Spec{{Name: "a"}}, "", "binary is required"},
		{"bad multiplier", []Spec{{Name: "a", Binary: exe, Policy: Policy{Multiplier: 0.5}}}, "", "multiplier"},
		{"max below initial", []Spec{{Name: "a", Binary: exe, Policy: Policy{Initial: time.Second, Max: time.Millisecond}}}, "", "below initial"},
		{"socket path too long", nil, "/tmp/" + strings.Repeat("d", 110), "longer than 107"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.runDir
			if dir == "" {
				tmp, err := os.MkdirTemp("", "mn")
				if err != nil {
					t.Fatal(err)
				}
				defer os.RemoveAll(tmp)
				dir = filepath.Join(tmp, "run")
			}
			s, err := New(Options{RunDir: dir, Specs: tc.specs})
			if err == nil {
				_ = s.ln.Close()
				t.Fatalf("New succeeded; want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if _, statErr := os.Stat(dir); tc.runDir != "" && statErr == nil {
				t.Fatalf("run dir %s created despite the error", dir)
			}
		})
	}
}

func TestStartOrder(t *testing.T) {
	cases := []struct {
		deps map[string][]string
		in   []string
		want []string
	}{
		{nil, []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{map[string][]string{"gw": {"a", "b"}, "b": {"a"}}, []string{"gw", "b", "a", "solo"}, []string{"a", "b", "gw", "solo"}},
		{ // the SPEC defaults
			map[string][]string{"gateway": {"storage", "index", "mailbox"}, "dht": {"overlay"}},
			[]string{"gateway", "storage", "index", "mailbox", "overlay", "dht"},
			[]string{"storage", "index", "mailbox", "gateway", "overlay", "dht"},
		},
	}
	for _, tc := range cases {
		specs := make([]Spec, len(tc.in))
		for i, n := range tc.in {
			specs[i] = Spec{Name: n, DependsOn: tc.deps[n]}
		}
		order, err := startOrder(specs)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]string, len(order))
		for i, j := range order {
			got[i] = tc.in[j]
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("startOrder(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSocketAndDirPermissions(t *testing.T) {
	h := startHarness(t, nil, nil)
	fi, err := os.Stat(filepath.Dir(h.s.SocketPath()))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("run dir mode %v, want 0700", got)
	}
	fi, err = os.Stat(h.s.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a 0600 socket", fi.Mode())
	}
	// A second supervisor on the same run dir must not steal a live socket.
	if s2, err := New(Options{RunDir: filepath.Dir(h.s.SocketPath())}); err == nil {
		_ = s2.ln.Close()
		t.Fatal("second New on a live socket succeeded")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second New: %v, want 'in use'", err)
	}
	if !h.ready() {
		t.Error("a supervisor with no services should be ready")
	}
}

// Start order follows depends_on (each waits for its dependencies to be
// ready); shutdown runs one dependency tier at a time, dependents first.
func TestStartAndShutdownOrder(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "record")
	env := "MN_FAKE_RECORD=" + rec
	gw := fakeSpec(t, "gw", "good", env)
	gw.DependsOn = []string{"a", "b"}
	b := fakeSpec(t, "b", "good", env)
	b.DependsOn = []string{"a"}
	specs := []Spec{gw, b, fakeSpec(t, "a", "good", env), fakeSpec(t, "solo", "good", env)}
	h := startHarness(t, specs, nil)

	var names []string
	for _, st := range h.s.Snapshot() {
		names = append(names, st.Name)
	}
	if got := strings.Join(names, ","); got != "a,b,gw,solo" {
		t.Fatalf("snapshot order %s, want a,b,gw,solo", got)
	}
	eventually(t, 15*time.Second, "all ready", h.ready)

	lines := strings.Split(strings.TrimSpace(readFile(t, rec)), "\n")
	pos := map[string]int{}
	for i, l := range lines {
		pos[l] = i
	}
	for _, pair := range [][2]string{{"ready a", "start b"}, {"ready a", "start gw"}, {"ready b", "start gw"}} {
		if pos[pair[0]] >= pos[pair[1]] {
			t.Errorf("%q should come before %q; record:\n%s", pair[0], pair[1], strings.Join(lines, "\n"))
		}
	}

	h.stop()
	var stops []string
	for _, l := range strings.Split(strings.TrimSpace(readFile(t, rec)), "\n") {
		if strings.HasPrefix(l, "stop ") {
			stops = append(stops, strings.TrimPrefix(l, "stop "))
		}
	}
	// Stop tiers, dependents first: [gw], [b], [a solo] (in parallel).
	if len(stops) != 4 || stops[0] != "gw" || stops[1] != "b" || !slices.Contains(stops[2:], "a") || !slices.Contains(stops[2:], "solo") {
		t.Fatalf("stop order %s, want gw,b, then a and solo", strings.Join(stops, ","))
	}
	for _, st := range h.s.Snapshot() {
		if st.State != StateStopped || st.PID != 0 || st.Ready {
			t.Errorf("%s after Run: state %s pid %d ready %v", st.Name, st.State, st.PID, st.Ready)
		}
	}
	if h.ready() {
		t.Error("Ready after shutdown")
	}
}

// kill -9 of a stable child: readiness drops, the child is restarted at once.
func TestKillStableChildRestartsImmediately(t *testing.T) {
	h := startHarness(t, []Spec{fakeSpec(t, "storage", "good")}, nil)
	st := h.waitReady("storage", 0)
	// Stable means ready for StableAfter (300ms). The harness sees ready
	// after the supervisor does, so 600ms after the harness saw it the child
	// has been ready at least that long, however late it became ready.
	readySeen := time.Now()
	eventually(t, 10*time.Second, "child stable", func() bool {
		return h.status("storage").IsReady() && time.Since(readySeen) > 600*time.Millisecond
	})

	killAt := time.Now()
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st2 := h.waitReady("storage", st.PID)
	if st2.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", st2.Restarts)
	}
	if st2.LastExit != "signal: killed" {
		t.Errorf("last exit %q, want signal: killed", st2.LastExit)
	}
	if len(st2.Exits) != 1 {
		t.Fatalf("exits = %+v, want 1", st2.Exits)
	}
	e := st2.Exits[0]
	if e.PID != st.PID || e.Code != 137 || e.Signal != "killed" || e.Restart != "immediate" || e.RestartDelaySeconds != 0 {
		t.Errorf("exit record %+v", e)
	}
	if e.UptimeSeconds < 0.6 || len(e.LastLines) == 0 {
		t.Errorf("exit record uptime %v, last lines %v", e.UptimeSeconds, e.LastLines)
	}

	h.mu.Lock()
	sawDown := false
	for _, r := range h.readyLog {
		if r.at.After(killAt) && !r.ready {
			sawDown = true
		}
	}
	h.mu.Unlock()
	if !sawDown {
		t.Error("readiness never turned false after the kill")
	}
	if !h.ready() {
		t.Error("not ready after the restart")
	}
}

// Early crashes back off with growing delays (recorded per exit).
func TestEarlyCrashBacksOff(t *testing.T) {
	sp := fakeSpec(t, "crashy", "crash")
	sp.Policy.Initial, sp.Policy.Max = 40*time.Millisecond, 10*time.Second
	h := startHarness(t, []Spec{sp}, nil)

	var backoffSeen Status
	eventually(t, 20*time.Second, "4 crashes", func() bool {
		st := h.status("crashy")
		if st.State == StateBackoff && backoffSeen.NextRestart.IsZero() {
			backoffSeen = st
		}
		return len(st.Exits) >= 4
	})
	st := h.status("crashy")
	for i, e := range st.Exits[:4] {
		base := float64(40*time.Millisecond) * math.Pow(2, float64(i)) / float64(time.Second)
		if e.Restart != "backoff" || e.RestartDelaySeconds < 0.8*base-1e-9 || e.RestartDelaySeconds > 1.2*base+1e-9 {
			t.Errorf("exit %d: restart %s after %.3fs, want backoff ~%.3fs (±20%%)", i, e.Restart, e.RestartDelaySeconds, base)
		}
		if e.Description != "exit status 1" || e.Code != 1 {
			t.Errorf("exit %d: %q code %d", i, e.Description, e.Code)
		}
	}
	if backoffSeen.NextRestart.IsZero() || backoffSeen.BackoffDelay <= 0 {
		t.Errorf("backoff status without next restart: %+v", backoffSeen)
	}
	if st.LastExit != "exit status 1" || !strings.Contains(strings.Join(st.Exits[0].LastLines, "\n"), "crashing now") {
		t.Errorf("last exit %q, lines %v", st.LastExit, st.Exits[0].LastLines)
	}
}

// A crash loop opens the breaker (failed) without harming other services;
// an operator Restart closes it at once.
func TestCrashLoopFailsThenRestart(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "crash")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	flaky := fakeSpec(t, "flaky", "crash-if-file", "MN_FAKE_FILE="+flag)
	flaky.Policy.Initial, flaky.Policy.Max, flaky.Policy.MaxRestarts = 10*time.Millisecond, 20*time.Millisecond, 3
	h := startHarness(t, []Spec{fakeSpec(t, "steady", "good"), flaky}, nil)
	steady := h.waitReady("steady", 0)

	var st Status
	eventually(t, 15*time.Second, "flaky failed", func() bool {
		st = h.status("flaky")
		return st.State == StateFailed
	})
	if st.Restarts != 3 {
		t.Errorf("restarts = %d, want 3 (MaxRestarts)", st.Restarts)
	}
	if time.Until(st.NextRestart) < 50*time.Minute || st.BackoffDelay != time.Hour.Seconds() {
		t.Errorf("failed: next restart %v (delay %vs), want ~1h", st.NextRestart, st.BackoffDelay)
	}
	if last := st.Exits[len(st.Exits)-1]; last.Restart != "failed" {
		t.Errorf("last exit decision %q, want failed", last.Restart)
	}
	if h.ready() {
		t.Error("node ready while a critical service is failed")
	}
	if now := h.status("steady"); now.PID != steady.PID || !now.Ready || now.Restarts != 0 {
		t.Errorf("steady disturbed: %+v", now)
	}

	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Restart("flaky"); err != nil {
		t.Fatal(err)
	}
	st = h.waitReady("flaky", 0)
	if st.Restarts != 4 || !st.NextRestart.IsZero() {
		t.Errorf("after Restart: restarts %d next %v", st.Restarts, st.NextRestart)
	}
	eventually(t, 5*time.Second, "node ready", h.ready)
}

// A child that stops heartbeating is killed and replaced.
func TestHungChildIsReplaced(t *testing.T) {
	sp := fakeSpec(t, "hung", "hang")
	sp.HeartbeatTimeout = 500 * time.Millisecond
	h := startHarness(t, []Spec{sp}, nil)
	first := h.waitReady("hung", 0)
	var st Status
	eventually(t, 15*time.Second, "hung child killed and replaced", func() bool {
		st = h.status("hung")
		return len(st.Exits) >= 1 && st.PID != 0 && st.PID != first.PID
	})
	e := st.Exits[0]
	if e.PID != first.PID || e.Reason != "heartbeat timeout" || e.Description != "signal: killed" {
		t.Errorf("exit %+v, want heartbeat timeout / signal: killed", e)
	}
	if st.LastError != "heartbeat timeout" || st.Restarts < 1 {
		t.Errorf("status last error %q restarts %d", st.LastError, st.Restarts)
	}
}

// A child that never becomes ready is killed at start_timeout; so is one
// whose hello is refused for a bad token.
func TestStartTimeout(t *testing.T) {
	silent := fakeSpec(t, "silent", "no-hello")
	silent.StartTimeout = 400 * time.Millisecond
	liar := fakeSpec(t, "liar", "bad-token")
	// Long enough for the hello and its refusal to happen first even on a
	// loaded machine (a -race child can take a while to start).
	liar.StartTimeout = 3 * time.Second
	h := startHarness(t, []Spec{silent, liar}, nil)
	for _, name := range []string{"silent", "liar"} {
		var st Status
		eventually(t, 15*time.Second, name+" killed at start timeout", func() bool {
			st = h.status(name)
			return len(st.Exits) >= 1
		})
		if e := st.Exits[0]; e.Reason != "start timeout" || e.Description != "signal: killed" || e.Restart != "backoff" {
			t.Errorf("%s exit %+v", name, e)
		}
	}
	if !h.logsContain("liar", "control closed") {
		t.Error("the parent did not close the bad-token connection")
	}
	if !h.logs.Contains("wrong token for liar") {
		t.Error("bad token refusal not logged")
	}
}

// Stop on a child that ignores SIGTERM escalates to SIGKILL of the group.
func TestStopEscalatesToSIGKILL(t *testing.T) {
	sp := fakeSpec(t, "stubborn", "ignore-sigterm")
	sp.ShutdownTimeout = 300 * time.Millisecond
	h := startHarness(t, []Spec{sp}, nil)
	first := h.waitReady("stubborn", 0)
	if err := h.s.Stop("stubborn"); err != nil {
		t.Fatal(err)
	}
	var st Status
	eventually(t, 10*time.Second, "stubborn stopped", func() bool {
		st = h.status("stubborn")
		return st.State == StateStopped && len(st.Exits) == 1
	})
	e := st.Exits[0]
	if e.PID != first.PID || e.Description != "signal: killed" || e.Reason != "shutdown timeout" || e.Restart != "none" {
		t.Errorf("exit %+v", e)
	}
	if st.PID != 0 || st.Restarts != 0 || st.Ready {
		t.Errorf("status after stop %+v", st)
	}
}

func TestStopStartRestart(t *testing.T) {
	h := startHarness(t, []Spec{fakeSpec(t, "svc", "good")}, nil)
	first := h.waitReady("svc", 0)

	if err := h.s.Stop("svc"); err != nil {
		t.Fatal(err)
	}
	var st Status
	eventually(t, 10*time.Second, "stopped", func() bool {
		st = h.status("svc")
		return st.State == StateStopped && len(st.Exits) == 1
	})
	if e := st.Exits[0]; e.Description != "exit status 0" || e.Reason != "stop requested" || e.Restart != "none" {
		t.Errorf("stop exit %+v", e)
	}
	if h.ready() {
		t.Error("ready while the only critical service is stopped")
	}

	if err := h.s.Start("svc"); err != nil {
		t.Fatal(err)
	}
	second := h.waitReady("svc", first.PID)
	if second.Restarts != 0 {
		t.Errorf("Start counted as a restart: %d", second.Restarts)
	}

	if err := h.s.Restart("svc"); err != nil {
		t.Fatal(err)
	}
	third := h.waitReady("svc", second.PID)
	if third.Restarts != 1 {
		t.Errorf("restarts after Restart = %d, want 1", third.Restarts)
	}
	if e := third.Exits[len(third.Exits)-1]; e.Reason != "restart requested" || e.Restart != "immediate" {
		t.Errorf("restart exit %+v", e)
	}

	for _, err := range []error{h.s.Stop("nope"), h.s.Start("nope"), h.s.Restart("nope")} {
		if !errors.Is(err, ErrUnknownService) {
			t.Errorf("unknown service: got %v", err)
		}
	}
	if _, err := h.s.Logs("nope", 1); !errors.Is(err, ErrUnknownService) {
		t.Errorf("Logs unknown: %v", err)
	}
	h.stop()
	if err := h.s.Restart("svc"); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("Restart after shutdown: %v", err)
	}
}

// health{ok:false} makes the service unhealthy (not ready) until ok again.
func TestHealthReports(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "sick")
	h := startHarness(t, []Spec{fakeSpec(t, "svc", "good", "MN_FAKE_FILE="+flag)}, nil)
	first := h.waitReady("svc", 0)
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "unhealthy", func() bool {
		st := h.status("svc")
		return st.State == StateUnhealthy && !st.Ready
	})
	if h.ready() {
		t.Error("node ready with an unhealthy critical service")
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	if st := h.waitReady("svc", 0); st.PID != first.PID {
		t.Errorf("unhealthy child was replaced (pid %d -> %d)", first.PID, st.PID)
	}
}

// A binary that cannot be started is a crash: LastError set, same backoff.
func TestSpawnFailureBacksOff(t *testing.T) {
	sp := fakeSpec(t, "ghost", "good")
	sp.Binary = "/nonexistent/macronode-test-binary"
	h := startHarness(t, []Spec{sp}, nil)
	var st Status
	eventually(t, 10*time.Second, "spawn retried", func() bool {
		st = h.status("ghost")
		return st.Restarts >= 2 && (st.State == StateBackoff || st.State == StateFailed)
	})
	if !strings.Contains(st.LastError, "no such file or directory") || st.PID != 0 || st.NextRestart.IsZero() {
		t.Errorf("status %+v", st)
	}
	if err := h.s.Run(t.Context()); err == nil {
		t.Error("second Run succeeded")
	}
}

// A child that was ready, but not for stable_after, backs off like a crash.
func TestReadyButUnstableBacksOff(t *testing.T) {
	h := startHarness(t, []Spec{fakeSpec(t, "brief", "crash-after-ready")}, nil)
	var st Status
	eventually(t, 10*time.Second, "two exits", func() bool {
		st = h.status("brief")
		return len(st.Exits) >= 2
	})
	for i, e := range st.Exits[:2] {
		if e.Restart != "backoff" || e.RestartDelaySeconds <= 0 || e.Description != "exit status 1" {
			t.Errorf("exit %d: %+v", i, e)
		}
	}
	if st.Exits[1].RestartDelaySeconds <= st.Exits[0].RestartDelaySeconds*1.2 {
		t.Errorf("backoff did not grow: %v then %v", st.Exits[0].RestartDelaySeconds, st.Exits[1].RestartDelaySeconds)
	}
}
