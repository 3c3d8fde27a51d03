package supervisor

import (
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// pipeWith returns the read end of a pipe holding b (then EOF).
func pipeWith(b []byte) ([]*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	_, werr := w.Write(b)
	if err := errors.Join(werr, w.Close()); err != nil {
		r.Close()
		return nil, err
	}
	return []*os.File{r}, nil
}

// Every spawn gets fresh inherited files: a restarted child reads the same
// secret again on fd 3, and the parent keeps no copy of the descriptors.
func TestExtraFilesInheritedOnEverySpawn(t *testing.T) {
	sp := fakeSpec(t, "storage", "good", "MN_FAKE_READ_FD3=1")
	var calls atomic.Int32
	sp.ExtraFiles = func() ([]*os.File, error) {
		calls.Add(1)
		return pipeWith([]byte("the-secret"))
	}
	before := openFDs(t)
	h := startHarness(t, []Spec{sp}, nil)
	st := h.waitReady("storage", 0)
	eventually(t, 5*time.Second, "child read fd 3", func() bool { return h.logsContain("storage", `fd3 "the-secret" <nil>`) })
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h.waitReady("storage", st.PID)
	eventually(t, 5*time.Second, "restarted child read fd 3", func() bool {
		lines, _ := h.s.Logs("storage", 0)
		n := 0
		for _, l := range lines {
			if strings.Contains(l.Text, `fd3 "the-secret" <nil>`) {
				n++
			}
		}
		return n == 2
	})
	if n := calls.Load(); n != 2 {
		t.Errorf("ExtraFiles called %d times for 2 spawns", n)
	}
	h.stop()
	if after := openFDs(t); after > before+2 {
		t.Errorf("open fds grew from %d to %d: inherited files leaked in the parent", before, after)
	}
}

// A failing ExtraFiles is a failed spawn, retried with backoff like any.
func TestExtraFilesErrorIsASpawnFailure(t *testing.T) {
	sp := fakeSpec(t, "storage", "good")
	var calls atomic.Int32
	sp.ExtraFiles = func() ([]*os.File, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("no key yet")
		}
		return pipeWith(nil)
	}
	h := startHarness(t, []Spec{sp}, nil)
	st := h.waitReady("storage", 0)
	if calls.Load() < 2 || st.Restarts < 1 {
		t.Errorf("after a failed ExtraFiles: calls %d, restarts %d", calls.Load(), st.Restarts)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}
