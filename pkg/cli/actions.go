package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/events"
	"github.com/macronode/macronode/pkg/supervisor"
)

// defaultActionTimeout bounds how long restart, stop and start wait for
// their outcome.
const defaultActionTimeout = 30 * time.Second

func actionCommand(env Env, verb, usage string) *ucli.Command {
	return &ucli.Command{
		Name:      verb,
		Usage:     usage,
		UsageText: "macronode " + verb + " SERVICE...|all [--no-block] [--timeout D] [--config PATH] [--http-addr ADDR]",
		Description: fmt.Sprintf("Asks the running node (POST /api/v1/services/SERVICE/%s) for each SERVICE,\n"+
			"then waits for the outcome on the node's event stream and prints it, e.g.\n"+
			"\"storage: running (pid 123, ready in 14 ms)\" or \"storage: stopped (in 40 ms)\"; the\n"+
			"time runs from the request to the event that says so. `all` is every service\n"+
			"the node runs, asked in start order (stop: reverse order); the node itself\n"+
			"holds a service back until those it depends on are up. A start of a service\n"+
			"that is running and ready, or a stop of a stopped one, asks nothing and says\n"+
			"so. Exit 1 when any outcome is not reached: the service failed (crash loop),\n"+
			"the node refused, or --timeout passed. --no-block only asks, as before, and\n"+
			"prints what the node scheduled. Sends Authorization: Bearer $RON_ADMIN_TOKEN\n"+
			"when an admin token is configured.\n\n"+
			"Examples:\n   macronode %s storage\n   macronode %s index mailbox --timeout 10s\n   macronode %s all --no-block", verb, verb, verb, verb),
		Flags: clientFlags(
			&ucli.BoolFlag{Name: "no-block", Usage: "only ask; do not wait for the outcome"},
			&ucli.DurationFlag{Name: "timeout", Value: defaultActionTimeout, Usage: "give up waiting after `D`"},
		),
		Action: func(c *ucli.Context) error {
			if c.NArg() == 0 {
				return usageErr("%s needs SERVICE... or all (services: %s)", verb, strings.Join(config.Planes, ", "))
			}
			names := c.Args().Slice()
			if err := checkServices(names, true); err != nil {
				return err
			}
			if c.Duration("timeout") <= 0 {
				return usageErr("--timeout must be positive, got %s", c.Duration("timeout"))
			}
			cl, cfg, err := connect(c, env)
			if err != nil {
				return err
			}
			defer cl.close()
			a := &actions{env: env, cl: cl, verb: verb}
			ctx, stop := interruptible(c.Context)
			defer stop()
			doc, err := cl.status(ctx)
			if err != nil {
				return failure(err)
			}
			names = expandServices(verb, names, serviceOrder(cfg, doc))
			ok := false
			if c.Bool("no-block") {
				ok = a.ask(ctx, names)
			} else {
				ok, err = a.wait(ctx, doc, names, c.Duration("timeout"))
			}
			if err != nil {
				return failure(err)
			}
			if !ok {
				return silent(ExitFailure)
			}
			return nil
		},
	}
}

