package supervisor

import (
	"sync"
	"time"
)

// A child is hung when it makes no progress for heartbeat_timeout (or is not
// ready within start_timeout) while the parent was there to see it. When the
// parent itself was not scheduled (SIGSTOP, a frozen cgroup, a VM pause, a
// debugger, heavy swapping), its timers fire late and the children's
// messages sit unread on their sockets: silence the parent did not hear is
// not the child's fault. So before a child is declared hung the service
// goroutine
//
//   - applies the events already queued for it, and counts unread bytes on
//     the child's control connection as progress (the child wrote them);
//   - asks the pause clock whether the parent was paused since the child's
//     last progress, and if so gives the child a fresh window from the
//     moment the parent resumed.

// pauseDivisor sets the pause clock's tolerance: a gap between its ticks
// longer than tick + HeartbeatTimeout/pauseDivisor (the shortest of the
// services) means the parent was not scheduled.
const pauseDivisor = 4

// minPauseTolerance keeps the clock from mistaking ordinary scheduling
// jitter (a loaded 2-core machine, the race detector) for a pause.
const minPauseTolerance = 100 * time.Millisecond

// pauseClock notices when the parent process was not scheduled. A goroutine
// reads the monotonic clock every tick; a reading further than tick +
// tolerance from the previous one ends a pause. Readers also take a reading
// (observe), so a pause is seen even before the ticking goroutine has run
// again after it.
type pauseClock struct {
	tick      time.Duration
	tolerance time.Duration

	mu      sync.Mutex
	last    time.Time // latest reading
	resumed time.Time // when the latest pause ended; zero if none seen
}

// newPauseClock returns a clock whose tolerance is the smallest heartbeat
// timeout among specs divided by pauseDivisor (at least minPauseTolerance).
func newPauseClock(specs []Spec, now time.Time) *pauseClock {
	tol := defaultHeartbeatTimeout
	for _, sp := range specs {
		tol = min(tol, sp.HeartbeatTimeout)
	}
	tol = max(tol/pauseDivisor, minPauseTolerance)
	return &pauseClock{tick: tol / 2, tolerance: tol, last: now}
}

// run ticks until stop is closed.
func (c *pauseClock) run(stop <-chan struct{}) {
	t := time.NewTicker(c.tick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.observe(time.Now())
		case <-stop:
			return
		}
	}
}

// observe records a reading taken at now and returns when the latest pause
// ended (zero if none was seen).
func (c *pauseClock) observe(now time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.last) > c.tick+c.tolerance {
		c.resumed = now
	}
	if now.After(c.last) {
		c.last = now
	}
	return c.resumed
}

// pausedSince reports when the parent resumed from a pause that ended after
// since, if there was one.
func (c *pauseClock) pausedSince(since time.Time) (time.Time, bool) {
	resumed := c.observe(time.Now())
	return resumed, resumed.After(since)
}

// catchUp applies the events the child's connection goroutine has already
// queued, and reports whether the child's control connection holds bytes
// that nobody has read yet.
func (r *runner) catchUp() (unread bool) {
	for {
		select {
		case ev := <-r.v.events:
			r.event(ev)
		default:
			return r.p != nil && r.p.unreadInput()
		}
	}
}

// armBeat (re)arms the heartbeat timer for d.
func (r *runner) armBeat(d time.Duration) {
	stopTimer(&r.beatT)
	r.beatT = time.NewTimer(d)
}

// armStart (re)arms the start timer for d.
func (r *runner) armStart(d time.Duration) {
	stopTimer(&r.startT)
	r.startAt = time.Now()
	r.startT = time.NewTimer(d)
}

// checkBeat runs when the heartbeat timer fires: it kills the child only if
// it has been silent for HeartbeatTimeout of time the parent was running.
func (r *runner) checkBeat() {
	v := r.v
	unread := r.catchUp()
	if r.p == nil || r.beatT != nil || r.stopping || r.killed {
		return // an event settled it
	}
	now := time.Now()
	if unread {
		r.lastBeat = now // the child wrote since we last read
	}
	if resumed, paused := v.sup.clock.pausedSince(r.lastBeat); paused {
		v.log.Warn("the parent was not scheduled for a while; giving the child a fresh heartbeat window",
			"pid", r.p.pid, "silent_for", resumed.Sub(r.lastBeat).Round(time.Millisecond).String())
		r.lastBeat = resumed
	}
	if since := now.Sub(r.lastBeat); since < v.spec.HeartbeatTimeout {
		r.armBeat(v.spec.HeartbeatTimeout - since)
		return
	}
	r.kill("heartbeat timeout")
}

// checkStart runs when the start timer fires: it kills the child only if it
// was not ready within StartTimeout of time the parent was running.
func (r *runner) checkStart() {
	v := r.v
	unread := r.catchUp()
	if r.p == nil || r.startT != nil || r.p.wasReady() || r.leaving() {
		return // an event settled it
	}
	if resumed, paused := v.sup.clock.pausedSince(r.startAt); paused {
		v.log.Warn("the parent was not scheduled for a while; giving the child a fresh start window",
			"pid", r.p.pid, "start_timeout", v.spec.StartTimeout.String())
		r.armStart(v.spec.StartTimeout - time.Since(resumed))
		return
	}
	if unread {
		// Its ready may be among the unread bytes: look again shortly.
		r.armStart(v.sup.clock.tolerance)
		return
	}
	r.kill("start timeout")
}
