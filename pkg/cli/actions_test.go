package cli

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/events"
	"github.com/macronode/macronode/pkg/supervisor"
)

// scriptNode is a real admin plane over a fake supervisor whose services
// answer commands by script, as events on a real bus 10ms later: "ok"
// comes up with a new pid, "crash" opens the breaker, "hang" never comes
// up, "refuse" refuses the command, "none" takes it and does nothing.
type scriptNode struct {
	bus    *events.Bus
	mu     sync.Mutex
	st     map[string]*supervisor.Status
	script map[string]string
	calls  []string
	timers sync.WaitGroup
	// onCommand, if set, runs as a command is taken (under mu).
	onCommand func(verb, name string)
	addr      string
}

func newScriptNode(t *testing.T, script map[string]string, st ...supervisor.Status) *scriptNode {
	t.Helper()
	bus, l := newBusAndAudit(t, "beef")
	n := &scriptNode{bus: bus, st: map[string]*supervisor.Status{}, script: script}
	var names []string
	for i := range st {
		n.st[st[i].Name] = &st[i]
		names = append(names, st[i].Name)
	}
	t.Cleanup(n.timers.Wait) // before the bus closes (cleanups run last first)
	n.addr = serveAdmin(t, admin.Options{Services: n, Events: bus, Audit: l}, names...)
	return n
}

func (n *scriptNode) Snapshot() []supervisor.Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []supervisor.Status
	for _, name := range []string{"storage", "index", "mailbox", "overlay", "dht", "gateway"} {
		if st, ok := n.st[name]; ok {
			out = append(out, *st)
		}
	}
	return out
}

func (n *scriptNode) Restart(name string) error { return n.command("restart", name) }
func (n *scriptNode) Start(name string) error   { return n.command("start", name) }
func (n *scriptNode) Stop(name string) error    { return n.command("stop", name) }
func (n *scriptNode) Logs(string, int) ([]supervisor.LogLine, error) {
	return nil, nil
}

func (n *scriptNode) command(verb, name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	st, ok := n.st[name]
	if !ok {
		return supervisor.ErrUnknownService
	}
	n.calls = append(n.calls, verb+" "+name)
	if n.onCommand != nil {
		n.onCommand(verb, name)
	}
	script := n.script[name]
	switch script {
	case "refuse":
		return errors.New("not now")
	case "none":
		return nil
	}
	old := st.PID
	n.timers.Add(1)
	time.AfterFunc(10*time.Millisecond, func() {
		defer n.timers.Done()
		n.mu.Lock()
		defer n.mu.Unlock()
		if verb == "stop" {
			st.State, st.PID, st.Ready = supervisor.StateStopped, 0, false
			n.bus.Publish(events.Stopped, name, nil)
			return
		}
		if old != 0 {
			n.bus.Publish(events.Ready, name, supervisor.ReadyEvent{PID: old}) // the old child: not the outcome
			n.bus.Publish(events.Exited, name, supervisor.ExitedEvent{PID: old, Expected: true})
		}
		switch script {
		case "ok":
			st.State, st.PID, st.Ready = supervisor.StateRunning, old+1000, true
			n.bus.Publish(events.Ready, "other", supervisor.ReadyEvent{PID: 1}) // another service
			n.bus.Publish(events.Spawned, name, supervisor.SpawnedEvent{PID: st.PID})
			n.bus.Publish(events.Ready, name, supervisor.ReadyEvent{PID: st.PID})
		case "crash":
			st.State, st.PID, st.Ready = supervisor.StateFailed, 0, false
			n.bus.Publish(events.Failed, name, supervisor.FailedEvent{RetrySeconds: 300, MaxRestarts: 10, WindowSeconds: 60})
		case "hang":
			st.State, st.PID, st.Ready = supervisor.StateBackoff, 0, false
			st.LastExit = "exit status 2"
		}
	})
	return nil
}

func (n *scriptNode) run(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, []string{"RON_HTTP_ADDR=" + n.addr}, args...)
}

func (n *scriptNode) commands() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.calls, ",")
}

func running(name string, pid int) supervisor.Status {
	return supervisor.Status{Name: name, State: supervisor.StateRunning, PID: pid, Ready: true}
}