// expandServices replaces "all" by every service of order (start order;
// reversed for stop) and drops repeats, keeping the first.
func expandServices(verb string, names, order []string) []string {
	if slices.Contains(names, "all") {
		names = slices.Clone(order)
		if verb == "stop" {
			slices.Reverse(names)
		}
	}
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// actions runs one verb over several services.
type actions struct {
	env  Env
	cl   *client
	verb string
}

// ask posts the verb for each service and prints what the node said; false
// when the node refused any.
func (a *actions) ask(ctx context.Context, names []string) bool {
	ok := true
	for _, n := range names {
		doc, err := a.cl.action(ctx, n, a.verb)
		if err != nil {
			fmt.Fprintf(a.env.Stderr, "macronode: %s %s: %v\n", a.verb, n, err)
			ok = false
			continue
		}
		msg := doc.Status
		if msg == "" {
			msg = a.verb + " requested"
		}
		fmt.Fprintf(a.env.Stdout, "%s: %s\n", n, msg)
	}
	return ok
}

// errNoOutcome is the cause of a wait that reached its --timeout.
var errNoOutcome = errors.New("no outcome in time")

// pending is one service whose outcome is awaited.
type pending struct {
	asked  time.Time // just before the request was sent
	oldPID int       // a ready event from this pid is not the outcome (restart, or start while stopping)
}

// stamped is an event frame and when it arrived.
type stamped struct {
	fr events.Frame
	at time.Time
}

// wait subscribes to the node's events, asks for the verb on each service
// that needs it, and prints each outcome as it happens. It returns false
// when any outcome was not reached within timeout of the requests.
func (a *actions) wait(ctx context.Context, doc *admin.StatusResponse, names []string, timeout time.Duration) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	todo := map[string]*pending{}
	var order []string
	for _, n := range names {
		st, known := doc.Services[n]
		switch {
		case known && a.verb == "start" && st.State == string(supervisor.StateRunning) && st.Ready:
			fmt.Fprintf(a.env.Stdout, "%s: already running (pid %d)\n", n, st.PID)
			continue
		case known && a.verb == "stop" && st.State == string(supervisor.StateStopped):
			fmt.Fprintf(a.env.Stdout, "%s: already stopped\n", n)
			continue
		}
		p := &pending{}
		if a.verb == "restart" || st.State == string(supervisor.StateStopping) {
			p.oldPID = st.PID
		}
		todo[n] = p
		order = append(order, n)
	}
	if len(todo) == 0 {
		return true, nil
	}
	body, err := a.cl.openSSE(ctx, admin.EventsPath, "")
	if err != nil {
		return false, fmt.Errorf("%s: watching events: %w", a.verb, err)
	}
	frames := make(chan stamped)
	streamDone := make(chan error, 1)
	go func() {
		send := func(fr events.Frame) error {
			select {
			case frames <- stamped{fr, time.Now()}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		lastID, err := readSSE(ctx, body, "", true, send)
		if err != nil && ctx.Err() == nil && (errors.Is(err, errStreamEnded) || isNetErr(err)) {
			err = followSSE(ctx, lastID, func(lastID string) (string, error) {
				return a.cl.sse(ctx, admin.EventsPath, lastID, true, send)
			})
		}
		streamDone <- err
	}()
	defer func() { cancel(); <-streamDone }()

	ok := true
	for _, n := range order {
		todo[n].asked = time.Now()
		if _, err := a.cl.action(ctx, n, a.verb); err != nil {
			fmt.Fprintf(a.env.Stdout, "%s: %s refused: %v\n", n, a.verb, err)
			delete(todo, n)
			ok = false
		}
	}
	waitCtx, stopWait := context.WithTimeoutCause(ctx, timeout, errNoOutcome)
	defer stopWait()
	for len(todo) > 0 {
		select {
		case sf := <-frames:
			if sf.fr.Type == events.Gap {
				a.settleFromStatus(ctx, todo) // events were lost: the status says where things are
				continue
			}
			if !a.settle(todo, sf) {
				ok = false
			}
		case err := <-streamDone:
			streamDone <- err // for the deferred receive
			if err == nil {
				err = ctx.Err()
			}
			a.settleFromStatus(context.WithoutCancel(ctx), todo)
			a.giveUp(context.WithoutCancel(ctx), todo, fmt.Sprintf("the event stream ended: %v", err))
			return false, nil
		case <-waitCtx.Done():
			why := "interrupted"
			if errors.Is(context.Cause(waitCtx), errNoOutcome) {
				why = "no outcome after " + timeout.String()
			}
			a.settleFromStatus(context.WithoutCancel(ctx), todo)
			a.giveUp(context.WithoutCancel(ctx), todo, why)
			return false, nil
		}
	}
	return ok, nil
}

// settle applies one event to the awaited services, prints an outcome it
// reaches and drops that service from todo. It returns false when the
// outcome is a failure.
func (a *actions) settle(todo map[string]*pending, sf stamped) bool {
	if sf.fr.Comment != "" || sf.fr.Type == "" {
		return true
	}
	ev, err := sf.fr.Event()
	if err != nil {
		return true // not an event this command reads
	}
	p, ok := todo[ev.Service]
	if !ok {
		return true
	}
	// An event can arrive before this service's own request was sent (it
	// was already on its way up): it is the outcome, with no time to tell.
	timed := func(format string) string {
		if sf.at.Before(p.asked) {
			return ""
		}
		return fmt.Sprintf(format, millis(sf.at.Sub(p.asked)))
	}
	switch {
	case a.verb == "stop" && ev.Type == events.Stopped:
		fmt.Fprintf(a.env.Stdout, "%s: stopped%s\n", ev.Service, timed(" (in %s)"))
	case a.verb != "stop" && ev.Type == events.Ready:
		var r supervisor.ReadyEvent
		if json.Unmarshal(ev.Data, &r) != nil || (p.oldPID != 0 && r.PID == p.oldPID) {
			return true
		}
		fmt.Fprintf(a.env.Stdout, "%s: running (pid %d%s)\n", ev.Service, r.PID, timed(", ready in %s"))
	case a.verb != "stop" && ev.Type == events.Failed:
		var f supervisor.FailedEvent
		_ = json.Unmarshal(ev.Data, &f) // an undecodable body still means failed
		fmt.Fprintf(a.env.Stdout, "%s: failed%s: crash loop (more than %d restarts in %s); next retry in %s\n",
			ev.Service, timed(" after %s"), f.MaxRestarts, seconds(f.WindowSeconds), seconds(f.RetrySeconds))
		delete(todo, ev.Service)
		return false
	default:
		return true
	}
	delete(todo, ev.Service)
	return true
}

// settleFromStatus resolves the awaited services whose outcome the status
// already shows (after lost events, or at the end of the wait).
func (a *actions) settleFromStatus(ctx context.Context, todo map[string]*pending) {
	doc, err := a.cl.status(ctx)
	if err != nil {
		return
	}
	for _, n := range sortedKeys(todo) {
		st, p := doc.Services[n], todo[n]
		switch {
		case a.verb == "stop" && st.State == string(supervisor.StateStopped):
			fmt.Fprintf(a.env.Stdout, "%s: stopped\n", n)
		case a.verb != "stop" && st.State == string(supervisor.StateRunning) && st.Ready && st.PID != p.oldPID:
			fmt.Fprintf(a.env.Stdout, "%s: running (pid %d)\n", n, st.PID)
		default:
			continue
		}
		delete(todo, n)
	}
}

// giveUp prints why each service still awaited has no outcome, with its
// state as the node last reported it.
func (a *actions) giveUp(ctx context.Context, todo map[string]*pending, why string) {
	doc, _ := a.cl.status(ctx)
	for _, n := range sortedKeys(todo) {
		state := "unknown"
		if doc != nil {
			st := doc.Services[n]
			state = dash(st.State)
			if st.LastExit != "" {
				state += ", last exit: " + st.LastExit
			}
		}
		want := "running and ready"
		if a.verb == "stop" {
			want = "stopped"
		}
		fmt.Fprintf(a.env.Stdout, "%s: not %s: %s (state %s)\n", n, want, why, state)
	}
}

func sortedKeys(m map[string]*pending) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// millis renders d in whole milliseconds, e.g. "14 ms".
func millis(d time.Duration) string {
	return fmt.Sprintf("%d ms", d.Milliseconds())
}
