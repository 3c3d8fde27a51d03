package supervisor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/events"
)

// serveInherited is the fake child's side of the hand-off: it checks the
// LISTEN_* variables as sd_listen_fds does (pid first), then answers every
// HTTP request with its pid on fd 3, and reads fd 4 when asked
// (MN_FAKE_READ_FD4: the file a spec's ExtraFiles put after the listener).
func serveInherited() {
	pid, fds, names := os.Getenv(envListenPID), os.Getenv(envListenFDs), os.Getenv(envListenNames)
	fmt.Printf("listen pid=%s self=%d fds=%s names=%s\n", pid, os.Getpid(), fds, names)
	if pid != strconv.Itoa(os.Getpid()) || fds != "1" {
		fmt.Println("listener not addressed to me")
		return
	}
	if os.Getenv("MN_FAKE_READ_FD4") != "" {
		b, err := io.ReadAll(os.NewFile(4, "fd4"))
		fmt.Printf("fd4 %q %v\n", b, err)
	}
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Println("file listener:", err)
		return
	}
	me := strconv.Itoa(os.Getpid())
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, me) }))
	}()
}

// get asks addr for the pid of the child serving it.
func get(addr string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func heldSpec(tb testing.TB, env ...string) Spec {
	sp := fakeSpec(tb, "storage", "good", append([]string{"MN_FAKE_SERVE=1"}, env...)...)
	sp.Listen, sp.HoldListener = "127.0.0.1:0", true
	return sp
}

// The child gets the parent's socket on fd 3 with LISTEN_PID set to its
// own pid, a spec's extra files follow on fd 4, and a restarted child
// serves the same socket: a connection made while no child runs waits in
// the backlog and is answered by the next child, never refused.
func TestHeldListenerAcrossKill(t *testing.T) {
	sp := heldSpec(t, "MN_FAKE_READ_FD4=1")
	sp.ExtraFiles = func() ([]*os.File, error) { return pipeWith([]byte("key")) }
	before := openFDs(t)
	h := startHarness(t, []Spec{sp}, nil)
	st := h.waitReady("storage", 0)
	if st.Listener != ListenerHeld || strings.HasSuffix(st.Listen, ":0") {
		t.Fatalf("status listener=%q listen=%q, want held on a bound port", st.Listener, st.Listen)
	}
	addr := st.Listen
	eventually(t, 5*time.Second, "child checked its pid", func() bool {
		return h.logsContain("storage", fmt.Sprintf("listen pid=%d self=%d fds=1 names=storage", st.PID, st.PID))
	})
	eventually(t, 5*time.Second, "child read fd 4", func() bool { return h.logsContain("storage", `fd4 "key" <nil>`) })
	if got, err := get(addr); err != nil || got != strconv.Itoa(st.PID) {
		t.Fatalf("GET = %q, %v; want pid %d", got, err, st.PID)
	}

	// Kill the child; connect at once, while no child may be accepting.
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "exit seen", func() bool { return h.status("storage").PID != st.PID })
	got, err := get(addr)
	if err != nil {
		t.Fatalf("GET during the restart: %v (want it to wait for the next child)", err)
	}
	st2 := h.waitReady("storage", st.PID)
	if got != strconv.Itoa(st2.PID) {
		t.Errorf("answered by %q, want the new child %d", got, st2.PID)
	}
	if st2.Listen != addr {
		t.Errorf("listen %q after restart, want the same socket %q", st2.Listen, addr)
	}
	h.stop()
	if after := openFDs(t); after > before+2 {
		t.Errorf("open fds grew from %d to %d: a listener copy leaked in the parent", before, after)
	}
}

