package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// pauseFor is how long the parent stays stopped: longer than the default
// heartbeat_timeout (3s), as in a VM pause or a cgroup freeze.
const pauseFor = 5 * time.Second

// A parent stopped with SIGSTOP for longer than heartbeat_timeout must not
// kill its healthy children when it resumes: every child keeps its pid, no
// restart is counted, and /readyz comes back to 200.
func TestPausedParentKeepsChildren(t *testing.T) {
	n := startNode(t, nodeOpts{})
	before := n.mustStatus()
	for name, s := range before.Services {
		if s.PID <= 0 || s.Restarts != 0 {
			t.Fatalf("before the pause: %s %+v, want a pid and no restart", name, s)
		}
	}

	n.signal(syscall.SIGSTOP)
	paused := time.NewTimer(pauseFor)
	<-paused.C // the scenario itself: the parent cannot run meanwhile
	n.signal(syscall.SIGCONT)
	resumed := time.Now()
	n.waitReady(readyTimeout)
	t.Logf("/readyz 200 again %v after SIGCONT", time.Since(resumed).Round(time.Millisecond))

	// A wrongly killed child would show within heartbeat_timeout of the
	// resume; watch a little longer than that.
	watchUntil := resumed.Add(4 * time.Second)
	for time.Now().Before(watchUntil) {
		after := n.mustStatus()
		for name, b := range before.Services {
			a := after.Services[name]
			if a.PID != b.PID || a.Restarts != 0 {
				t.Fatalf("%s after the pause: pid %d restarts %d, want pid %d and no restart\n%s",
					name, a.PID, a.Restarts, b.PID, tail(n.stderr.String(), 40))
			}
		}
		time.Sleep(pollEvery)
	}
	if strings.Contains(n.stderr.String(), "killing hung child") {
		t.Fatalf("the parent killed a child as hung:\n%s", tail(n.stderr.String(), 40))
	}
}
