package supervisor

import (
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Policy defaults (SPEC §6 Restart).
const (
	defaultInitial       = 100 * time.Millisecond
	defaultMax           = 30 * time.Second
	defaultMultiplier    = 2.0
	defaultRandomization = 0.2
	defaultMaxRestarts   = 10
	defaultWindow        = 60 * time.Second
	defaultFailedRetry   = 5 * time.Minute
	defaultStableAfter   = 5 * time.Second
)

// withDefaults fills zero fields with the SPEC defaults. A zero
// Randomization therefore means the default 0.2: jitter cannot be disabled
// through Policy, which is deliberate for a fleet of restarting children.
func (p Policy) withDefaults() Policy {
	if p.Initial == 0 {
		p.Initial = defaultInitial
	}
	if p.Max == 0 {
		p.Max = defaultMax
	}
	if p.Multiplier == 0 {
		p.Multiplier = defaultMultiplier
	}
	if p.Randomization == 0 {
		p.Randomization = defaultRandomization
	}
	if p.MaxRestarts == 0 {
		p.MaxRestarts = defaultMaxRestarts
	}
	if p.Window == 0 {
		p.Window = defaultWindow
	}
	if p.FailedRetry == 0 {
		p.FailedRetry = defaultFailedRetry
	}
	if p.StableAfter == 0 {
		p.StableAfter = defaultStableAfter
	}
	return p
}

// validate rejects values no operator can mean; it runs after withDefaults.
func (p Policy) validate() error {
	switch {
	case p.Initial < 0, p.Max < 0, p.Window < 0, p.FailedRetry < 0, p.StableAfter < 0:
		return fmt.Errorf("negative duration in restart policy")
	case p.Max < p.Initial:
		return fmt.Errorf("backoff max %s is below initial %s", p.Max, p.Initial)
	case p.Multiplier < 1:
		return fmt.Errorf("backoff multiplier %g is below 1", p.Multiplier)
	case p.Randomization < 0 || p.Randomization >= 1:
		return fmt.Errorf("backoff randomization %g is outside [0,1)", p.Randomization)
	case p.MaxRestarts < 0:
		return fmt.Errorf("max restarts %d is negative", p.MaxRestarts)
	}
	return nil
}

// restartDecision is what the tracker decides when a child exits.
type restartDecision struct {
	Delay  time.Duration // wait this long before the next start
	Failed bool          // the crash-loop breaker is open: the service is failed
	Stable bool          // the child had been ready for StableAfter
}

// restartTracker is the restart state machine of one service (Nomad's
// RestartTracker): exponential backoff, a crash window that opens a circuit
// breaker, and a stable_after reset. It is not safe for concurrent use; the
// service goroutine owns it.
type restartTracker struct {
	p       Policy
	now     func() time.Time
	bo      *backoff.ExponentialBackOff
	history []time.Time // automatic restarts inside the window, oldest first
	failed  bool
}

func newRestartTracker(p Policy, now func() time.Time) *restartTracker {
	if now == nil {
		now = time.Now
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = p.Initial
	bo.Multiplier = p.Multiplier
	bo.RandomizationFactor = p.Randomization
	bo.MaxInterval = p.Max
	bo.MaxElapsedTime = 0
	bo.Reset()
	return &restartTracker{p: p, now: now, bo: bo}
}

// exited records a death and decides the next start. wasReady tells whether
// the child ever said ready; readyFor is how long it had been ready.
//
//   - stable (ready for at least StableAfter): the backoff resets and, if the
//     breaker was open, it closes; restart at once.
//   - breaker open: retry after FailedRetry.
//   - more than MaxRestarts restarts inside Window: the breaker opens.
//   - otherwise: the next backoff delay.
func (t *restartTracker) exited(wasReady bool, readyFor time.Duration) restartDecision {
	now := t.now()
	stable := wasReady && readyFor >= t.p.StableAfter
	if stable {
		t.bo.Reset()
		if t.failed {
			t.failed = false
			t.history = nil
		}
	}
	if t.failed {
		return restartDecision{Delay: t.p.FailedRetry, Failed: true}
	}
	t.prune(now)
	t.history = append(t.history, now)
	if len(t.history) > t.p.MaxRestarts {
		t.failed = true
		t.history = nil
		return restartDecision{Delay: t.p.FailedRetry, Failed: true, Stable: stable}
	}
	if stable {
		return restartDecision{Stable: true}
	}
	return restartDecision{Delay: t.bo.NextBackOff()}
}

// prune drops restarts older than the window.
func (t *restartTracker) prune(now time.Time) {
	cut := 0
	for cut < len(t.history) && now.Sub(t.history[cut]) >= t.p.Window {
		cut++
	}
	t.history = t.history[cut:]
}

// reset is an operator restart: backoff, window and breaker start over.
func (t *restartTracker) reset() {
	t.bo.Reset()
	t.history = nil
	t.failed = false
}
