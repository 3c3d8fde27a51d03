package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/config"
)

// clientFlags are shared by the commands that talk to a running node.
func clientFlags(extra ...ucli.Flag) []ucli.Flag {
	return append([]ucli.Flag{
		configFlag(),
		&ucli.StringFlag{Name: "http-addr", Usage: "the node's admin API `ADDR`; default from the config (RON_HTTP_ADDR)"},
	}, extra...)
}

// connect loads the configuration like `run` would and returns an admin
// API client plus the configuration (for the start order).
func connect(c *ucli.Context, env Env) (*client, *config.Config, error) {
	cfg, err := loadConfig(c, env, c.String("config"), overrides(c, []flagField{{"http-addr", "http_addr"}}))
	if err != nil {
		return nil, nil, err
	}
	cl, err := newClient(cfg)
	if err != nil {
		return nil, nil, configErr(err)
	}
	return cl, cfg, nil
}

func statusCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "status",
		Usage:     "show the services of a running node",
		UsageText: "macronode status [-o table|json] [--watch] [--config PATH] [--http-addr ADDR]",
		Description: "Asks the node's admin API (GET /api/v1/status) and prints one row per service\n" +
			"in start order; -o json prints the API's own JSON document as served. Exits 0\n" +
			"when the node is ready and every enabled service is running and ready, 3 when\n" +
			"not (as `systemctl status`), 1 when no node answers. Uses the same config\n" +
			"layers as `run`, so RON_HTTP_ADDR,\n" +
			"RON_ADMIN_TOKEN and --config point it at the right node. With --watch it\n" +
			"follows the events stream: it redraws the table on a terminal, and prints one\n" +
			"line per change when its output is not a terminal.\n\n" +
			"Example:\n   macronode status\n" +
			"   NAME     STATE    PID    UPTIME  RESTARTS  READY  LAST EXIT\n" +
			"   storage  running  41235  3m12s   1         yes    signal: killed\n" +
			"   node ready, up 3m15s\n" +
			"   node id 12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo: 2 peers (2 connected), dht routing table 2",
		Flags: clientFlags(
			&ucli.BoolFlag{Name: "watch", Usage: "keep showing the status after every change until interrupted"},
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "`FORMAT`: table, or json (the admin API's document)"},
		),
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErr("status takes no arguments")
			}
			format := c.String("output")
			if format != "table" && format != "json" {
				return usageErr("-o must be table or json, got %q", format)
			}
			if format == "json" && c.Bool("watch") {
				return usageErr("--watch draws the table; it does not combine with -o json")
			}
			cl, cfg, err := connect(c, env)
			if err != nil {
				return err
			}
			defer cl.close()
			if c.Bool("watch") {
				ctx, stop := interruptible(c.Context)
				defer stop()
				if err := watchStatus(ctx, env, cl, cfg); err != nil {
					return failure(err)
				}
				return nil
			}
			body, err := cl.raw(c.Context, http.MethodGet, "/api/v1/status", nil)
			if err != nil {
				return failure(err)
			}
			var doc admin.StatusResponse
			if err := json.Unmarshal(body, &doc); err != nil {
				return failure(fmt.Errorf("GET /api/v1/status: unexpected answer: %w", err))
			}
			if format == "json" {
				_, err = env.Stdout.Write(body)
			} else {
				err = printStatus(env, cfg, &doc)
			}
			if err != nil {
				return failure(err)
			}
			if !allUp(&doc) {
				return silent(ExitNotReady)
			}
			return nil
		},
	}
}

// allUp reports whether the node is ready and every service it runs is
// running and ready: `status` exits 0 only then.
func allUp(doc *admin.StatusResponse) bool {
	if !doc.Ready {
		return false
	}
	for _, s := range doc.Services {
		if s.State != "running" || !s.Ready {
			return false
		}
	}
	return true
}

