package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/control"
	"github.com/macronode/macronode/pkg/sdnotify"
	"github.com/macronode/macronode/pkg/supervisor"
)

// liveFields are the settings a reload applies without restarting anything.
// Every other change is reported as needing a restart, never silently taken.
var liveFields = map[string]bool{
	"log_level":   true, // the parent's loggers, and every child over the control channel
	"admin_token": true, // the admin plane reads the token in force on each request
}

// reload re-reads every configuration layer. An invalid result changes
// nothing. A valid one applies the live fields and reports the rest as
// restart_required; the configuration in force keeps the old values for
// those, so status never claims what is not running.
func (n *node) reload(_ context.Context) (admin.ReloadResult, error) {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	// Tell systemd only once it has heard READY=1, and never while
	// stopping: READY=1 during start-up would end the start job early.
	if n.ready.Load() && !n.draining.Load() {
		n.notify(fmt.Sprintf("%s\nMONOTONIC_USEC=%d", sdnotify.Reloading, monotonicUsec()))
		defer n.notify(sdnotify.Ready)
	}

	res := admin.ReloadResult{Changed: []string{}, Applied: []string{}, RestartRequired: []string{}}
	if n.opts.Reload == nil {
		return res, errors.New("reload is not available")
	}
	next, err := n.opts.Reload()
	if err != nil {
		var verr *config.ValidationError
		if errors.As(err, &verr) {
			return res, err
		}
		// A file that does not parse is as invalid as one that fails
		// validation: 422, and the old configuration stays.
		return res, fmt.Errorf("%w: %w", admin.ErrInvalidConfig, err)
	}
	cur := n.config()
	changed, err := diff(cur, next)
	if err != nil {
		return res, err
	}
	res.Changed = changed
	applied := *cur
	for _, f := range changed {
		if !liveFields[f] {
			res.RestartRequired = append(res.RestartRequired, f)
			continue
		}
		switch f {
		case "log_level":
			n.log.SetLevel(hclog.LevelFromString(next.LogLevel))
			payload, err := control.ReloadConfig{LogLevel: &next.LogLevel}.Encode()
			if err != nil {
				return res, fmt.Errorf("reload children: %w", err)
			}
			n.sup.Reload(payload)
			applied.LogLevel = next.LogLevel
		case "admin_token":
			applied.AdminToken = next.AdminToken
		}
		res.Applied = append(res.Applied, f)
	}
	if n.sup != nil { // also with nothing to restart: a reverted change cancels what was pending
		res.Apply = n.planRestarts(cur, next, res.RestartRequired, func(c *config.Config) []supervisor.Spec {
			specs, err := n.specs(c)
			if err != nil {
				n.log.Warn("reload: specs", "error", err) // only a key that cannot be marshalled
			}
			return specs
		})
	}
	n.cfg.Store(&applied)
	return res, nil
}

// diff lists the field paths whose raw values differ (secrets included: a
// rotated admin token is a change even though config print hides it).
func diff(a, b *config.Config) ([]string, error) {
	out := []string{}
	for _, p := range b.FieldPaths() {
		av, err := a.Value(p)
		if err != nil && !strings.HasPrefix(p, "services.") {
			return nil, fmt.Errorf("compare %s: %w", p, err)
		}
		bv, err := b.Value(p)
		if err != nil {
			return nil, fmt.Errorf("compare %s: %w", p, err)
		}
		if av != bv {
			out = append(out, p)
		}
	}
	return out, nil
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants
// beside RELOADING=1; 0 if the clock cannot be read.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
