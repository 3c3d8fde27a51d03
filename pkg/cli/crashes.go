package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/config"
)

func crashesCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "crashes",
		Usage:     "list the kept exits of the services, with their crash blocks",
		UsageText: "macronode crashes [SERVICE] [--config PATH] [--http-addr ADDR]",
		Description: "Asks the node's admin API (GET /api/v1/status) for the exits each service\n" +
			"keeps (the last 5) and prints them oldest first: time, pid, how it ended,\n" +
			"uptime, why the supervisor ended it (if it did) and what it decided, then\n" +
			"the crash block (a panic, fatal error or SIGQUIT header and the first\n" +
			"goroutine's stack) or, when there is none, the last log lines.\n\n" +
			"Example:\n   macronode crashes storage\n" +
			"   storage  2025-01-02T03:04:05Z  pid 4242  exit status 2  up 3m12s  restart immediate\n" +
			"     crash:\n" +
			"       panic: boom\n" +
			"       \n" +
			"       goroutine 1 [running]:\n" +
			"       ...",
		Flags: clientFlags(),
		Action: func(c *ucli.Context) error {
			if c.NArg() > 1 {
				return usageErr("crashes takes at most one SERVICE (one of %v)", config.Planes)
			}
			if err := checkServices(c.Args().Slice(), false); err != nil {
				return err
			}
			cl, cfg, err := connect(c, env)
			if err != nil {
				return err
			}
			defer cl.close()
			doc, err := cl.status(c.Context)
			if err != nil {
				return failure(err)
			}
			names := serviceOrder(cfg, doc)
			if want := c.Args().First(); want != "" {
				if _, ok := doc.Services[want]; !ok {
					return usageErr("crashes: the node runs no service %q (it runs %v)", want, names)
				}
				names = []string{want}
			}
			if err := printCrashes(env.Stdout, names, doc); err != nil {
				return failure(err)
			}
			return nil
		},
	}
}

// serviceOrder lists the node's services in start order (the enabled
// planes of cfg), then any others by name.
func serviceOrder(cfg *config.Config, doc *admin.StatusResponse) []string {
	var names, rest []string
	listed := map[string]bool{}
	for _, n := range cfg.Enabled() {
		if _, ok := doc.Services[n]; ok {
			names = append(names, n)
			listed[n] = true
		}
	}
	for n := range doc.Services {
		if !listed[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(names, rest...)
}

// printCrashes writes the kept exits of each named service, oldest first.
func printCrashes(w io.Writer, names []string, doc *admin.StatusResponse) error {
	var b strings.Builder
	kept := false
	for _, n := range names {
		for _, e := range doc.Services[n].Exits {
			kept = true
			writeExit(&b, n, e)
		}
	}
	if !kept {
		b.WriteString("no exits kept\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeExit(b *strings.Builder, name string, e admin.ExitRecord) {
	fmt.Fprintf(b, "%s  %s  pid %d  %s  up %s", name, e.Time.UTC().Format(time.RFC3339), e.PID, dash(e.Description), exitUptime(e.UptimeSeconds))
	if e.Restart != "" {
		fmt.Fprintf(b, "  restart %s", e.Restart)
		if e.RestartDelaySeconds > 0 {
			fmt.Fprintf(b, " in %s", time.Duration(e.RestartDelaySeconds*float64(time.Second)).Round(time.Millisecond))
		}
	}
	b.WriteByte('\n')
	if e.Reason != "" {
		fmt.Fprintf(b, "  reason: %s\n", e.Reason)
	}
	lines, title := e.CrashBlock, "crash"
	if len(lines) == 0 {
		lines, title = e.LastLines, "last lines"
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(b, "  %s:\n", title)
	for _, l := range lines {
		fmt.Fprintf(b, "    %s\n", l)
	}
}

// exitUptime keeps sub-second uptimes readable (a crash at start-up).
func exitUptime(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
