package supervisor

import "time"

// depends_on orders start-up; it never blocks a dependent forever. Before
// its first start a service waits until each dependency is settled:
//
//   - ready (running and ready), or
//   - failed (its crash-loop breaker is open), or
//   - stopped by the operator (Stop), or
//   - not ready within its own StartTimeout of the dependent's first wait.
//
// A dependent that starts with some dependency not ready logs a warning
// naming them: a gateway, say, then answers 503 for the routes of a backend
// that is down instead of leaving the node without ingress.

// depWait is the outcome of one look at a service's dependencies.
type depWait struct {
	settled bool      // every dependency is settled: start now
	unready []string  // dependencies that are not ready (settled or not)
	next    time.Time // earliest bound of an unsettled dependency
}

// checkDeps evaluates v's dependencies for a wait that began at since.
func (v *service) checkDeps(since, now time.Time) depWait {
	w := depWait{settled: true}
	for _, d := range v.deps {
		d.mu.Lock()
		ready := d.st.IsReady()
		gaveUp := d.st.State == StateFailed || d.opStopped
		d.mu.Unlock()
		if ready {
			continue
		}
		w.unready = append(w.unready, d.spec.Name)
		if gaveUp {
			continue
		}
		bound := since.Add(d.spec.StartTimeout)
		if !now.Before(bound) {
			continue
		}
		w.settled = false
		if w.next.IsZero() || bound.Before(w.next) {
			w.next = bound
		}
	}
	return w
}

// awaitDeps runs at the top of each loop turn while the first start waits
// for dependencies. It starts the child once they are settled and returns
// true; otherwise it arms the bound timer and returns false (the loop then
// also wakes on the next state change).
func (r *runner) awaitDeps() bool {
	v := r.v
	now := time.Now()
	if r.waitSince.IsZero() {
		r.waitSince = now
	}
	w := v.checkDeps(r.waitSince, now)
	if w.settled {
		r.waitDeps = false
		r.depDeadline = time.Time{}
		stopTimer(&r.depT)
		if len(w.unready) > 0 {
			v.log.Warn("starting "+v.spec.Name+" before its dependencies are ready", "waiting_for", w.unready)
		}
		r.spawn(spawnFirst)
		return true
	}
	if !r.loggedWait {
		v.log.Info("waiting for dependencies", "depends_on", v.spec.DependsOn)
		r.loggedWait = true
	}
	if r.depT == nil || !w.next.Equal(r.depDeadline) {
		stopTimer(&r.depT)
		r.depDeadline = w.next
		r.depT = time.NewTimer(time.Until(w.next))
	}
	return false
}