// Stop closes the parent's socket (connects are refused), Start binds it
// again on the same port, and both are events.
func TestHeldListenerStopStart(t *testing.T) {
	bus := &recordingBus{}
	h := startHarness(t, []Spec{heldSpec(t)}, func(o *Options) { o.Events = bus })
	st := h.waitReady("storage", 0)
	addr := st.Listen
	if err := h.s.Stop("storage"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "stopped and closed", func() bool {
		s := h.status("storage")
		return s.State == StateStopped && s.Listener == ListenerClosed
	})
	if _, err := net.DialTimeout("tcp", addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a stopped service: %v, want connection refused", err)
	}
	if err := h.s.Start("storage"); err != nil {
		t.Fatal(err)
	}
	st2 := h.waitReady("storage", st.PID)
	if st2.Listener != ListenerHeld || st2.Listen != addr {
		t.Fatalf("after start: listener=%q listen=%q, want held on %s", st2.Listener, st2.Listen, addr)
	}
	if got, err := get(addr); err != nil || got != strconv.Itoa(st2.PID) {
		t.Fatalf("GET after start = %q, %v", got, err)
	}
	eventually(t, 5*time.Second, "listener events", func() bool {
		return strings.Join(bus.kinds(events.Listener), ",") == "held,closed,held"
	})
}

// A busy address fails New, naming the service and the address.
func TestHeldListenerBindFailure(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	sp := heldSpec(t)
	sp.Listen = busy.Addr().String()
	dir := t.TempDir()
	_, err = New(Options{RunDir: dir, Specs: []Spec{sp}})
	if err == nil || !strings.Contains(err.Error(), "storage listener on "+sp.Listen) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("New = %v, want a bind error naming storage and %s", err, sp.Listen)
	}
}

// Update's settings apply at the operator's restart: a new address is
// bound and the old one closed; until then status shows the one in force.
func TestUpdateAppliesAtRestart(t *testing.T) {
	h := startHarness(t, []Spec{heldSpec(t)}, nil)
	st := h.waitReady("storage", 0)
	next := heldSpec(t, "MN_FAKE_PRINTENV=NEW_SETTING", "NEW_SETTING=yes")
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	next.Listen = free.Addr().String()
	free.Close()
	if err := h.s.Update(next, nil); err != nil {
		t.Fatal(err)
	}
	if s := h.status("storage"); s.Listen != st.Listen || !s.UpdatePending {
		t.Fatalf("before restart: listen %q pending %v; want %q in force, pending", s.Listen, s.UpdatePending, st.Listen)
	}
	if err := h.s.Restart("storage"); err != nil {
		t.Fatal(err)
	}
	st2 := h.waitReady("storage", st.PID)
	if st2.Listen != next.Listen || st2.UpdatePending {
		t.Fatalf("after restart: listen %q (was %q), pending %v", st2.Listen, st.Listen, st2.UpdatePending)
	}
	if !h.logsContain("storage", "env NEW_SETTING=yes") {
		t.Error("restarted child did not get the new env")
	}
	if _, err := net.DialTimeout("tcp", st.Listen, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("old address: %v, want refused", err)
	}
	if got, err := get(st2.Listen); err != nil || got != strconv.Itoa(st2.PID) {
		t.Errorf("GET new address = %q, %v", got, err)
	}
}

// recordingBus keeps the listener events' states, in order.
type recordingBus struct {
	mu     sync.Mutex
	states []string
}

func (b *recordingBus) Publish(typ, service string, data any) events.Event {
	if ev, ok := data.(ListenerEvent); ok && typ == events.Listener {
		b.mu.Lock()
		b.states = append(b.states, ev.State)
		b.mu.Unlock()
	}
	return events.Event{Type: typ, Service: service}
}

func (b *recordingBus) kinds(string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.states)
}

// The crash-loop breaker's failed state closes the socket (clients are
// refused rather than left waiting); an operator's restart binds it again.
func TestHeldListenerClosedWhileFailed(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "crash")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sp := fakeSpec(t, "storage", "crash-if-file", "MN_FAKE_FILE="+flag, "MN_FAKE_SERVE=1")
	sp.Listen, sp.HoldListener = "127.0.0.1:0", true
	sp.Policy.MaxRestarts = 2
	h := startHarness(t, []Spec{sp}, nil)
	addr := h.status("storage").Listen
	eventually(t, 15*time.Second, "failed with the socket closed", func() bool {
		s := h.status("storage")
		return s.State == StateFailed && s.Listener == ListenerClosed
	})
	if _, err := net.DialTimeout("tcp", addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a failed service: %v, want connection refused", err)
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Restart("storage"); err != nil {
		t.Fatal(err)
	}
	st := h.waitReady("storage", 0)
	if st.Listener != ListenerHeld || st.Listen != addr {
		t.Fatalf("after restart: listener %q on %q, want held on %s", st.Listener, st.Listen, addr)
	}
	if got, err := get(addr); err != nil || got != strconv.Itoa(st.PID) {
		t.Fatalf("GET after restart = %q, %v", got, err)
	}
}