func printStatus(env Env, cfg *config.Config, doc *admin.StatusResponse) error {
	names := serviceOrder(cfg, doc)
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tUPTIME\tRESTARTS\tREADY\tLAST EXIT")
	for _, n := range names {
		s := doc.Services[n]
		pid, uptime := "-", "-"
		if s.PID > 0 {
			pid = strconv.Itoa(s.PID)
			uptime = seconds(s.UptimeSeconds)
		}
		last := dash(s.LastExit)
		if s.LastError != "" {
			last += " (" + s.LastError + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", n, dash(s.State), pid, uptime, s.Restarts, yesNo(s.Ready), last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	state := "not ready"
	if doc.Ready {
		state = "ready"
	}
	if _, err := fmt.Fprintf(env.Stdout, "node %s, up %s\n", state, seconds(doc.UptimeSeconds)); err != nil {
		return err
	}
	if doc.Node.ID == "" {
		return nil
	}
	_, err := fmt.Fprintf(env.Stdout, "node id %s: %s\n", doc.Node.ID, clusterSummary(doc.Node))
	return err
}

// clusterSummary is the node's cluster view in a few words: its overlay
// peers and its DHT routing table, or why a plane did not say.
func clusterSummary(n admin.NodeStatus) string {
	overlay := "overlay " + dash(n.Overlay)
	if n.Overlay == admin.PlaneOK {
		overlay = fmt.Sprintf("%d peers (%d connected)", n.Peers, n.Connected)
	}
	dht := "dht " + dash(n.DHT)
	if n.DHT == admin.PlaneOK {
		dht = fmt.Sprintf("dht routing table %d", n.DHTRoutingTable)
	}
	return overlay + ", " + dht
}

func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func logsCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "logs",
		Usage:     "print recent log lines of one service",
		UsageText: "macronode logs SERVICE [-n N] [-f] [--json] [--config PATH] [--http-addr ADDR]",
		Description: "Reads the parent's ring buffer of the child's stdout and stderr\n" +
			"(GET /api/v1/services/SERVICE/logs). On a terminal each line is shown as time,\n" +
			"level (coloured; NO_COLOR turns colour off), service, message and key=value\n" +
			"fields, with one timestamp: the child's own, else when the node read the line.\n" +
			"Piped, or with --json, each line is printed as the child wrote it (JSON when the\n" +
			"child logs JSON). With -f, prints the last N lines, then\n" +
			"each new line as the node streams it (?follow=1, Server-Sent Events) until\n" +
			"interrupted, reconnecting where it left off if the connection breaks; lines\n" +
			"the node's buffer dropped before they could be sent are counted on stderr.\n\n" +
			"Example:\n   macronode logs storage -n 50 -f",
		Flags: clientFlags(
			&ucli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 100, Usage: "print the last `N` lines"},
			&ucli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines until interrupted"},
			&ucli.BoolFlag{Name: "json", Usage: "print the lines as the child wrote them, even on a terminal"},
		),
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return usageErr("logs needs exactly one SERVICE (one of %v)", config.Planes)
			}
			if err := checkServices(c.Args().Slice(), false); err != nil {
				return err
			}
			n := c.Int("lines")
			if n < 1 {
				return usageErr("-n must be at least 1, got %d", n)
			}
			name := c.Args().First()
			cl, _, err := connect(c, env)
			if err != nil {
				return err
			}
			defer cl.close()
			tty := isTTY(env.Stdout)
			view := logView{raw: c.Bool("json") || !tty, color: tty && !hasEnv(env, "NO_COLOR"), loc: time.Local}
			if c.Bool("follow") {
				ctx, stop := interruptible(c.Context)
				defer stop()
				if err := followLogs(ctx, env, cl, view, name, n); err != nil {
					return failure(fmt.Errorf("logs %s: %w", name, err))
				}
				return nil
			}
			lines, err := cl.logs(c.Context, name, n)
			if err != nil {
				return failure(fmt.Errorf("logs %s: %w", name, err))
			}
			printLines(env, view, name, lines)
			return nil
		},
	}
}

func printLines(env Env, view logView, service string, lines []admin.LogLine) {
	for _, l := range lines {
		fmt.Fprintln(env.Stdout, view.line(service, l))
	}
}

// hasEnv reports whether the variable is set to a non-empty value.
func hasEnv(env Env, name string) bool {
	for _, kv := range env.environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name && v != "" {
			return true
		}
	}
	return false
}
