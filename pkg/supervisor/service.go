package supervisor

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/control"
)

// killGrace is how long the service goroutine waits for a SIGKILLed child
// to be reaped before it logs that something is badly wrong.
const killGrace = 5 * time.Second

// maxQueuedCommands bounds operator commands waiting for the service goroutine.
const maxQueuedCommands = 32

type command int

const (
	cmdStart command = iota + 1
	cmdStop
	cmdRestart
	cmdShutdown
	cmdProbe // answered at once: the loop is alive (probe.go)
)

type spawnKind int

const (
	spawnFirst  spawnKind = iota + 1 // first start after its dependencies are ready
	spawnAuto                        // restart by policy (counts as a restart)
	spawnManual                      // operator Restart (counts as a restart)
	spawnStart                       // operator Start
)

type eventKind int

const (
	evHello eventKind = iota + 1
	evReady
	evHealth
	evHeartbeat
	evGoodbye
	evClosed
)

// event is something a child said (or the end of its control connection).
type event struct {
	p    *proc
	kind eventKind
	msg  control.Message
}

// service is one supervised child. Its goroutine (loop) owns every decision
// about the child; other goroutines talk to it through events and commands
// and read its status under mu.
type service struct {
	sup  *Supervisor
	spec Spec
	deps []*service
	log  hclog.Logger
	sink *logSink

	events   chan event
	cmdKick  chan struct{}
	loopDone chan struct{}

	cmdMu   sync.Mutex
	cmds    []command
	probeCh chan struct{} // closed by the loop when it takes the queued cmdProbe
	stopBy  time.Time     // the final stop's SIGKILL deadline (drain.go)

	mu        sync.Mutex
	st        Status
	cur       *proc    // the child, registered before exec; nil between children
	opStopped bool     // stopped by the operator (Stop) and not started since
	next      *Spec    // settings for the next operator start or restart (Update)
	with      []string // services restarted with this one's next Restart (Update)

	held *heldListener // the parent's copy of the socket (Spec.HoldListener)
}

// enqueue schedules a command for the service goroutine without waiting.
func (v *service) enqueue(c command) error {
	v.cmdMu.Lock()
	if c != cmdShutdown && len(v.cmds) >= maxQueuedCommands {
		v.cmdMu.Unlock()
		return fmt.Errorf("%s: too many pending commands", v.spec.Name)
	}
	v.cmds = append(v.cmds, c)
	v.cmdMu.Unlock()
	select {
	case v.cmdKick <- struct{}{}:
	default:
	}
	return nil
}

func (v *service) takeCommands() []command {
	v.cmdMu.Lock()
	defer v.cmdMu.Unlock()
	cmds := v.cmds
	v.cmds = nil
	return cmds
}

// post hands an event to the service goroutine, unless the supervisor is gone.
func (v *service) post(ev event, closed <-chan struct{}) bool {
	select {
	case v.events <- ev:
		return true
	case <-closed:
		return false
	}
}

// current returns the live child, if any.
func (v *service) current() *proc {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.cur
}

// update mutates the status under the lock, then announces the change.
func (v *service) update(f func(st *Status)) {
	v.mu.Lock()
	f(&v.st)
	v.mu.Unlock()
	v.sup.notify()
}

// status returns a deep copy of the status.
func (v *service) status() Status {
	v.mu.Lock()
	st := v.st
	p := v.cur
	v.mu.Unlock()
	st.Name = v.spec.Name
	if p != nil && st.PID != 0 {
		st.UptimeSeconds = time.Since(p.started).Seconds()
	}
	st.Exits = slices.Clone(st.Exits)
	for i := range st.Exits {
		st.Exits[i].LastLines = slices.Clone(st.Exits[i].LastLines)
		st.Exits[i].CrashBlock = slices.Clone(st.Exits[i].CrashBlock)
	}
	return st
}

// setOpStopped records whether the operator stopped the service; a change
// wakes dependents waiting for it.
func (v *service) setOpStopped(stopped bool) {
	v.mu.Lock()
	changed := v.opStopped != stopped
	v.opStopped = stopped
	v.mu.Unlock()
	if changed {
		v.sup.notify()
	}
}

// inheritedEnv is the allow-list of the parent's environment a child
// inherits (SPEC §7): nothing else passes, so the parent's secrets
// (RON_ADMIN_TOKEN, MACRO_ADMIN_TOKEN, RON_ADMIN_TOKEN_FILE,
// CREDENTIALS_DIRECTORY, ...) and what systemd addresses to the parent alone
// (NOTIFY_SOCKET, WATCHDOG_*, LISTEN_FDS) stay in the parent. A child gets:
//
//   - PATH, TZ, LANG and every LC_* variable;
//   - the Go runtime's tuning: GOMAXPROCS, GOGC, GOMEMLIMIT, GODEBUG, GOTRACEBACK;
//   - the MACRONODE_* variables, except the control-channel ones
//     (control.EnvSocket, control.EnvService, control.EnvToken), which env
//     sets per spawn;
//   - then its own Spec.Env (services.<plane>.env).
var inheritedEnv = []string{"PATH", "TZ", "LANG", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG", "GOTRACEBACK"}

// inheritable reports whether the parent's KEY=VALUE may pass to a child.
func inheritable(kv string) bool {
	key, _, ok := strings.Cut(kv, "=")
	switch {
	case !ok:
		return false
	case key == control.EnvSocket, key == control.EnvService, key == control.EnvToken:
		return false // stale control variables: env sets them per spawn
	case strings.HasPrefix(key, "MACRONODE_"), strings.HasPrefix(key, "LC_"):
		return true
	}
	return slices.Contains(inheritedEnv, key)
}

// env is the child's environment: the inheritable part of the parent's,
// then Spec.Env, then the control-channel variables.
func (v *service) env(token string) []string {
	env := childEnv(os.Environ(), v.spec.Env, v.sup.sockPath, v.spec.Name, token)
	if v.held != nil {
		env = append(env, listenEnv(v.spec.Name)...)
	}
	return env
}

func childEnv(parent, own []string, sock, name, token string) []string {
	env := make([]string, 0, len(inheritedEnv)+len(own)+3)
	for _, kv := range parent {
		if inheritable(kv) {
			env = append(env, kv)
		}
	}
	env = append(env, own...)
	return append(env,
		control.EnvSocket+"="+sock,
		control.EnvService+"="+name,
		control.EnvToken+"="+token,
	)
}
