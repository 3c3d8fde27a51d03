package supervisor

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestRefusalLogRateLimit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		at         time.Duration
		ok         bool
		suppressed int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"the burst is logged", []step{{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}}},
		{"past the burst, suppressed and counted", []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0},
			{0, false, 0}, {0, false, 0}, {500 * time.Millisecond, false, 0},
			{time.Second, true, 3}, {time.Second, false, 0}, {2 * time.Second, true, 1},
		}},
		{"a quiet spell refills the burst", []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, false, 0},
			{time.Minute, true, 1}, {time.Minute, true, 0}, {time.Minute, true, 0}, {time.Minute, true, 0}, {time.Minute, true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newRefusalLog()
			for i, s := range tt.steps {
				ok, n := l.allow(t0.Add(s.at))
				if ok != s.ok || n != s.suppressed {
					t.Fatalf("step %d at +%v: allow = %v, %d; want %v, %d", i, s.at, ok, n, s.ok, s.suppressed)
				}
			}
		})
	}
}

// A peer hammering the control socket with bad hellos is counted each time
// under its reason, but logged only at the rate limit; a later warning says
// how many were left out.
func TestControlRefusalsCountedAndRateLimited(t *testing.T) {
	h := startHarness(t, []Spec{fakeSpec(t, "steady", "good")}, nil)
	h.waitReady("steady", 0)
	bad := func() {
		c, err := net.Dial("unix", h.s.SocketPath())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("this is not json\n"))
		expectClosed(t, c, "bad hello")
	}
	const n = 20
	for range n {
		bad()
	}
	refused := func() float64 {
		return counter(t, h.s.Collector(), "macronode_control_refused_total", map[string]string{"reason": reasonMalformed})
	}
	if got := refused(); got != n {
		t.Fatalf("macronode_control_refused_total{reason=malformed} = %v, want %d", got, n)
	}
	if got := strings.Count(h.logs.String(), "control: connection refused"); got >= n {
		t.Fatalf("%d refusal warnings for %d refusals: not rate-limited", got, n)
	}
	eventually(t, 10*time.Second, "a warning reports the suppressed refusals", func() bool {
		bad()
		return h.logs.Contains(`"suppressed"`)
	})
}
