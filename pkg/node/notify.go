package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/macronode/macronode/pkg/sdnotify"
	"github.com/macronode/macronode/pkg/supervisor"
)

// changed is the supervisor's OnChange hook: it must not block, so it only
// nudges the notifier.
func (n *node) changed() {
	select {
	case n.changes <- struct{}{}:
	default:
	}
}

// notify sends one sd_notify datagram when systemd is listening (without
// NOTIFY_SOCKET it does nothing). A failure means systemd missed a message
// (READY=1, WATCHDOG=1 ...), so it is a warning.
func (n *node) notify(state string) {
	if _, err := sdnotify.Notify(state); err != nil {
		n.log.Warn("sd_notify failed: systemd is listening but did not get the message", "state", state, "error", err)
	}
}

// notifier tells systemd READY=1 once start-up has settled, keeps a STATUS=
// line current, and pets the watchdog at half of WATCHDOG_USEC. The watchdog
// is only petted when the supervisor's probe succeeds (every service
// goroutine answered), so systemd restarts a parent with a wedged loop.
func (n *node) notifier(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wd <-chan time.Time
		if interval, ok := sdnotify.WatchdogInterval(); ok {
			t := time.NewTicker(interval)
			defer t.Stop()
			wd = t.C
		}
		// A slow tick re-checks in case a change was coalesced.
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		lastStatus := ""
		update := func() {
			snap := n.sup.Snapshot()
			n.syncApplied(snap)
			status := statusLine(snap)
			if !n.ready.Load() && settled(snap) {
				n.ready.Store(true)
				n.log.Info("node started", "ready", n.admin.Ready(), "status", status,
					"startup", time.Since(n.started).Round(time.Millisecond).String())
				n.notify(sdnotify.Ready + "\n" + sdnotify.Status(status))
				lastStatus = status
				return
			}
			if status != lastStatus {
				n.notify(sdnotify.Status(status))
				lastStatus = status
			}
		}
		update()
		for {
			select {
			case <-ctx.Done():
				return
			case <-n.changes:
				update()
			case <-tick.C:
				update()
			case <-wd:
				if err := n.sup.Probe(ctx); err != nil {
					if ctx.Err() == nil {
						n.log.Error("supervisor unresponsive: not petting the systemd watchdog", "error", err)
					}
					continue
				}
				n.notify(sdnotify.Watchdog)
			}
		}
	}()
	return done
}

// settled reports whether start-up is over: every critical service is either
// running and ready, or has given up (failed). systemd then hears READY=1
// even when a plane is failed: the node is up, degraded, says so in STATUS=
// and /readyz, and keeps retrying that plane every failed_retry. Holding
// READY=1 back would make systemd kill and restart the whole node at
// TimeoutStartSec, defeating the per-plane circuit breaker.
func settled(snap []supervisor.Status) bool {
	for _, s := range snap {
		if !s.Critical {
			continue
		}
		if s.State == supervisor.StateFailed {
			continue
		}
		if !s.IsReady() {
			return false
		}
	}
	return true
}

// statusLine summarises the services for systemctl status, e.g.
// "6/6 running" or "5/6 running; storage backoff".
func statusLine(snap []supervisor.Status) string {
	running := 0
	var other []string
	for _, s := range snap {
		if s.IsReady() {
			running++
			continue
		}
		other = append(other, fmt.Sprintf("%s %s", s.Name, s.State))
	}
	line := fmt.Sprintf("%d/%d running", running, len(snap))
	if len(other) > 0 {
		line += "; " + strings.Join(other, ", ")
	}
	return line
}
