package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/events"
)

// watchStatus follows the event stream and shows the status after every
// change: on a terminal it redraws the table; otherwise it prints one line
// per service whose state, pid, readiness or restarts changed.
func watchStatus(ctx context.Context, env Env, cl *client, cfg *config.Config) error {
	tty := isTTY(env.Stdout)
	var prev map[string]admin.ServiceStatus
	show := func() error {
		doc, err := cl.status(ctx)
		if err != nil {
			return err
		}
		if tty {
			fmt.Fprint(env.Stdout, "\x1b[H\x1b[2J")
			return printStatus(env, cfg, doc)
		}
		for _, line := range changeLines(prev, doc.Services, time.Now()) {
			fmt.Fprintln(env.Stdout, line)
		}
		prev = doc.Services
		return nil
	}
	if err := show(); err != nil {
		return err
	}
	return cl.followEvents(ctx, "", false, func(fr events.Frame) error {
		if fr.Comment != "" {
			return nil
		}
		return show()
	})
}

// changeLines describes what changed between two status snapshots, one
// line per service, in name order; a service first seen is described whole.
func changeLines(prev, cur map[string]admin.ServiceStatus, now time.Time) []string {
	names := make([]string, 0, len(cur))
	for n := range cur {
		names = append(names, n)
	}
	sort.Strings(names)
	ts := now.UTC().Format(time.RFC3339Nano)
	var out []string
	for _, n := range names {
		c := cur[n]
		p, seen := prev[n]
		var parts []string
		field := func(name, was, is string) {
			switch {
			case !seen:
				parts = append(parts, name+" "+is)
			case was != is:
				parts = append(parts, name+" "+was+"->"+is)
			}
		}
		field("state", p.State, c.State)
		field("pid", strconv.Itoa(p.PID), strconv.Itoa(c.PID))
		field("ready", yesNo(p.Ready), yesNo(c.Ready))
		field("restarts", strconv.Itoa(p.Restarts), strconv.Itoa(c.Restarts))
		if len(parts) > 0 {
			out = append(out, ts+" "+n+" "+strings.Join(parts, " "))
		}
	}
	return out
}
