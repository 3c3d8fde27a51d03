package supervisor

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Probe answers for loops that are busy doing nothing (running, backing
// off, failed), and names a wedged loop within ProbeTimeout.
func TestProbe(t *testing.T) {
	failing := fakeSpec(t, "failing", "crash")
	failing.Critical = false
	failing.Policy.MaxRestarts = 1
	var wedge atomic.Bool
	wedged := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	h := startHarnessWith(t, []Spec{fakeSpec(t, "steady", "good"), fakeSpec(t, "stuck", "good"), failing}, nil, func(s *Supervisor) {
		s.testHookLoop = func(name string) {
			if name == "stuck" && wedge.Load() {
				once.Do(func() { close(wedged) })
				<-release
			}
		}
	})
	t.Cleanup(func() { close(release) })
	if err := (&Supervisor{}).Probe(context.Background()); err != nil {
		t.Errorf("Probe of a supervisor that is not running: %v, want nil", err)
	}
	h.waitReady("steady", 0)
	h.waitReady("stuck", 0)
	eventually(t, 10*time.Second, "failing failed", func() bool { return h.status("failing").State == StateFailed })

	for range 3 { // probes do not pile up
		if err := h.s.Probe(context.Background()); err != nil {
			t.Fatalf("Probe with healthy loops: %v", err)
		}
	}

	wedge.Store(true)
	<-wedged
	start := time.Now()
	err := h.s.Probe(context.Background())
	if !errors.Is(err, ErrUnresponsive) || !strings.Contains(err.Error(), "stuck") ||
		strings.Contains(err.Error(), "steady") || strings.Contains(err.Error(), "failing") {
		t.Fatalf("Probe with a wedged loop: %v, want ErrUnresponsive naming stuck only", err)
	}
	if took := time.Since(start); took < ProbeTimeout || took > ProbeTimeout+3*time.Second {
		t.Errorf("Probe took %v, want about %v", took, ProbeTimeout)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.s.Probe(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Probe with a cancelled context: %v, want context.Canceled", err)
	}
}
