package supervisor

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startFakeParent runs the test binary as a supervising parent of one child
// in mode, with heartbeat timeout hbt, and returns it with the channel of
// the pids it reports as ready (the first one already read).
func startFakeParent(t *testing.T, mode string, hbt time.Duration) (*exec.Cmd, int, <-chan int) {
	t.Helper()
	cmd := exec.Command(testExe(t))
	cmd.Env = append(os.Environ(), "MN_FAKE_CHILD=parent", "MN_FAKE_PARENT_MODE="+mode,
		"MN_FAKE_PARENT_HBT="+hbt.String(), "GORACE=atexit_sleep_ms=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pids := make(chan int, 16)
	go func() {
		defer close(pids)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "dir="); ok {
				t.Cleanup(func() { _ = os.RemoveAll(v) })
			}
			if v, ok := strings.CutPrefix(sc.Text(), "child="); ok {
				pid, _ := strconv.Atoi(v)
				pids <- pid
			}
		}
	}()
	var child int
	select {
	case child = <-pids:
	case <-time.After(15 * time.Second):
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		for range pids {
		}
		if child != 0 {
			eventually(t, 5*time.Second, "child gone with its parent", func() bool { return gone(child) })
		}
	})
	if child == 0 {
		t.Fatal("fake parent never reported a ready child")
	}
	return cmd, child, pids
}

// A parent that was stopped (SIGSTOP: a VM pause, a frozen cgroup, a
// debugger) for longer than heartbeat_timeout must not blame its children
// for the silence it did not hear: after SIGCONT the child is still the
// same process and no other child is started.
func TestPausedParentKeepsHealthyChild(t *testing.T) {
	const hbt = 500 * time.Millisecond
	cmd, child, pids := startFakeParent(t, "good", hbt)

	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Let several heartbeat timeouts pass while the parent cannot run.
	stopped := time.NewTimer(4 * hbt)
	<-stopped.C
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// A wrongly killed child is replaced at once (it was stable): watch
	// for a new ready pid during a few heartbeat timeouts.
	window := time.NewTimer(4 * hbt)
	defer window.Stop()
	select {
	case pid := <-pids:
		t.Fatalf("child %d was replaced by %d after the parent resumed", child, pid)
	case <-window.C:
	}
	if gone(child) {
		t.Fatalf("child %d is gone after the parent resumed", child)
	}
}

// A stopped child, though, is hung: it is replaced after heartbeat_timeout.
func TestStoppedChildIsReplaced(t *testing.T) {
	sp := fakeSpec(t, "frozen", "good")
	sp.HeartbeatTimeout = 500 * time.Millisecond
	h := startHarness(t, []Spec{sp}, nil)
	first := h.waitReady("frozen", 0)
	if err := syscall.Kill(first.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	st := h.waitReady("frozen", first.PID)
	if len(st.Exits) == 0 || st.Exits[len(st.Exits)-1].Reason != "heartbeat timeout" {
		t.Fatalf("exits %+v, want the stopped child killed for heartbeat timeout", st.Exits)
	}
}

func TestPauseClockObserve(t *testing.T) {
	t0 := time.Unix(1000, 0)
	specs := []Spec{{HeartbeatTimeout: 3 * time.Second}, {HeartbeatTimeout: time.Second}}
	tests := []struct {
		name     string
		readings []time.Duration // offsets from t0, in order
		resumed  time.Duration   // want: offset of the latest pause's end; -1 none
	}{
		{"regular ticks", []time.Duration{125, 250, 375, 500}, -1},
		{"jitter within tolerance", []time.Duration{125, 500}, -1},
		{"pause", []time.Duration{125, 5125, 5250}, 5125},
		{"two pauses: the latest counts", []time.Duration{2000, 2125, 9000}, 9000},
		{"reading from the past is ignored", []time.Duration{125, 50, 250}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newPauseClock(specs, t0)
			if c.tolerance != 250*time.Millisecond || c.tick != 125*time.Millisecond {
				t.Fatalf("tolerance %v tick %v, want 250ms and 125ms", c.tolerance, c.tick)
			}
			var got time.Time
			for _, ms := range tt.readings {
				got = c.observe(t0.Add(ms * time.Millisecond))
			}
			want := time.Time{}
			if tt.resumed >= 0 {
				want = t0.Add(tt.resumed * time.Millisecond)
			}
			if !got.Equal(want) {
				t.Errorf("resumed %v, want %v", got, want)
			}
		})
	}
}