// Restart of a service whose update names others restarts those whose own
// update is pending, once: the gateway follows a moved backend.
func TestUpdateRestartsWith(t *testing.T) {
	back, front := heldSpec(t), heldSpec(t)
	front.Name = "gateway"
	h := startHarness(t, []Spec{back, front}, nil)
	b0, f0 := h.waitReady("storage", 0), h.waitReady("gateway", 0)
	if err := h.s.Update(back, []string{"gateway"}); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Update(front, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Restart("storage"); err != nil {
		t.Fatal(err)
	}
	h.waitReady("storage", b0.PID)
	f1 := h.waitReady("gateway", f0.PID)
	if f1.UpdatePending {
		t.Error("gateway's update still pending after it restarted")
	}
	// Nothing pending any more: a second restart leaves the gateway alone.
	b1 := h.status("storage")
	if err := h.s.Restart("storage"); err != nil {
		t.Fatal(err)
	}
	h.waitReady("storage", b1.PID)
	if g := h.status("gateway"); g.PID != f1.PID {
		t.Errorf("gateway restarted again (pid %d -> %d) with nothing pending", f1.PID, g.PID)
	}
	if err := h.s.Update(back, []string{"nope"}); !errors.Is(err, ErrUnknownService) {
		t.Errorf("Update with an unknown service: %v", err)
	}
}

// A start that cannot bind the socket again (someone took the port while
// the service was stopped) is a spawn failure whose error names the
// service and the address.
func TestHeldListenerRebindFailure(t *testing.T) {
	h := startHarness(t, []Spec{heldSpec(t)}, nil)
	addr := h.waitReady("storage", 0).Listen
	if err := h.s.Stop("storage"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "stopped", func() bool { return h.status("storage").State == StateStopped })
	thief, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer thief.Close()
	if err := h.s.Start("storage"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "bind error reported", func() bool {
		s := h.status("storage")
		return s.State == StateBackoff && strings.Contains(s.LastError, "bind storage listener on "+addr) &&
			s.Listener == ListenerClosed
	})
	thief.Close()
	h.waitReady("storage", 0)
}

// A crash-looping child whose next start is more than heldBackoffMax away
// has its socket closed meanwhile (a connect is refused, not parked in the
// backlog for seconds), and the next spawn binds the same address again.
func TestHeldListenerClosedDuringLongBackoff(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "crash")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sp := fakeSpec(t, "storage", "crash-if-file", "MN_FAKE_FILE="+flag, "MN_FAKE_SERVE=1")
	sp.Listen, sp.HoldListener = "127.0.0.1:0", true
	sp.Policy.Initial, sp.Policy.Max = 3*time.Second, 3*time.Second
	h := startHarness(t, []Spec{sp}, nil)
	addr := h.status("storage").Listen
	eventually(t, 15*time.Second, "in a long backoff with the socket closed", func() bool {
		s := h.status("storage")
		return s.State == StateBackoff && s.Listener == ListenerClosed
	})
	if _, err := net.DialTimeout("tcp", addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial during a long backoff: %v, want connection refused", err)
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	st := h.waitReady("storage", 0)
	if st.Listener != ListenerHeld || st.Listen != addr {
		t.Fatalf("after the backoff: listener %q on %q, want held on %s", st.Listener, st.Listen, addr)
	}
	if got, err := get(addr); err != nil || got != strconv.Itoa(st.PID) {
		t.Fatalf("GET after the backoff = %q, %v", got, err)
	}
}
