package node

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/macronode/macronode/pkg/sdnotify"
	"github.com/macronode/macronode/pkg/supervisor"
)

// While the children drain, systemd hears how it goes: a STATUS= line
// naming the draining children and their time left and, as long as the
// drain makes progress, EXTEND_TIMEOUT_USEC, so that a TimeoutStopSec=
// shorter than the drain does not SIGKILL a node that is stopping well. The
// extensions never reach past shutdown_timeout + extendSlack from the start
// of the drain: past that, systemd's own timeout applies.

// extendSlack is how far past the stop budget systemd may be asked to wait
// (the admin plane's close and the exit come after the children).
const extendSlack = 5 * time.Second

// extendEvery is how often the drain is looked at; each extension asks for
// three periods, so one late look does not let the timeout fire.
var extendEvery = time.Second

// drainReporter tells systemd about the drain until done is closed; the
// returned channel closes when it has stopped. Without NOTIFY_SOCKET it
// does nothing.
func (n *node) drainReporter(budget time.Duration, done <-chan struct{}) <-chan struct{} {
	stopped := make(chan struct{})
	if os.Getenv("NOTIFY_SOCKET") == "" {
		close(stopped)
		return stopped
	}
	start := time.Now()
	limit := start.Add(budget + extendSlack)
	go func() {
		defer close(stopped)
		t := time.NewTicker(extendEvery)
		defer t.Stop()
		live := -1 // unknown: the first look counts as progress
		for {
			now := time.Now()
			snap := n.sup.Snapshot()
			var progress bool
			live, progress = drainProgress(live, snap, now)
			msg := sdnotify.Status(drainStatus(snap, now))
			if ext := min(3*extendEvery, limit.Sub(now)); progress && ext > 0 {
				msg = sdnotify.ExtendTimeout(ext) + "\n" + msg
			}
			n.notify(msg)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return stopped
}

// drainProgress reports whether the drain still makes progress: a child
// exited since the last look (live, the children still there, went down;
// prev < 0 is the first look), or a child is stopping before its SIGKILL
// deadline. A drain whose children are all past their deadline is stuck.
func drainProgress(prev int, snap []supervisor.Status, now time.Time) (live int, progress bool) {
	for _, s := range snap {
		if s.PID == 0 {
			continue
		}
		live++
		if s.State == supervisor.StateStopping && now.Before(s.StopDeadline) {
			progress = true
		}
	}
	if prev < 0 {
		return live, live > 0
	}
	return live, progress || live < prev
}

// drainStatus is the STATUS= line while the children stop, e.g.
// "stopping: gateway 4.2s left, dht 4.2s left; 4 more".
func drainStatus(snap []supervisor.Status, now time.Time) string {
	var draining []string
	waiting := 0
	for _, s := range snap {
		switch {
		case s.State == supervisor.StateStopping && !s.StopDeadline.IsZero():
			left := max(s.StopDeadline.Sub(now), 0).Round(100 * time.Millisecond)
			draining = append(draining, fmt.Sprintf("%s %s left", s.Name, left))
		case s.PID != 0:
			waiting++
		}
	}
	line := "stopping"
	if len(draining) > 0 {
		line += ": " + strings.Join(draining, ", ")
	}
	if waiting > 0 {
		line += fmt.Sprintf("; %d more", waiting)
	}
	return line
}
