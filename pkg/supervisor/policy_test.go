package supervisor

import (
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// step is one thing that happens to a tracker: time passes, then either the
// child exits (ready for readyFor, or never ready) or the operator restarts.
type step struct {
	advance  time.Duration
	reset    bool
	wasReady bool
	readyFor time.Duration
	want     restartDecision
}

func crash(advance, want time.Duration) step {
	return step{advance: advance, want: restartDecision{Delay: want}}
}

func stableExit(advance, readyFor time.Duration) step {
	return step{advance: advance, wasReady: true, readyFor: readyFor, want: restartDecision{Stable: true}}
}

func failed(advance, retry time.Duration) step {
	return step{advance: advance, want: restartDecision{Delay: retry, Failed: true}}
}

func TestRestartTracker(t *testing.T) {
	ms := time.Millisecond
	base := Policy{
		Initial: 100 * ms, Max: time.Second, Multiplier: 2, Randomization: 0,
		MaxRestarts: 100, Window: time.Minute, FailedRetry: 5 * time.Minute, StableAfter: 5 * time.Second,
	}
	with := func(f func(*Policy)) Policy { p := base; f(&p); return p }
	cases := []struct {
		name   string
		policy Policy
		steps  []step
	}{
		{"backoff grows to the cap", base, []step{
			crash(0, 100*ms), crash(ms, 200*ms), crash(ms, 400*ms), crash(ms, 800*ms), crash(ms, time.Second), crash(ms, time.Second),
		}},
		{"stable child restarts at once and resets the backoff", base, []step{
			crash(0, 100*ms), crash(ms, 200*ms), crash(ms, 400*ms),
			stableExit(10*time.Second, 5*time.Second),
			crash(ms, 100*ms), crash(ms, 200*ms),
		}},
		{"ready but not yet stable keeps backing off", base, []step{
			crash(0, 100*ms),
			{advance: time.Second, wasReady: true, readyFor: 4 * time.Second, want: restartDecision{Delay: 200 * ms}},
		}},
		{"never ready is never stable, however long it ran", base, []step{
			crash(0, 100*ms),
			{advance: time.Hour, readyFor: time.Hour, want: restartDecision{Delay: 200 * ms}},
		}},
		{"more than max restarts in the window opens the breaker", with(func(p *Policy) { p.MaxRestarts = 3 }), []step{
			crash(0, 100*ms), crash(time.Second, 200*ms), crash(time.Second, 400*ms),
			failed(time.Second, 5*time.Minute),
			failed(5*time.Minute, 5*time.Minute), // the periodic retry crashed too
		}},
		{"old restarts leave the window", with(func(p *Policy) { p.MaxRestarts = 3; p.Window = 10 * time.Second }), []step{
			crash(0, 100*ms), crash(time.Second, 200*ms), crash(time.Second, 400*ms),
			crash(15*time.Second, 800*ms), // the first three are out of the window
			crash(time.Second, time.Second), crash(time.Second, time.Second),
			failed(time.Second, 5*time.Minute),
		}},
		{"stable restarts still count in the window", with(func(p *Policy) { p.MaxRestarts = 2 }), []step{
			stableExit(0, 6*time.Second), stableExit(6*time.Second, 6*time.Second),
			{advance: 6 * time.Second, wasReady: true, readyFor: 6 * time.Second, want: restartDecision{Delay: 5 * time.Minute, Failed: true, Stable: true}},
		}},
		{"a stable retry closes the breaker", with(func(p *Policy) { p.MaxRestarts = 2 }), []step{
			crash(0, 100*ms), crash(ms, 200*ms), failed(ms, 5*time.Minute),
			stableExit(5*time.Minute+10*time.Second, 10*time.Second), // the window starts over
			crash(ms, 100*ms),
			failed(ms, 5*time.Minute),
		}},
		{"operator restart resets everything", with(func(p *Policy) { p.MaxRestarts = 1 }), []step{
			crash(0, 100*ms), failed(ms, 5*time.Minute),
			{reset: true},
			crash(ms, 100*ms), failed(ms, 5*time.Minute),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			tr := newRestartTracker(tc.policy, clk.now)
			for i, s := range tc.steps {
				clk.t = clk.t.Add(s.advance)
				if s.reset {
					tr.reset()
					continue
				}
				if got := tr.exited(s.wasReady, s.readyFor); got != s.want {
					t.Fatalf("step %d: got %+v, want %+v", i, got, s.want)
				}
			}
		})
	}
}

func TestRestartTrackerJitter(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Minute, Multiplier: 2, Randomization: 0.2,
		MaxRestarts: 1000, Window: time.Minute, FailedRetry: time.Minute, StableAfter: time.Second}
	tr := newRestartTracker(p, nil)
	want := 100 * time.Millisecond
	for i := 0; i < 8; i++ {
		d := tr.exited(false, 0).Delay
		if d < want*8/10 || d > want*12/10 {
			t.Fatalf("delay %d = %v, want %v ±20%%", i, d, want)
		}
		want *= 2
	}
}

func TestPolicyDefaults(t *testing.T) {
	got := Policy{}.withDefaults()
	want := Policy{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Randomization: 0.2,
		MaxRestarts: 10, Window: time.Minute, FailedRetry: 5 * time.Minute, StableAfter: 5 * time.Second}
	if got != want {
		t.Fatalf("defaults %+v, want %+v", got, want)
	}
	if err := got.validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Policy{
		{Initial: time.Second, Max: time.Millisecond},
		{Multiplier: 0.5},
		{Randomization: 1},
		{MaxRestarts: -1},
		{Window: -time.Second},
	} {
		if err := bad.withDefaults().validate(); err == nil {
			t.Errorf("policy %+v accepted", bad)
		}
	}
}
