package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/events"
)

// round is one measured fault: times since the fault event.
type round struct {
	oldPID, newPID     int
	exit, spawn, ready time.Duration
}

func chaosCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "chaos",
		Usage:     "inject real faults into a service and print how fast it recovers",
		UsageText: "macronode chaos SERVICE [--kind kill|term|stop] [--count N] [--interval D] [--duration D] [--timeout D]",
		Description: "Runs the operator's drill: each round sends a real fault to the service's child\n" +
			"(POST /api/v1/services/SERVICE/fault: kill is SIGKILL to its process group, term\n" +
			"SIGTERM, stop SIGSTOP for --duration) and reads the events stream for fault ->\n" +
			"exit noticed -> new pid -> ready, in ms, then prints the median and the maximum\n" +
			"time to ready. Every fault is in the node's audit log.\n\n" +
			"Example:\n   macronode chaos storage --count 3\n" +
			"   round 1: pid 4123 -> 4188  exit 2ms  spawned 3ms  ready 41ms\n" +
			"   ...\n   fault -> ready over 3 rounds: median 40ms, max 44ms",
		Flags: clientFlags(
			&ucli.StringFlag{Name: "kind", Value: "kill", Usage: "fault `KIND`: kill, term or stop"},
			&ucli.IntFlag{Name: "count", Value: 1, Usage: "`N` rounds"},
			&ucli.DurationFlag{Name: "interval", Value: time.Second, Usage: "pause `D` after a recovery before the next round"},
			&ucli.DurationFlag{Name: "duration", Usage: "how long a stop fault freezes the child (`D`; default the node's, 5s)"},
			&ucli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "give up on a round that has not recovered after `D`"},
		),
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return usageErr("chaos needs exactly one SERVICE")
			}
			if err := checkServices(c.Args().Slice(), false); err != nil {
				return err
			}
			req := admin.FaultRequest{Kind: c.String("kind")}
			if d := c.Duration("duration"); d != 0 {
				req.Duration = d.String()
			}
			body, _ := json.Marshal(req) // a struct of strings always encodes
			if _, _, err := admin.ParseFaultRequest(body); err != nil {
				return usageErr("%v", err)
			}
			if c.Int("count") < 1 || c.Duration("interval") < 0 || c.Duration("timeout") <= 0 {
				return usageErr("--count must be at least 1, --interval not negative, --timeout positive")
			}
			cl, _, err := connect(c, env)
			if err != nil {
				return err
			}
			defer cl.close()
			ctx, stop := interruptible(c.Context)
			defer stop()
			d := &drill{env: env, cl: cl, name: c.Args().First(), body: body, timeout: c.Duration("timeout"), changed: make(chan struct{}, 1)}
			if err := d.run(ctx, c.Int("count"), c.Duration("interval")); err != nil {
				return failure(err)
			}
			return nil
		},
	}
}

// drill follows the service's events while it injects faults.
type drill struct {
	env     Env
	cl      *client
	name    string
	body    []byte
	timeout time.Duration

	mu      sync.Mutex
	evs     []events.Event // the service's events, the ring's history first
	err     error          // the stream's end
	changed chan struct{}
}

func (d *drill) run(ctx context.Context, count int, interval time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := d.cl.followEvents(ctx, "", true, d.collect)
		d.mu.Lock()
		d.err = fmt.Errorf("event stream: %w", err)
		if err == nil {
			d.err = fmt.Errorf("event stream ended: %w", context.Cause(ctx))
		}
		d.mu.Unlock()
		d.kick()
	}()
	var readies []time.Duration
	for i := 1; i <= count; i++ {
		r, err := d.round(ctx)
		if err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		fmt.Fprintf(d.env.Stdout, "round %d: pid %d -> %d  exit %s  spawned %s  ready %s\n", i, r.oldPID, r.newPID, ms(r.exit), ms(r.spawn), ms(r.ready))
		readies = append(readies, r.ready)
		if i < count && interval > 0 {
			t := time.NewTimer(interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	fmt.Fprintf(d.env.Stdout, "fault -> ready over %d rounds: median %s, max %s\n", len(readies), ms(median(readies)), ms(slices.Max(readies)))
	return nil
}

func (d *drill) collect(fr events.Frame) error {
	if fr.Comment != "" || fr.Type == events.Gap {
		return nil
	}
	ev, err := fr.Event()
	if err != nil || ev.Service != d.name {
		return nil //nolint:nilerr // a frame that is not this service's event is skipped
	}
	d.mu.Lock()
	d.evs = append(d.evs, ev)
	d.mu.Unlock()
	d.kick()
	return nil
}

func (d *drill) kick() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// round injects one fault and waits for its recovery in the events.
func (d *drill) round(ctx context.Context) (round, error) {
	var resp admin.FaultResponse
	path := "/api/v1/services/" + url.PathEscape(d.name) + "/fault"
	if err := d.cl.doBody(ctx, http.MethodPost, path, d.body, &resp); err != nil {
		return round{}, err
	}
	deadline := time.NewTimer(d.timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		r, ok := recovery(d.evs, resp.PID)
		streamErr := d.err
		d.mu.Unlock()
		if ok {
			return r, nil
		}
		if streamErr != nil {
			return round{}, streamErr
		}
		select {
		case <-d.changed:
		case <-ctx.Done():
			return round{}, ctx.Err()
		case <-deadline.C:
			return round{}, fmt.Errorf("no recovery of pid %d within %s", resp.PID, d.timeout)
		}
	}
}

// recovery finds, in one service's events, the fault on pid, its exit,
// the next spawn and that child's ready, and measures them from the fault.
func recovery(evs []events.Event, pid int) (round, bool) {
	var pidOf struct {
		PID int `json:"pid"`
	}
	stage := 0
	var r round
	var t0 time.Time
	for _, ev := range evs {
		pidOf.PID = 0
		_ = json.Unmarshal(ev.Data, &pidOf) // an event without a pid matches no stage
		switch {
		case stage == 0 && ev.Type == events.Fault && pidOf.PID == pid:
			t0, r.oldPID, stage = ev.Time, pid, 1
		case stage == 1 && ev.Type == events.Exited && pidOf.PID == pid:
			r.exit, stage = ev.Time.Sub(t0), 2
		case stage == 2 && ev.Type == events.Spawned:
			r.spawn, r.newPID, stage = ev.Time.Sub(t0), pidOf.PID, 3
		case stage == 3 && ev.Type == events.Ready && pidOf.PID == r.newPID:
			r.ready = ev.Time.Sub(t0)
			return r, true
		}
	}
	return r, false
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%dms", d.Round(time.Millisecond).Milliseconds())
}

// doBody is do with a JSON request body.
func (cl *client) doBody(ctx context.Context, method, path string, body []byte, out any) error {
	return cl.doReader(ctx, method, path, bytes.NewReader(body), out)
}
