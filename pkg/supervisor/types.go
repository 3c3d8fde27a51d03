// Package supervisor runs each service plane as its own OS process: it
// spawns children in their own process group with a parent-death signal,
// holds each plane's listening socket across its children's lives, drains
// their stdout/stderr into raw-byte ring buffers and one batched, tagged
// output (pkg/logging), talks to them over a Unix-socket control channel
// (pkg/control), restarts crashed or hung children with exponential backoff
// and a crash-loop circuit breaker, and stops them in reverse dependency
// order.
//
// The supervisor knows processes, not planes: it never imports pkg/planes.
package supervisor

import (
	"errors"
	"os"
	"time"
)

// State is the lifecycle state of one service.
type State string

// The states of SPEC §6.
const (
	StateStopped   State = "stopped"
	StateStarting  State = "starting"
	StateRunning   State = "running"
	StateUnhealthy State = "unhealthy"
	StateBackoff   State = "backoff"
	StateFailed    State = "failed"
	StateStopping  State = "stopping"
)

// States lists every state, for metrics that export one series per state.
var States = []State{StateStopped, StateStarting, StateRunning, StateUnhealthy, StateBackoff, StateFailed, StateStopping}

// ErrUnknownService is returned by operations naming a service that is not supervised.
var ErrUnknownService = errors.New("unknown service")

// Spec describes one child: how to start it and how to supervise it.
type Spec struct {
	Name   string
	Binary string   // absolute path or a name looked up in $PATH
	Args   []string // arguments, not including argv[0]
	Env    []string // extra KEY=VALUE pairs on top of the parent's environment
	Listen string   // the address the child serves on, for status and metrics scraping
	// HoldListener: the supervisor binds Listen itself (New fails naming
	// the service and address if it cannot), keeps the socket open across
	// the child's restarts and hands it to every child as fd 3 with
	// LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (held.go). Stop, the failed
	// state and the final drain close it; the next spawn binds it again.
	HoldListener bool
	// MetricsAddr is where the parent scrapes the child's /metrics when that
	// is not Listen (the gateway keeps /metrics off its public port).
	MetricsAddr string
	Critical    bool     // counts for the node's readiness
	DependsOn   []string // names started first: this one waits until each is ready, failed, stopped, or past its start_timeout
	// ExtraFiles, when set, is called for every spawn; the child inherits
	// the files it returns as fd 3, 4, ... (exec.Cmd.ExtraFiles), or from
	// fd 4 when HoldListener puts the listener at fd 3, and the
	// supervisor closes its own copies once the child started (or failed
	// to). A secret handed down this way never appears in env or argv.
	ExtraFiles func() ([]*os.File, error)

	Policy           Policy
	StartTimeout     time.Duration // from spawn to ready; default 10s
	HeartbeatTimeout time.Duration // silence after which a child is hung; default 3s
	ShutdownTimeout  time.Duration // grace between SIGTERM and SIGKILL; default 15s
}

// Policy is the restart policy of one service (SPEC §6 Restart).
type Policy struct {
	Initial       time.Duration // first backoff delay; default 100ms
	Max           time.Duration // backoff cap; default 30s
	Multiplier    float64       // default 2
	Randomization float64       // jitter factor; default 0.2
	MaxRestarts   int           // restarts allowed within Window; default 10
	Window        time.Duration // default 60s
	FailedRetry   time.Duration // retry period while failed; default 5m
	StableAfter   time.Duration // ready this long = stable: restart at once, reset backoff; default 5s
}

// Status is a point-in-time view of one service. The admin plane owns its
// wire form (admin.ServiceStatus).
type Status struct {
	Name          string
	State         State
	PID           int
	Restarts      int
	UptimeSeconds float64
	Ready         bool // the child said ready; see IsReady for the rule
	Critical      bool
	Listen        string // the address in force: the held socket's, or the child's own
	// Listener is ListenerHeld or ListenerClosed for a service whose
	// socket the parent holds (Spec.HoldListener), else empty.
	Listener    string
	MetricsAddr string // scrape address when not Listen
	// UpdatePending: Update recorded settings that the next operator
	// restart or start applies.
	UpdatePending bool
	LastExit      string
	LastError     string
	NextRestart   time.Time // when in backoff or failed
	StopDeadline  time.Time // when stopping: the SIGKILL is due then
	BackoffDelay  float64
	Exits         []Exit // the last 5, newest last
}

// IsReady is the readiness rule of one service, the only place it is
// written: the service is running and its child has said ready (and has
// not since reported itself unhealthy). Node readiness (/readyz), the
// ready metric, dependency waits and systemd's STATUS= all use it.
func (st Status) IsReady() bool { return st.State == StateRunning && st.Ready }

// Exit records one death of a child, for crash forensics.
type Exit struct {
	Time          time.Time
	PID           int
	Code          int    // exit status, or 128+signal when killed
	Signal        string // e.g. "killed" when the child died by a signal
	Description   string // e.g. "signal: killed", "exit status 1"
	UptimeSeconds float64
	Reason        string   // why the supervisor killed it, if it did: "heartbeat timeout", ...
	LastLines     []string // last 20 log lines before death
	// CrashBlock is the crash header and first goroutine's stack the child
	// printed (crash.go), nil if it printed none.
	CrashBlock []string
	// OOMKilled: the kernel's OOM killer sent the SIGKILL (oom.go).
	OOMKilled bool

	// What the supervisor decided after this exit: "immediate", "backoff",
	// "failed" (crash-loop breaker open) or "none" (stopped on purpose), and
	// the delay before the next start.
	Restart             string
	RestartDelaySeconds float64
}

// LogLine is one line a child wrote.
type LogLine struct {
	Seq    uint64 // position in the service's log since the parent started, from 1
	Time   time.Time
	Stream string // "stdout" or "stderr"
	Text   string
}