func TestActionsWait(t *testing.T) {
	t.Parallel()
	stopped := supervisor.Status{Name: "index", State: supervisor.StateStopped}
	tests := []struct {
		name   string
		script map[string]string
		st     []supervisor.Status
		args   []string
		code   int
		out    []string // each a regexp, in order, one per line
		calls  string
	}{
		{"restart waits for the new pid", map[string]string{"storage": "ok"}, []supervisor.Status{running("storage", 7)},
			[]string{"restart", "storage"}, ExitOK, []string{`^storage: running \(pid 1007, ready in \d+ ms\)$`}, "restart storage"},
		{"start of a running service", nil, []supervisor.Status{running("storage", 7)},
			[]string{"start", "storage"}, ExitOK, []string{`^storage: already running \(pid 7\)$`}, ""},
		{"stop of a stopped service", nil, []supervisor.Status{stopped},
			[]string{"stop", "index"}, ExitOK, []string{`^index: already stopped$`}, ""},
		{"start of a stopped service", map[string]string{"index": "ok"}, []supervisor.Status{stopped},
			[]string{"start", "index"}, ExitOK, []string{`^index: running \(pid 1000, ready in \d+ ms\)$`}, "start index"},
		{"stop", nil, []supervisor.Status{running("storage", 7)},
			[]string{"stop", "storage"}, ExitOK, []string{`^storage: stopped \(in \d+ ms\)$`}, "stop storage"},
		{"crash loop", map[string]string{"storage": "crash"}, []supervisor.Status{running("storage", 7)},
			[]string{"restart", "storage"}, ExitFailure,
			[]string{`^storage: failed after \d+ ms: crash loop \(more than 10 restarts in 1m0s\); next retry in 5m0s$`}, "restart storage"},
		{"timeout", map[string]string{"storage": "hang"}, []supervisor.Status{running("storage", 7)},
			[]string{"restart", "storage", "--timeout", "300ms"}, ExitFailure,
			[]string{`^storage: not running and ready: no outcome after 300ms \(state backoff, last exit: exit status 2\)$`}, "restart storage"},
		{"refused", map[string]string{"storage": "refuse"}, []supervisor.Status{running("storage", 7)},
			[]string{"restart", "storage"}, ExitFailure, []string{`^storage: restart refused: restart storage: not now \(conflict, HTTP 409\)$`}, "restart storage"},
		{"all in start order", map[string]string{"storage": "ok", "gateway": "ok"},
			[]supervisor.Status{running("storage", 7), running("gateway", 9)},
			[]string{"restart", "all"}, ExitOK, []string{`^(storage|gateway): running`, `^(storage|gateway): running`}, "restart storage,restart gateway"},
		{"stop all in reverse order", nil, []supervisor.Status{running("storage", 7), running("gateway", 9)},
			[]string{"stop", "all"}, ExitOK, []string{`^(storage|gateway): stopped`, `^(storage|gateway): stopped`}, "stop gateway,stop storage"},
		{"several, one fails", map[string]string{"storage": "ok", "index": "crash"},
			[]supervisor.Status{running("storage", 7), running("index", 8)},
			[]string{"restart", "index", "storage", "index"}, ExitFailure, []string{`^(storage: running|index: failed)`, `^(storage: running|index: failed)`},
			"restart index,restart storage"},
		{"no-block", nil, []supervisor.Status{running("storage", 7)},
			[]string{"restart", "storage", "--no-block"}, ExitOK, []string{`^storage: restart scheduled$`}, "restart storage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := newScriptNode(t, tc.script, tc.st...)
			r := n.run(t, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if len(lines) != len(tc.out) {
				t.Fatalf("stdout:\n%s\nwant %d lines", r.stdout, len(tc.out))
			}
			for i, re := range tc.out {
				if !regexp.MustCompile(re).MatchString(lines[i]) {
					t.Errorf("line %d %q does not match %s", i, lines[i], re)
				}
			}
			if got := n.commands(); got != tc.calls {
				t.Errorf("commands %q, want %q", got, tc.calls)
			}
		})
	}
}

func TestActionsUsage(t *testing.T) {
	t.Parallel()
	n := newScriptNode(t, nil, running("storage", 7))
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"restart"}, "restart needs SERVICE... or all (services: storage, index, mailbox, overlay, dht, gateway)"},
		{[]string{"restart", "storag"}, `unknown service "storag"; did you mean "storage"? (services: storage, index, mailbox, overlay, dht, gateway, all)`},
		{[]string{"stop", "storage", "gatway"}, `did you mean "gateway"?`},
		{[]string{"start", "al"}, `did you mean "all"?`},
		{[]string{"start", "storage", "--timeout", "0s"}, "--timeout must be positive"},
	}
	for _, tc := range tests {
		r := n.run(t, tc.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, r.code, r.stderr, tc.stderr)
		}
	}
	if got := n.commands(); got != "" {
		t.Errorf("usage errors asked the node: %q", got)
	}
}

func TestActionsInterrupted(t *testing.T) {
	t.Parallel()
	n := newScriptNode(t, map[string]string{"storage": "hang"}, running("storage", 7))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r := runCtx(t, ctx, Env{}, []string{"RON_HTTP_ADDR=" + n.addr}, "restart", "storage")
	if r.code != ExitFailure || !strings.Contains(r.stdout, "storage: not running and ready: interrupted (state backoff") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// A service already on its way up when its own request is sent: the ready
// event is its outcome, printed without a time when it arrived before the
// request was sent (never a negative one).
func TestActionsOutcomeBeforeRequest(t *testing.T) {
	t.Parallel()
	n := newScriptNode(t, map[string]string{"storage": "ok", "index": "none"}, supervisor.Status{Name: "storage", State: supervisor.StateStopped},
		supervisor.Status{Name: "index", State: supervisor.StateStarting, PID: 5})
	n.onCommand = func(verb, name string) {
		if name == "storage" { // index comes up while storage is being asked
			n.bus.Publish(events.Ready, "index", supervisor.ReadyEvent{PID: 5})
		}
	}
	r := n.run(t, "start", "storage", "index")
	if r.code != ExitOK || !regexp.MustCompile(`storage: running \(pid 1000, ready in \d+ ms\)\n`).MatchString(r.stdout) || !regexp.MustCompile(`index: running \(pid 5(, ready in \d+ ms)?\)\n`).MatchString(r.stdout) {
		t.Errorf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
}
