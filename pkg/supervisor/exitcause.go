package supervisor

import "strings"

// Exit causes, the cause label of macronode_service_exits_total.
const (
	CauseOOM          = "oom"           // the kernel's OOM killer
	CauseHung         = "hung"          // killed: no heartbeat within heartbeat_timeout
	CauseStartTimeout = "start_timeout" // killed: not ready within start_timeout
	CauseFault        = "fault"         // a fault drill (POST .../fault)
	CauseStopped      = "stopped"       // asked to stop: stop, restart, reload, shutdown
	CausePanic        = "panic"         // a Go panic or fatal error (a crash block)
	CauseSignal       = "signal"        // killed by a signal nobody here sent (kill -9)
	CauseError        = "error"         // exited on its own with a non-zero status
	CauseClean        = "clean"         // exited on its own with status 0
)

// exitCause classifies an exit into one of a bounded set of causes, most
// specific first.
func exitCause(e Exit) string {
	switch {
	case e.OOMKilled:
		return CauseOOM
	case e.Reason == "heartbeat timeout":
		return CauseHung
	case e.Reason == "start timeout":
		return CauseStartTimeout
	case strings.HasPrefix(e.Reason, "fault injected"):
		return CauseFault
	case e.Reason != "" || e.Restart == "none":
		return CauseStopped
	case len(e.CrashBlock) > 0:
		return CausePanic
	case e.Signal != "":
		return CauseSignal
	case e.Code != 0:
		return CauseError
	default:
		return CauseClean
	}
}
