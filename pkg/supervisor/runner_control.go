package supervisor

import (
	"syscall"
	"time"

	"github.com/macronode/macronode/pkg/control"
	"github.com/macronode/macronode/pkg/events"
)

// command applies one operator (or shutdown) command.
func (r *runner) command(c command) {
	v := r.v
	if r.final {
		return
	}
	switch c {
	case cmdShutdown:
		r.final, r.want, r.waitDeps, r.respawn = true, false, false, 0
		stopTimer(&r.retryT)
		v.dropListener("shutdown")
		r.beginStop("shutdown", v.takeStopBy())
	case cmdStop:
		r.want, r.waitDeps, r.respawn = false, false, 0
		v.setOpStopped(true) // dependents waiting for it start now
		v.dropListener("stopped")
		if r.p != nil {
			r.beginStop("stop requested", time.Time{})
			return
		}
		stopTimer(&r.retryT)
		v.update(func(st *Status) {
			st.State, st.Ready = StateStopped, false
			st.NextRestart, st.BackoffDelay = time.Time{}, 0
		})
		r.reaped = true
		v.emit(events.Stopped, CommandEvent{Command: "stop"})
	case cmdStart:
		// An operator start is a fresh start, whatever came before (a Stop
		// overwrites the failed state, not the tracker's breaker).
		r.want, r.waitDeps = true, false
		v.setOpStopped(false)
		r.tr.reset()
		v.emit(events.Started, CommandEvent{Command: "start"})
		if r.p != nil {
			if r.stopping && r.respawn == 0 {
				r.respawn = spawnStart
			}
			return
		}
		r.spawn(spawnStart)
	case cmdRestart:
		r.want, r.waitDeps = true, false
		v.setOpStopped(false)
		r.tr.reset()
		v.emit(events.Started, CommandEvent{Command: "restart"})
		if r.p != nil {
			r.respawn = spawnManual
			r.beginStop("restart requested", time.Time{})
			return
		}
		r.spawn(spawnManual)
	}
}

// beginStop asks the child to exit: shutdown over the control channel and
// SIGTERM to its group, SIGKILL at deadline (zero: after ShutdownTimeout).
// The status shows the deadline while the child drains.
func (r *runner) beginStop(reason string, deadline time.Time) {
	p, v := r.p, r.v
	if p == nil || r.termSent {
		return
	}
	r.stopping, r.termSent = true, true
	stopTimer(&r.startT)
	stopTimer(&r.beatT)
	if deadline.IsZero() {
		deadline = time.Now().Add(v.spec.ShutdownTimeout)
	}
	v.updateReady(p.pid, "stopping: "+reason, func(st *Status) { st.State, st.Ready, st.StopDeadline = StateStopping, false, deadline })
	if r.killed {
		return // already SIGKILLed; its exit is imminent
	}
	p.setReason(reason)
	v.log.Info("stopping child", "pid", p.pid, "reason", reason, "deadline", deadline)
	if err := p.send(control.Shutdown(deadline)); err != nil {
		v.log.Debug("control: shutdown not delivered", "pid", p.pid, "error", err)
	}
	if err := p.signalGroup(syscall.SIGTERM); err != nil {
		v.log.Warn("SIGTERM failed", "pid", p.pid, "error", err)
	}
	stopTimer(&r.killT)
	r.killT = time.NewTimer(time.Until(deadline))
}

// escalate kills the group of a child that outlived its shutdown timeout.
func (r *runner) escalate() {
	if r.p == nil {
		return
	}
	r.v.log.Warn("child did not stop by its deadline; killing its process group", "pid", r.p.pid)
	r.p.setReason("shutdown timeout")
	r.v.update(func(st *Status) { st.LastError = "shutdown timeout" })
	r.killed = true
	if err := r.p.signalGroup(syscall.SIGKILL); err != nil {
		r.v.log.Error("SIGKILL failed", "pid", r.p.pid, "error", err)
	}
	r.boundT = time.NewTimer(killGrace)
}

// kill ends a hung child at once (SIGKILL to its group); the exit then goes
// through the restart policy.
func (r *runner) kill(reason string) {
	p, v := r.p, r.v
	if p == nil || r.stopping || r.killed {
		return
	}
	r.killed = true
	v.log.Warn("killing hung child", "pid", p.pid, "reason", reason)
	stopTimer(&r.startT)
	stopTimer(&r.beatT)
	p.setReason(reason)
	v.updateReady(p.pid, reason, func(st *Status) { st.Ready, st.LastError = false, reason })
	if err := p.signalGroup(syscall.SIGKILL); err != nil {
		v.log.Error("SIGKILL failed", "pid", p.pid, "error", err)
	}
	r.boundT = time.NewTimer(killGrace)
}

// leaving reports whether the current child is on its way out (stopping,
// killed, or already exited): late messages must not make it ready again.
func (r *runner) leaving() bool { return r.stopping || r.killed || r.exitSeen }

// event applies something the current child said; stale events are ignored.
func (r *runner) event(ev event) {
	p, v := r.p, r.v
	if p == nil || ev.p != p {
		return
	}
	r.lastBeat = time.Now()
	switch ev.kind {
	case evHello:
		if r.beatT == nil && !r.stopping {
			r.armBeat(v.spec.HeartbeatTimeout)
		}
	case evReady:
		if r.leaving() {
			return
		}
		if !p.wasReady() {
			v.log.Info("child ready", "pid", p.pid, "addr", ev.msg.Addr)
		}
		p.markReady()
		stopTimer(&r.startT)
		v.updateReady(p.pid, "", func(st *Status) {
			st.State, st.Ready = StateRunning, true
			if ev.msg.MetricsAddr != "" {
				st.MetricsAddr = ev.msg.MetricsAddr
			}
			if ev.msg.Addr != "" && v.held == nil { // a held socket's address is known here
				st.Listen = ev.msg.Addr
			}
		})
	case evHealth:
		if r.leaving() {
			return
		}
		if !*ev.msg.OK {
			v.log.Warn("child reports unhealthy", "pid", p.pid, "detail", ev.msg.Detail)
			v.updateReady(p.pid, "unhealthy: "+ev.msg.Detail, func(st *Status) { st.State, st.Ready = StateUnhealthy, false })
		} else if p.wasReady() {
			v.updateReady(p.pid, "", func(st *Status) { st.State, st.Ready = StateRunning, true })
		}
	case evHeartbeat:
	case evGoodbye:
		v.log.Info("child said goodbye", "pid", p.pid, "reason", ev.msg.Reason)
		if !r.stopping {
			r.stopping = true
			stopTimer(&r.startT)
			stopTimer(&r.beatT)
			r.killT = time.NewTimer(v.spec.ShutdownTimeout)
			deadline := time.Now().Add(v.spec.ShutdownTimeout)
			v.updateReady(p.pid, "goodbye: "+ev.msg.Reason, func(st *Status) { st.State, st.Ready, st.StopDeadline = StateStopping, false, deadline })
		}
	case evClosed:
		if r.leaving() {
			return
		}
		v.log.Warn("control connection closed; child is not ready", "pid", p.pid)
		v.updateReady(p.pid, "control connection closed", func(st *Status) {
			st.Ready = false
			if st.State == StateRunning {
				st.State = StateUnhealthy
			}
		})
	}
}
