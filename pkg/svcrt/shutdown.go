package svcrt

import (
	"errors"
	"fmt"
	"time"
)

const (
	// maxCloseReserve caps the part of the shutdown grace kept for closing
	// the plane's stores after in-flight requests were given their chance.
	maxCloseReserve = 3 * time.Second
	// minCloseWait is the least time Service.Close is given, even when the
	// grace is already spent (a shutdown deadline in the past): the parent's
	// SIGKILL may still be a moment away, and a clean close is worth trying.
	minCloseWait = 100 * time.Millisecond
)

// ErrCloseTimeout is wrapped by the error Run returns when Service.Close did
// not finish within what was left of the shutdown grace. The process exits
// anyway, rather than hang past the point where the parent kills it.
var ErrCloseTimeout = errors.New("plane did not close within the shutdown grace")

// shutdownBudget splits one shutdown grace (the parent kills the child when
// it ends) between its phases, so the stores are closed before that moment
// even when a request never finishes:
//
//	|<------------- drain ------------->|<------- reserve ------->|
//	start                            drainEnd    (handlers, Close)  end
//
// The reserve is min(maxCloseReserve, grace/4). Within it the wait for
// handlers (after connections were cut) gets at most a third, and Close runs
// until closeBy, a tenth of the reserve before the end, which leaves time to
// say goodbye and exit.
type shutdownBudget struct {
	end      time.Time
	drainEnd time.Time
	reserve  time.Duration
}

func newShutdownBudget(now time.Time, grace time.Duration) shutdownBudget {
	grace = max(grace, 0)
	reserve := min(maxCloseReserve, grace/4)
	return shutdownBudget{end: now.Add(grace), drainEnd: now.Add(grace - reserve), reserve: reserve}
}

// drain is how long in-flight requests may still run from now.
func (b shutdownBudget) drain(now time.Time) time.Duration { return max(b.drainEnd.Sub(now), 0) }

// handlerWait bounds the wait for handlers after connections were cut.
func (b shutdownBudget) handlerWait() time.Duration { return min(handlerExitGrace, b.reserve/3) }

// closeBy is when Service.Close must have returned.
func (b shutdownBudget) closeBy() time.Time { return b.end.Add(-b.reserve / 10) }

// closeWait is how long Close may run from now.
func (b shutdownBudget) closeWait(now time.Time) time.Duration {
	return max(b.closeBy().Sub(now), minCloseWait)
}

// closePlane runs svc.Close, but waits for it at most until the budget's
// closeBy: a plane whose Close hangs must not keep the process alive past
// its grace. The Close goroutine is left behind in that case; the process is
// about to exit.
func (r *runtime) closePlane(svc Service, b shutdownBudget) error {
	done := make(chan error, 1)
	go func() { done <- svc.Close() }()
	wait := b.closeWait(time.Now())
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		r.log.Error("plane did not close in time; exiting without waiting for it", "waited", wait.String())
		return fmt.Errorf("%w (waited %s)", ErrCloseTimeout, wait)
	}
}
