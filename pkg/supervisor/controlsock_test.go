package supervisor

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/control"
)

// expectClosed fails unless the peer closes c within a few seconds.
func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: connection still open", what)
	}
}

// Hostile or broken peers on the control socket are refused, connection by
// connection, and the supervisor keeps working.
func TestControlSocketRefusesBadPeers(t *testing.T) {
	gj := fakeSpec(t, "garbler-json", "garbage", "MN_FAKE_GARBAGE=json")
	gb := fakeSpec(t, "garbler-big", "garbage", "MN_FAKE_GARBAGE=big")
	gj.Critical, gb.Critical = false, false
	h := startHarness(t, []Spec{fakeSpec(t, "steady", "good"), gj, gb}, nil)
	steady := h.waitReady("steady", 0)

	send := func(b []byte) net.Conn {
		c, err := net.Dial("unix", h.s.SocketPath())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write(b) // may fail midway once the parent hangs up
		return c
	}
	hello := func(service string, pid int) []byte {
		var sb strings.Builder
		_ = control.NewEncoder(&sb).Send(control.Hello(service, pid, "guessed-token", "x"))
		return []byte(sb.String())
	}
	cases := []struct {
		name, msg string
		in        []byte
	}{
		{"1 MiB line", "too large", []byte(strings.Repeat("x", 1<<20) + "\n")},
		{"bad json", "malformed", []byte("this is not json\n")},
		{"not hello first", "want hello", []byte(`{"type":"heartbeat"}` + "\n")},
		{"impersonates the child", "is not the child of steady", hello("steady", steady.PID)},
		{"unknown service", `unknown service \"ghost\"`, hello("ghost", os.Getpid())},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectClosed(t, send(tc.in), tc.name)
			eventually(t, 5*time.Second, "refusal logged: "+tc.msg, func() bool { return h.logs.Contains(tc.msg) })
		})
	}

	// Children that send garbage after hello lose their connection (and, as
	// real children do, exit when it closes).
	for _, name := range []string{"garbler-json", "garbler-big"} {
		eventually(t, 10*time.Second, name+" connection closed", func() bool {
			st := h.status(name)
			return h.logsContain(name, "control closed") && len(st.Exits) > 0
		})
	}
	if now := h.status("steady"); now.PID != steady.PID || !now.Ready || now.Restarts != 0 {
		t.Errorf("steady disturbed: %+v", now)
	}
	if !h.ready() {
		t.Error("node not ready (only non-critical services misbehaved)")
	}
}

// A process of another uid is refused by SO_PEERCRED even when the file
// system would let it connect.
func TestControlSocketRefusesOtherUID(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another uid")
	}
	h := startHarness(t, []Spec{fakeSpec(t, "steady", "good")}, nil)
	steady := h.waitReady("steady", 0)

	// The test binary lives in a 0700 build dir: copy it where uid 65534 can run it.
	binDir, err := os.MkdirTemp("", "mnbin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(binDir) })
	exe, err := os.ReadFile(testExe(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "fake")
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := h.s.SocketPath()
	for path, mode := range map[string]os.FileMode{binDir: 0o755, h.dir: 0o711, filepath.Dir(sock): 0o711, sock: 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command(bin)
	cmd.Env = []string{"MN_FAKE_CHILD=raw-hello", control.EnvSocket + "=" + sock,
		control.EnvService + "=steady", "MN_FAKE_PID=" + strconv.Itoa(steady.PID)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("cannot switch uid here: %v", err)
	}
	if err != nil {
		t.Fatalf("client as uid 65534: %v: %s", err, out)
	}
	eventually(t, 5*time.Second, "uid refusal logged", func() bool { return h.logs.Contains("peer uid 65534 is not ours") })
	if now := h.status("steady"); now.PID != steady.PID || !now.Ready {
		t.Errorf("steady disturbed: %+v", now)
	}
}

// A child whose hello arrives before the parent has recorded its pid (the
// spawn is held right after exec until that hello is in) is accepted on its
// first spawn. While the pid is unknown, a stranger with a wrong token is
// refused at once.
func TestHelloBeforePIDRecorded(t *testing.T) {
	held := make(chan struct{})    // the spawn of mailbox is held after exec
	release := make(chan struct{}) // the test is done with the stranger
	helloWaits := make(chan struct{})
	var heldOnce, waitOnce sync.Once
	wait := func(ch <-chan struct{}) bool {
		tm := time.NewTimer(10 * time.Second)
		defer tm.Stop()
		select {
		case <-ch:
			return true
		case <-tm.C:
			return false
		}
	}
	var sawWait atomic.Bool
	h := startHarnessWith(t, []Spec{fakeSpec(t, "mailbox", "good")}, nil, func(s *Supervisor) {
		s.testHookAfterExec = func(string) {
			first := false
			heldOnce.Do(func() { first = true; close(held) })
			if first {
				wait(release)
				sawWait.Store(wait(helloWaits))
			}
		}
		s.testHookPIDWait = func(string) { waitOnce.Do(func() { close(helloWaits) }) }
	})
	if !wait(held) {
		t.Fatal("mailbox was never spawned")
	}
	c, err := net.Dial("unix", h.s.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := control.NewEncoder(c).Send(control.Hello("mailbox", os.Getpid(), "guessed-token", "x")); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c, "stranger with a wrong token") // refused while the pid is unknown
	close(release)

	st := h.waitReady("mailbox", 0)
	if !sawWait.Load() {
		t.Error("the child's hello never waited for its pid: the race was not exercised")
	}
	if st.Restarts != 0 || len(st.Exits) != 0 {
		t.Errorf("mailbox restarted at start-up: restarts %d exits %+v", st.Restarts, st.Exits)
	}
	if !h.logs.Contains("wrong token for mailbox") {
		t.Error("the stranger was not refused for its wrong token")
	}
	for _, bad := range []string{"has no running child", "is not the child of mailbox"} {
		if h.logs.Contains(bad) {
			t.Errorf("the child's hello was refused (%q); logs:\n%s", bad, h.logs.String())
		}
	}
}
