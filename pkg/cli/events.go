package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/events"
)

func eventsCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "events",
		Usage:     "print the node's events (state changes of every child)",
		UsageText: "macronode events [-f] [--since ID] [--config PATH] [--http-addr ADDR]",
		Description: "Reads GET /api/v1/events and prints one event per line: time, id, type,\n" +
			"service and the event's data. Without -f it prints the events the node still\n" +
			"keeps (the last 1000, or those after --since) and exits; with -f it keeps\n" +
			"following, reconnecting from the last id it printed.\n\n" +
			"Example:\n   macronode events -f\n" +
			"   2026-01-01T10:00:00.123Z 3f2a9c1e0b7d4a55-42 exited storage {\"pid\":4123,\"signal\":\"killed\",...}",
		Flags: clientFlags(
			&ucli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new events until interrupted"},
			&ucli.StringFlag{Name: "since", Usage: "start after the event `ID` (<boot id>-<seq>)"},
		),
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErr("events takes no arguments")
			}
			if s := c.String("since"); s != "" {
				if _, _, err := events.ParseID(s); err != nil {
					return usageErr("--since: %v", err)
				}
			}
			cl, _, err := connect(c, env)
			if err != nil {
				return err
			}
			defer cl.close()
			print := func(fr events.Frame) error {
				printFrame(env, fr)
				return nil
			}
			if !c.Bool("follow") {
				_, err = cl.stream(c.Context, c.String("since"), true, false, print)
			} else {
				ctx, stop := interruptible(c.Context)
				defer stop()
				err = cl.followEvents(ctx, c.String("since"), false, print)
			}
			if err != nil {
				return failure(err)
			}
			return nil
		},
	}
}

// printFrame prints one event line; a gap says what was lost.
func printFrame(env Env, fr events.Frame) {
	if fr.Comment != "" {
		return
	}
	if fr.Type == events.Gap {
		fmt.Fprintf(env.Stdout, "%s - gap - %s\n", time.Now().UTC().Format(time.RFC3339Nano), fr.Data)
		return
	}
	ev, err := fr.Event()
	if err != nil {
		fmt.Fprintf(env.Stderr, "macronode: %v\n", err)
		return
	}
	data := string(ev.Data)
	if data == "" {
		data = "{}"
	}
	fmt.Fprintf(env.Stdout, "%s %s %s %s %s\n", ev.Time.UTC().Format(time.RFC3339Nano), ev.ID, ev.Type, dash(ev.Service), data)
}

func auditCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "audit",
		Usage:     "print the node's audit log",
		UsageText: "macronode audit [-n N] [--since TIME] [--json] [--config PATH] [--http-addr ADDR]",
		Description: "Reads GET /api/v1/audit: admin POSTs (who, what, result), reloads with\n" +
			"their diff, faults, crashes and circuit-breaker trips, oldest first.\n\n" +
			"Example:\n   macronode audit -n 20",
		Flags: clientFlags(
			&ucli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: admin.DefaultAuditLimit, Usage: "print the last `N` records"},
			&ucli.TimestampFlag{Name: "since", Layout: time.RFC3339, Usage: "only records at or after `TIME` (RFC 3339)"},
			&ucli.BoolFlag{Name: "json", Usage: "print each record as its JSON line"},
		),
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErr("audit takes no arguments")
			}
			if n := c.Int("lines"); n < 1 || n > admin.MaxAuditLimit {
				return usageErr("-n must be between 1 and %d", admin.MaxAuditLimit)
			}
			cl, _, err := connect(c, env)
			if err != nil {
				return err
			}
			defer cl.close()
			q := url.Values{"limit": {strconv.Itoa(c.Int("lines"))}}
			if ts := c.Timestamp("since"); ts != nil {
				q.Set("since", ts.Format(time.RFC3339Nano))
			}
			var doc admin.AuditResponse
			if err := cl.do(c.Context, http.MethodGet, "/api/v1/audit?"+q.Encode(), &doc); err != nil {
				return failure(err)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(env.Stdout)
				for _, r := range doc.Records {
					if err := enc.Encode(r); err != nil {
						return failure(err)
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tKIND\tWHO\tACTION\tSERVICE\tRESULT")
			for _, r := range doc.Records {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339), r.Kind, r.Who, r.Action, dash(r.Service), r.Result)
			}
			return tw.Flush()
		},
	}
}

// interruptible is ctx that also ends on SIGINT or SIGTERM.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
