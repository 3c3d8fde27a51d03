package supervisor

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/macronode/macronode/pkg/events"
)

// ErrNotRunning is returned by Fault when the service has no live child.
var ErrNotRunning = errors.New("service has no running child")

// FaultKind is a fault that Fault injects into a child (SPEC §5).
type FaultKind string

// The fault kinds: real signals, never simulated.
const (
	FaultKill FaultKind = "kill" // SIGKILL to the child's process group
	FaultTerm FaultKind = "term" // SIGTERM to the child's process group
	FaultStop FaultKind = "stop" // SIGSTOP for a duration, then SIGCONT if it is the same child
)

// The bodies of the events the supervisor publishes (events.Publisher).
type (
	// SpawnedEvent: a child process was started.
	SpawnedEvent struct {
		PID      int `json:"pid"`
		Restarts int `json:"restarts"`
	}
	// ReadyEvent: the child said ready (or healthy again).
	ReadyEvent struct {
		PID  int    `json:"pid"`
		Addr string `json:"addr,omitempty"`
	}
	// UnreadyEvent: readiness dropped while the child may still live.
	UnreadyEvent struct {
		PID    int    `json:"pid"`
		Reason string `json:"reason"`
	}
	// ExitedEvent: the child was reaped. Expected is true when the
	// supervisor was stopping it (operator stop, restart, shutdown).
	ExitedEvent struct {
		PID           int     `json:"pid"`
		Code          int     `json:"code"`
		Signal        string  `json:"signal,omitempty"`
		Description   string  `json:"description"`
		UptimeSeconds float64 `json:"uptime_seconds"`
		Reason        string  `json:"reason,omitempty"`
		Restart       string  `json:"restart"`
		Expected      bool    `json:"expected"`
	}
	// BackoffEvent: the next start waits DelaySeconds.
	BackoffEvent struct {
		DelaySeconds float64 `json:"delay_seconds"`
	}
	// FailedEvent: the crash-loop breaker opened.
	FailedEvent struct {
		RetrySeconds  float64 `json:"retry_seconds"`
		MaxRestarts   int     `json:"max_restarts"`
		WindowSeconds float64 `json:"window_seconds"`
	}
	// CommandEvent: an operator command was taken (started, stopped).
	CommandEvent struct {
		Command string `json:"command"`
	}
	// FaultEvent: a fault was injected into the child PID.
	FaultEvent struct {
		Kind            FaultKind `json:"kind"`
		PID             int       `json:"pid"`
		DurationSeconds float64   `json:"duration_seconds,omitempty"`
	}
)

// emit publishes an event of this service, if the supervisor has a publisher.
func (v *service) emit(typ string, data any) {
	if p := v.sup.opts.Events; p != nil {
		p.Publish(typ, v.spec.Name, data)
	}
}

// ParseFaultKind maps a fault name to its kind; an unknown name is an error,
// never a default.
func ParseFaultKind(s string) (FaultKind, error) {
	switch k := FaultKind(s); k {
	case FaultKill, FaultTerm, FaultStop:
		return k, nil
	}
	return "", fmt.Errorf("unknown fault kind %q (want kill, term or stop)", s)
}

// Fault injects a real fault into the service's live child and returns its
// pid: kill and term signal the child's process group; stop sends SIGSTOP
// to the group and, after d, SIGCONT if the same child is still there
// (liveness may have replaced it meanwhile). The supervisor then handles the
// child as it would any other: the exit goes through the restart policy.
func (s *Supervisor) Fault(name string, kind FaultKind, d time.Duration) (int, error) {
	v, err := s.lookup(name)
	if err != nil {
		return 0, err
	}
	if s.shutting.Load() {
		return 0, ErrShuttingDown
	}
	if kind == FaultStop && d <= 0 {
		return 0, errors.New("fault stop needs a positive duration")
	}
	p := v.current()
	pid, ok := 0, false
	if p != nil {
		pid, ok = p.knownPID()
	}
	if !ok || pid == 0 {
		return 0, fmt.Errorf("fault %s %s: %w", kind, name, ErrNotRunning)
	}
	sig := map[FaultKind]syscall.Signal{FaultKill: syscall.SIGKILL, FaultTerm: syscall.SIGTERM, FaultStop: syscall.SIGSTOP}[kind]
	if sig == 0 {
		return 0, fmt.Errorf("fault %s: unknown kind", kind)
	}
	p.setReason("fault injected: " + string(kind))
	v.emit(events.Fault, FaultEvent{Kind: kind, PID: pid, DurationSeconds: d.Seconds()})
	v.log.Warn("injecting fault", "kind", string(kind), "pid", pid, "duration", d.String())
	if err := p.signalGroup(sig); err != nil {
		return 0, fmt.Errorf("fault %s %s: %w", kind, name, err)
	}
	if kind == FaultStop {
		time.AfterFunc(d, func() {
			if v.current() != p {
				return // replaced: the stopped one was killed and reaped
			}
			if err := p.signalGroup(syscall.SIGCONT); err != nil {
				v.log.Warn("SIGCONT after fault stop failed", "pid", pid, "error", err)
			}
		})
	}
	return pid, nil
}

// updateReady is update for a change that may flip readiness: it emits
// ready (with the listen address) or unready (with why) when it does.
func (v *service) updateReady(pid int, why string, f func(st *Status)) {
	var before, after bool
	var addr string
	v.update(func(st *Status) {
		before = st.Ready
		f(st)
		after, addr = st.Ready, st.Listen
	})
	switch {
	case !before && after:
		v.emit(events.Ready, ReadyEvent{PID: pid, Addr: addr})
	case before && !after:
		v.emit(events.Unready, UnreadyEvent{PID: pid, Reason: why})
	}
}
