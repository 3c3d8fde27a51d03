package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ProbeTimeout is how long each service goroutine has to answer a probe.
const ProbeTimeout = 2 * time.Second

// ErrUnresponsive is returned by Probe when a service goroutine did not
// answer within ProbeTimeout.
var ErrUnresponsive = errors.New("service goroutine unresponsive")

// probe queues a probe for the service goroutine, unless one is already
// waiting, and returns the channel it closes when it takes it.
func (v *service) probe() <-chan struct{} {
	v.cmdMu.Lock()
	if v.probeCh == nil {
		v.probeCh = make(chan struct{})
		v.cmds = append(v.cmds, cmdProbe)
	}
	ch := v.probeCh
	v.cmdMu.Unlock()
	select {
	case v.cmdKick <- struct{}{}:
	default:
	}
	return ch
}

// answerProbe is called by the service goroutine when it takes a cmdProbe.
func (v *service) answerProbe() {
	v.cmdMu.Lock()
	if v.probeCh != nil {
		close(v.probeCh)
		v.probeCh = nil
	}
	v.cmdMu.Unlock()
}

// Probe is the supervisor's liveness check: it sends a probe through every
// service goroutine's command queue and waits for each to take it. A loop
// waiting in backoff, failed or for its dependencies answers too (its select
// waits on the queue); one that has returned (after shutdown) counts as
// answered. A loop that does not answer within ProbeTimeout of time the
// parent was running is wedged: Probe returns ErrUnresponsive naming it. If
// the parent itself was paused meanwhile (see pauseClock), the wait starts
// afresh from the resume. Probe returns nil for a supervisor that is not
// running (never Run, or closed), and ctx's error if ctx ends first.
func (s *Supervisor) Probe(ctx context.Context) error {
	if s.life.Load() != lifeRunning {
		return nil
	}
	start := time.Now()
	answers := make([]<-chan struct{}, len(s.services))
	for i, v := range s.services {
		answers[i] = v.probe()
	}
	var wedged []string
	deadline := start.Add(ProbeTimeout)
	for i, v := range s.services {
		if answered(answers[i], v.loopDone) {
			continue // past a shared deadline, an answer must still count
		}
		for settled := false; !settled; {
			t := time.NewTimer(time.Until(deadline))
			select {
			case <-answers[i]:
				settled = true
			case <-v.loopDone:
				settled = true
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("supervisor probe: %w", ctx.Err())
			case <-t.C:
				if resumed, paused := s.clock.pausedSince(start); paused {
					start, deadline = resumed, resumed.Add(ProbeTimeout)
					continue
				}
				wedged = append(wedged, v.spec.Name)
				settled = true
			}
			t.Stop()
		}
	}
	if len(wedged) > 0 {
		return fmt.Errorf("%w: %s", ErrUnresponsive, strings.Join(wedged, ", "))
	}
	return nil
}

// answered reports, without waiting, whether a probe was answered or the
// loop has returned.
func answered(answer, loopDone <-chan struct{}) bool {
	select {
	case <-answer:
		return true
	case <-loopDone:
		return true
	default:
		return false
	}
}
