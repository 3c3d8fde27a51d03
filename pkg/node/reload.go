package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/config"
)

// liveFields are the settings a reload applies without restarting anything.
// Every other change is reported as needing a restart, never silently taken.
var liveFields = map[string]bool{
	"log_level": true,
}

// reload re-reads every configuration layer. An invalid result changes
// nothing. A valid one applies the live fields (the log level) and reports
// the rest as restart_required; the configuration in force keeps the old
// values for those, so status never claims what is not running.
func (n *node) reload(_ context.Context) (admin.ReloadResult, error) {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	n.notify("RELOADING=1")
	defer n.notify("READY=1")

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
			applied.LogLevel = next.LogLevel
		}
		res.Applied = append(res.Applied, f)
	}
	n.cfg.Store(&applied)
	return res, nil
}

// diff lists the field paths whose values differ, using the same rendering
// as `macronode config print`.
func diff(a, b *config.Config) ([]string, error) {
	av, err := values(a)
	if err != nil {
		return nil, err
	}
	bv, err := values(b)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range b.FieldPaths() {
		if av[p] != bv[p] {
			out = append(out, p)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

func values(c *config.Config) (map[string]string, error) {
	var buf bytes.Buffer
	if err := c.Print(&buf); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	m := make(map[string]string)
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		path, rest, ok := strings.Cut(line, " = ")
		if !ok {
			continue
		}
		if i := strings.LastIndex(rest, "  # "); i >= 0 {
			rest = rest[:i]
		}
		m[path] = rest
	}
	return m, sc.Err()
}
