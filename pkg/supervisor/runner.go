package supervisor

import (
	"os"
	"slices"
	"time"

	"github.com/macronode/macronode/pkg/events"
)

// runner is the state private to the service goroutine.
type runner struct {
	v  *service
	tr *restartTracker
	p  *proc

	exitSeen bool      // p.exited observed
	stopping bool      // p is being stopped (by us, or it said goodbye)
	termSent bool      // we sent shutdown+SIGTERM to p
	killed   bool      // we sent SIGKILL to p
	want     bool      // the service should run
	waitDeps bool      // first start still waits for dependencies (deps.go)
	final    bool      // supervisor shutdown: stop and return
	respawn  spawnKind // start again as soon as p is reaped
	lastBeat time.Time // the child's latest progress (liveness.go)
	startAt  time.Time // when startT was armed
	reaped   bool      // the last child's exit already said stopped (events.go)

	waitSince   time.Time // when the dependency wait began
	depDeadline time.Time // when depT fires
	loggedWait  bool

	startT, beatT, retryT, killT, boundT, depT *time.Timer
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func stopTimer(t **time.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}

// loop is the service goroutine.
func (v *service) loop() {
	defer close(v.loopDone)
	r := &runner{v: v, tr: newRestartTracker(v.spec.Policy, nil), want: true, waitDeps: true}
	for {
		if hook := v.sup.testHookLoop; hook != nil {
			hook(v.spec.Name)
		}
		if !r.waitDeps && r.depT != nil {
			stopTimer(&r.depT) // a command ended the wait
		}
		if r.final && r.p == nil {
			v.dropListener("shutdown")
			r.stopTimers()
			stopTimer(&r.retryT)
			v.update(func(st *Status) {
				st.State, st.Ready, st.PID = StateStopped, false, 0
				st.NextRestart, st.BackoffDelay = time.Time{}, 0
			})
			if !r.reaped {
				v.emit(events.Stopped, nil) // stopped while no child ran
			}
			return
		}
		var depsCh <-chan struct{}
		if r.waitDeps {
			ch := v.sup.changedCh() // taken before the check: no missed wake-up
			if r.awaitDeps() {
				continue
			}
			depsCh = ch
		}
		var exited, done <-chan struct{}
		if r.p != nil {
			done = r.p.done
			if !r.exitSeen {
				exited = r.p.exited
			}
		}
		select {
		case <-depsCh:
		case <-timerC(r.depT):
			r.depT = nil
		case <-v.cmdKick:
			for _, c := range v.takeCommands() {
				if c == cmdProbe {
					v.answerProbe()
					continue
				}
				r.command(c)
			}
		case ev := <-v.events:
			r.event(ev)
		case <-exited:
			r.onExited()
		case <-done:
			r.onDone()
		case <-timerC(r.startT):
			r.startT = nil
			r.checkStart()
		case <-timerC(r.beatT):
			r.beatT = nil
			r.checkBeat()
		case <-timerC(r.retryT):
			r.retryT = nil
			r.spawn(spawnAuto)
		case <-timerC(r.killT):
			r.killT = nil
			r.escalate()
		case <-timerC(r.boundT):
			r.boundT = nil
			v.log.Error("child not reaped after SIGKILL; still waiting", "pid", r.p.pid, "waited", killGrace.String())
		}
	}
}

func (r *runner) stopTimers() {
	stopTimer(&r.startT)
	stopTimer(&r.beatT)
	stopTimer(&r.killT)
	stopTimer(&r.boundT)
}

// spawn starts a new child now.
func (r *runner) spawn(kind spawnKind) {
	v := r.v
	stopTimer(&r.retryT)
	r.respawn = 0
	counted := kind == spawnAuto || kind == spawnManual
	if kind == spawnManual || kind == spawnStart {
		v.applyUpdate()
	}
	token, err := newToken()
	var lf *os.File
	if err == nil {
		lf, err = v.listenerFile()
	}
	var p *proc
	if err == nil {
		// Register the child before exec: it may say hello before start
		// returns, and handshake must find it (and wait for its pid).
		p = newProc(token)
		v.mu.Lock()
		v.cur = p
		v.mu.Unlock()
		var afterExec func()
		if hook := v.sup.testHookAfterExec; hook != nil {
			afterExec = func() { hook(v.spec.Name) }
		}
		err = p.start(&v.spec, v.env(token), lf, v.sink, afterExec)
	}
	if err != nil {
		// A spawn failure is a crash: same policy, same backoff.
		v.log.Error("spawn failed", "error", err)
		d := r.tr.exited(false, 0)
		v.mu.Lock()
		v.cur = nil
		if counted {
			v.st.Restarts++
		}
		v.st.LastError = err.Error()
		v.st.PID, v.st.Ready = 0, false
		v.mu.Unlock()
		v.sup.notify()
		r.schedule(d)
		return
	}
	r.p, r.exitSeen, r.stopping, r.termSent, r.killed, r.reaped = p, false, false, false, false, false
	r.lastBeat = time.Now()
	r.armStart(v.spec.StartTimeout)
	v.mu.Lock()
	v.st.State, v.st.Ready, v.st.PID = StateStarting, false, p.pid
	v.st.NextRestart, v.st.BackoffDelay = time.Time{}, 0
	if counted {
		v.st.Restarts++
	}
	v.mu.Unlock()
	v.sup.notify()
	v.emit(events.Spawned, SpawnedEvent{PID: p.pid, Restarts: v.status().Restarts})
	if hook := v.sup.testHookSpawn; hook != nil {
		hook(v.spec.Name, p.pid)
	}
	v.log.Info("child started", "pid", p.pid)
}

// schedule waits before the next start (backoff) or opens the breaker.
func (r *runner) schedule(d restartDecision) {
	state := StateBackoff
	switch {
	case d.Failed:
		state = StateFailed
		r.v.dropListener("failed")
		r.v.log.Error("crash loop: service failed; retrying periodically", "max_restarts", r.v.spec.Policy.MaxRestarts,
			"window", r.v.spec.Policy.Window.String(), "retry_in", d.Delay.String())
	case d.Delay > heldBackoffMax:
		// A crash-looping child waits longer than a client should sit in
		// the accept backlog: refuse (the gateway answers 503 at once)
		// until the next spawn binds the socket again.
		r.v.dropListener("backoff")
	}
	next := time.Now().Add(d.Delay)
	r.v.update(func(st *Status) {
		st.State, st.Ready = state, false
		st.NextRestart, st.BackoffDelay = next, d.Delay.Seconds()
	})
	r.retryT = time.NewTimer(d.Delay)
	if d.Failed {
		r.v.emit(events.Failed, FailedEvent{RetrySeconds: d.Delay.Seconds(), MaxRestarts: r.v.spec.Policy.MaxRestarts,
			WindowSeconds: r.v.spec.Policy.Window.Seconds()})
	} else {
		r.v.emit(events.Backoff, BackoffEvent{DelaySeconds: d.Delay.Seconds()})
	}
}

// onExited runs the moment the child is seen to exit: readiness drops now,
// before the pipes are drained and the policy decides.
func (r *runner) onExited() {
	r.exitSeen = true
	r.v.updateReady(r.p.pid, "exited", func(st *Status) { st.Ready = false })
}

// onDone runs once the child is reaped: record the exit and decide.
func (r *runner) onDone() {
	p, v := r.p, r.v
	r.p = nil
	r.stopTimers()
	p.closeConn()
	exit := p.exitRecord(v.sink.ring.last(exitLastLines))
	p.mu.Lock()
	readyAt, exitAt := p.readyAt, p.exitAt
	p.mu.Unlock()
	wasReady := !readyAt.IsZero()
	readyFor := time.Duration(0)
	if wasReady {
		readyFor = exitAt.Sub(readyAt)
	}

	var d restartDecision
	next := r.respawn
	switch {
	case r.final || !r.want:
		exit.Restart = "none"
	case next != 0:
		exit.Restart = "immediate"
	default:
		d = r.tr.exited(wasReady, readyFor)
		exit.RestartDelaySeconds = d.Delay.Seconds()
		switch {
		case d.Failed:
			exit.Restart = "failed"
		case d.Delay == 0:
			exit.Restart, next = "immediate", spawnAuto
		default:
			exit.Restart = "backoff"
		}
	}
	uptime := time.Duration(exit.UptimeSeconds * float64(time.Second)).Round(time.Millisecond)
	logArgs := []any{"pid", exit.PID, "exit", exit.Description, "uptime", uptime.String(), "restart", exit.Restart}
	if exit.Restart == "backoff" || exit.Restart == "failed" {
		logArgs = append(logArgs, "delay", d.Delay.Round(time.Millisecond).String())
	}
	if exit.Reason != "" {
		logArgs = append(logArgs, "reason", exit.Reason)
	}
	if r.stopping {
		v.log.Info("child exited", logArgs...)
	} else {
		v.log.Warn("child exited unexpectedly", logArgs...)
	}

	v.sup.metrics.exits.WithLabelValues(v.spec.Name, exitCause(exit)).Inc()
	v.mu.Lock()
	v.cur = nil
	v.st.PID, v.st.Ready = 0, false
	v.st.StopDeadline = time.Time{}
	v.st.LastExit = exit.Description
	v.st.Exits = append(v.st.Exits, exit)
	if n := len(v.st.Exits); n > 5 {
		v.st.Exits = slices.Clone(v.st.Exits[n-5:])
	}
	if exit.Restart == "none" {
		v.st.State = StateStopped
		v.st.NextRestart, v.st.BackoffDelay = time.Time{}, 0
	}
	v.mu.Unlock()
	v.sup.notify()
	v.emit(events.Exited, ExitedEvent{PID: exit.PID, Code: exit.Code, Signal: exit.Signal, Description: exit.Description,
		UptimeSeconds: exit.UptimeSeconds, Reason: exit.Reason, Restart: exit.Restart, Expected: r.stopping})
	if exit.Restart == "none" {
		r.reaped = true
		v.emit(events.Stopped, nil)
	}

	switch {
	case exit.Restart == "none":
	case next != 0:
		r.spawn(next)
	default:
		r.schedule(d)
	}
}
