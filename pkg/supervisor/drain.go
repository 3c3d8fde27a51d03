package supervisor

import (
	"time"
)

// The final drain (SPEC §6 Shutdown): the stop budget is the node's whole
// shutdown_timeout, not a per-child grace. Children stop one dependency
// tier at a time, dependents first (the gateway, the ingress gate, leads),
// a tier's members in parallel. Each tier gets the remaining budget divided
// by the tiers left, so time a quick tier leaves unused passes on to the
// next; a child still running when its tier's share ends is SIGKILLed.

// maxKillReserve bounds the part of the budget kept back so that the
// SIGKILLs at the last tier's deadline are reaped within the budget.
const maxKillReserve = 250 * time.Millisecond

// killReserve is the part of budget kept back for the final kills: a
// twentieth of it, at most maxKillReserve.
func killReserve(budget time.Duration) time.Duration {
	return min(budget/20, maxKillReserve)
}

// tierShare is the time the next tier gets: what remains of the budget
// divided by the tiers left (itself included).
func tierShare(remaining time.Duration, tiersLeft int) time.Duration {
	if remaining <= 0 || tiersLeft <= 0 {
		return 0
	}
	return remaining / time.Duration(tiersLeft)
}

// stopTiers groups the services into stop tiers. A service's level is 0
// without dependencies, else one more than its deepest dependency's; the
// highest level stops first. Within a tier, services are in reverse start
// order, so the ingress gate (the gateway, started last) is told first.
func stopTiers(services []*service) [][]*service {
	level := make(map[*service]int, len(services))
	top := 0
	for _, v := range services { // start order: dependencies come first
		l := 0
		for _, d := range v.deps {
			l = max(l, level[d]+1)
		}
		level[v] = l
		top = max(top, l)
	}
	if len(services) == 0 {
		return nil
	}
	tiers := make([][]*service, top+1)
	for j := len(services) - 1; j >= 0; j-- {
		v := services[j]
		i := top - level[v]
		tiers[i] = append(tiers[i], v)
	}
	return tiers
}

// stopBudget is Options.StopBudget, or the largest per-service
// ShutdownTimeout when it is unset.
func (s *Supervisor) stopBudget() time.Duration {
	if s.opts.StopBudget > 0 {
		return s.opts.StopBudget
	}
	var b time.Duration
	for _, v := range s.services {
		b = max(b, v.spec.ShutdownTimeout)
	}
	return b
}

// drain stops every child within the stop budget, tier by tier, and
// returns once the tiers have been told and waited for (every service
// goroutine is then done, or was given up on after its share and killGrace,
// which is logged).
func (s *Supervisor) drain() {
	budget := s.stopBudget()
	end := time.Now().Add(budget - killReserve(budget))
	tiers := stopTiers(s.services)
	for i, tier := range tiers {
		share := tierShare(time.Until(end), len(tiers)-i)
		deadline := time.Now().Add(share)
		names := make([]string, len(tier))
		for j, v := range tier {
			names[j] = v.spec.Name
		}
		s.log.Info("stopping tier", "services", names, "share", share.Round(time.Millisecond).String(), "tiers_left", len(tiers)-i)
		for _, v := range tier {
			// Logged here, in tier order, before any member is told.
			v.log.Info("final stop requested", "deadline", deadline)
		}
		for _, v := range tier {
			v.shutdown(deadline)
		}
		bound := time.NewTimer(share + killGrace)
	wait:
		for _, v := range tier {
			select {
			case <-v.loopDone:
			case <-bound.C:
				s.log.Error("tier did not stop in time; stopping the next one meanwhile", "services", names)
				break wait
			}
		}
		bound.Stop()
	}
}

// shutdown asks the service goroutine for its final stop, with SIGKILL due
// at deadline.
func (v *service) shutdown(deadline time.Time) {
	v.cmdMu.Lock()
	v.stopBy = deadline
	v.cmdMu.Unlock()
	_ = v.enqueue(cmdShutdown) // never refused: shutdown bypasses the queue bound
}

// takeStopBy returns the final stop's deadline set by shutdown.
func (v *service) takeStopBy() time.Time {
	v.cmdMu.Lock()
	defer v.cmdMu.Unlock()
	return v.stopBy
}
