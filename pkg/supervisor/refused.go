package supervisor

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Why a control connection was refused: the reason label of
// macronode_control_refused_total.
const (
	reasonBusy      = "busy"            // too many connections awaiting hello
	reasonMalformed = "malformed"       // no hello, or a malformed one
	reasonPeer      = "peer"            // SO_PEERCRED: another uid, or not the child's pid
	reasonToken     = "token"           // wrong per-spawn token
	reasonUnknown   = "unknown_service" // hello for a service that is not supervised
	reasonNoChild   = "no_child"        // the service has no child to bind to
	reasonDuplicate = "duplicate"       // the child already has a control connection
)

// refusalReasons lists every reason, so each series exists from the start.
var refusalReasons = []string{reasonBusy, reasonMalformed, reasonPeer, reasonToken, reasonUnknown, reasonNoChild, reasonDuplicate}

// Refusal warnings are rate-limited: a peer hammering the socket must not
// flood the parent's log. The counter counts every refusal.
const (
	refusalLogRate  = rate.Limit(1) // warnings per second, once the burst is spent
	refusalLogBurst = 5
)

// refusal is a handshake error with the reason it is counted under.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuse(reason string, err error) error { return &refusal{reason: reason, err: err} }

// refusalLog decides which refusals are logged; it remembers how many were
// not, so the next logged one can say so.
type refusalLog struct {
	mu         sync.Mutex
	lim        *rate.Limiter
	suppressed int
}

func newRefusalLog() *refusalLog {
	return &refusalLog{lim: rate.NewLimiter(refusalLogRate, refusalLogBurst)}
}

// allow reports whether a refusal at now is logged and, if so, how many
// refusals went unlogged since the last logged one.
func (l *refusalLog) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lim.AllowN(now, 1) {
		l.suppressed++
		return false, 0
	}
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// refused counts a refused control connection and logs it, rate-limited.
func (s *Supervisor) refused(err error) {
	reason := reasonMalformed
	var r *refusal
	if errors.As(err, &r) {
		reason = r.reason
	}
	s.metrics.refused.WithLabelValues(reason).Inc()
	ok, suppressed := s.refusals.allow(time.Now())
	if !ok {
		return
	}
	args := []any{"reason", reason, "error", err}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	s.log.Warn("control: connection refused", args...)
}

func newRefusedCounter() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "macronode_control_refused_total",
		Help: "Control-socket connections refused (bad peer credentials, token or hello), by reason.",
	}, []string{"reason"})
	for _, r := range refusalReasons {
		c.WithLabelValues(r)
	}
	return c
}
