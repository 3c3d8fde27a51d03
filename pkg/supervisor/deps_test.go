package supervisor

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// A dependent waits for its dependency to be ready, failed, stopped by the
// operator, or past the dependency's StartTimeout; then it starts anyway and
// warns. It never stays stopped forever behind a broken dependency.
func TestDependentStartsWhenDependencyIsNotReady(t *testing.T) {
	cases := []struct {
		name    string
		mode    string        // the dependency's fake-child mode
		timeout time.Duration // the dependency's StartTimeout (the bound)
		stop    bool          // the operator stops the dependency
		settled func(Status) bool
	}{
		{ // crash-loops into failed long before its (huge) bound
			name: "failed", mode: "crash", timeout: time.Hour,
			settled: func(st Status) bool { return st.State == StateFailed },
		},
		{ // never ready: the dependent starts once the bound has passed
			name: "slow", mode: "no-hello", timeout: 500 * time.Millisecond,
			settled: func(st Status) bool { return !st.Ready },
		},
		{ // never ready, huge bound, but the operator stops it
			name: "stopped", mode: "no-hello", timeout: time.Hour, stop: true,
			settled: func(st Status) bool { return st.State == StateStopping || st.State == StateStopped },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dep := fakeSpec(t, "dep", tc.mode)
			dep.StartTimeout = tc.timeout
			dep.Policy.Initial, dep.Policy.Max, dep.Policy.MaxRestarts = 10*time.Millisecond, 20*time.Millisecond, 2
			gw := fakeSpec(t, "gw", "good")
			gw.DependsOn = []string{"dep"}

			var mu sync.Mutex
			var gwAt time.Time
			var depAtGw Status
			began := time.Now()
			h := startHarnessWith(t, []Spec{gw, dep}, nil, func(s *Supervisor) {
				prev := s.testHookSpawn
				s.testHookSpawn = func(name string, pid int) {
					prev(name, pid)
					if name != "gw" {
						return
					}
					st := s.byName["dep"].status()
					mu.Lock()
					defer mu.Unlock()
					if gwAt.IsZero() {
						gwAt, depAtGw = time.Now(), st
					}
				}
			})
			if tc.stop {
				eventually(t, 10*time.Second, "dep starting", func() bool { return h.status("dep").State == StateStarting })
				if st := h.status("gw"); st.State != StateStopped || st.PID != 0 {
					t.Fatalf("gw started before dep settled: %+v", st)
				}
				if err := h.s.Stop("dep"); err != nil {
					t.Fatal(err)
				}
			}
			st := h.waitReady("gw", 0)
			if st.Restarts != 0 {
				t.Errorf("gw restarts = %d, want 0", st.Restarts)
			}

			mu.Lock()
			at, depSt := gwAt, depAtGw
			mu.Unlock()
			if !tc.settled(depSt) {
				t.Errorf("gw started while dep was %s (ready %v): not settled", depSt.State, depSt.Ready)
			}
			if tc.name == "slow" && at.Sub(began) < tc.timeout {
				t.Errorf("gw started %s after Run began, before dep's bound of %s", at.Sub(began), tc.timeout)
			}
			var warned bool
			for _, e := range h.logs.entries() {
				if e["@message"] == "starting gw before its dependencies are ready" && e["service"] == "gw" &&
					fmt.Sprint(e["waiting_for"]) == "[dep]" {
					warned = true
				}
			}
			if !warned {
				t.Errorf("no warning naming the unready dependency; logs:\n%s", h.logs.String())
			}
		})
	}
}
