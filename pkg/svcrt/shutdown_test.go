package svcrt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/control"
	"github.com/macronode/macronode/pkg/httpx"
)

// envTestChild makes the test binary run a plane process (TestMain):
//
//	stuck  a plane whose GET /stuck ignores its request context and never
//	       returns; its Close logs "plane closed".
const envTestChild = "MN_SVCRT_TEST_CHILD"

func testChildMain(mode string) int {
	switch mode {
	case "stuck":
		return Main(stuckPlane(nil, nil))
	default:
		fmt.Fprintf(os.Stderr, "unknown %s mode %q\n", envTestChild, mode)
		return ExitUsage
	}
}

// stuckService has a handler that ignores its request context.
type stuckService struct {
	log       hclog.Logger
	mux       *httpx.Mux
	started   chan struct{} // a /stuck request has begun
	release   chan struct{} // lets /stuck return (never closed in a child process)
	closeHang chan struct{} // if not nil, Close blocks until it is closed
	running   atomic.Int32
	closed    atomic.Bool
	closedAt  atomic.Int64 // unix nanoseconds
	busyClose atomic.Bool  // a handler still ran when Close began
}

func newStuckService(log hclog.Logger, closeHang chan struct{}) *stuckService {
	s := &stuckService{log: log, mux: httpx.NewMux(), started: make(chan struct{}, 1),
		release: make(chan struct{}), closeHang: closeHang}
	s.mux.HandleFunc("GET /stuck", func(http.ResponseWriter, *http.Request) {
		s.running.Add(1)
		defer s.running.Add(-1)
		s.log.Info("stuck handler started")
		select {
		case s.started <- struct{}{}:
		default:
		}
		select { // deliberately not r.Context().Done()
		case <-s.release:
		case <-time.After(time.Minute):
		}
	})
	return s
}

func (s *stuckService) Handler() http.Handler { return s.mux }
func (s *stuckService) Ready() error          { return nil }

func (s *stuckService) Close() error {
	s.busyClose.Store(s.running.Load() > 0)
	s.closedAt.Store(time.Now().UnixNano())
	s.closed.Store(true)
	s.log.Info("plane closed")
	if s.closeHang != nil {
		<-s.closeHang
	}
	return nil
}

// stuckPlane builds a stuckService and hands it to got (if not nil).
func stuckPlane(got chan<- *stuckService, closeHang chan struct{}) Plane {
	return Plane{
		Name:        "test",
		DefaultAddr: "127.0.0.1:0",
		Build: func(_ context.Context, env Env) (Service, error) {
			s := newStuckService(env.Logger, closeHang)
			if got != nil {
				got <- s
			}
			return s, nil
		},
	}
}

func TestShutdownBudget(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := []struct {
		grace                      time.Duration
		drain, handlers, closeWait time.Duration
	}{
		// reserve = min(3s, grace/4); handlers <= reserve/3; Close until end - reserve/10.
		{2 * time.Second, 1500 * time.Millisecond, 500 * time.Millisecond / 3, 1950*time.Millisecond - 1500*time.Millisecond},
		{10 * time.Second, 7500 * time.Millisecond, 2500 * time.Millisecond / 3, 9750*time.Millisecond - 7500*time.Millisecond},
		{15 * time.Second, 12 * time.Second, time.Second, 14700*time.Millisecond - 12*time.Second},
		{60 * time.Second, 57 * time.Second, time.Second, 59700*time.Millisecond - 57*time.Second},
		{0, 0, 0, minCloseWait},
		{-time.Second, 0, 0, minCloseWait},
	}
	for _, tc := range tests {
		b := newShutdownBudget(now, tc.grace)
		if got := b.drain(now); got != tc.drain {
			t.Errorf("grace %s: drain %s, want %s", tc.grace, got, tc.drain)
		}
		if got := b.handlerWait(); got != tc.handlers {
			t.Errorf("grace %s: handler wait %s, want %s", tc.grace, got, tc.handlers)
		}
		// Close waits from the moment the handler wait ends at the latest.
		at := now.Add(tc.drain + tc.handlers)
		if got := b.closeWait(at); got != max(tc.closeWait-tc.handlers, minCloseWait) {
			t.Errorf("grace %s: close wait %s, want %s", tc.grace, got, max(tc.closeWait-tc.handlers, minCloseWait))
		}
		if tc.grace > 0 && !b.closeBy().Before(b.end) {
			t.Errorf("grace %s: Close may run until the end of the grace", tc.grace)
		}
		if b.drain(b.end.Add(time.Second)) != 0 {
			t.Errorf("grace %s: negative drain not clamped", tc.grace)
		}
	}
}

// A handler that ignores its context must not push Close past the grace.
func TestStuckHandlerClosesWithinGrace(t *testing.T) {
	got := make(chan *stuckService, 1)
	const grace = 2 * time.Second
	r := startRun(t, stuckPlane(got, nil), []string{"--listen", "127.0.0.1:0", "--shutdown-timeout", grace.String()}, envMap(nil))
	base := "http://" + r.addr(t)
	svc := <-got
	defer close(svc.release)
	reqDone := make(chan struct{})
	go func() {
		defer close(reqDone)
		if resp, err := client.Get(base + "/stuck"); err == nil {
			resp.Body.Close()
		}
	}()
	<-svc.started
	start := time.Now()
	r.cancel()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v; logs:\n%s", err, r.logs.String())
	}
	<-reqDone // the connection was cut
	if !svc.closed.Load() || !svc.busyClose.Load() {
		t.Fatalf("closed %v with handler running %v; want Close while the stuck handler runs", svc.closed.Load(), svc.busyClose.Load())
	}
	if at := time.Unix(0, svc.closedAt.Load()); !at.Before(start.Add(grace)) {
		t.Fatalf("Close ran %s after the stop, past the %s grace", at.Sub(start), grace)
	}
	for _, msg := range []string{"drain grace expired", "they ignored their request context"} {
		if !strings.Contains(r.logs.String(), msg) {
			t.Errorf("no %q log line", msg)
		}
	}
}

// A Close that hangs is abandoned at the end of the grace: Run returns an
// error (exit 1) instead of hanging.
func TestHangingCloseIsBounded(t *testing.T) {
	got := make(chan *stuckService, 1)
	hang := make(chan struct{})
	r := startRun(t, stuckPlane(got, hang), []string{"--listen", "127.0.0.1:0", "--shutdown-timeout", "400ms"}, envMap(nil))
	r.addr(t)
	svc := <-got
	r.cancel()
	err := r.wait(t)
	close(hang) // lets the abandoned Close goroutine end
	if !errors.Is(err, ErrCloseTimeout) || ExitCode(err) != ExitFailure {
		t.Fatalf("Run = %v, want ErrCloseTimeout (exit %d)", err, ExitFailure)
	}
	if !svc.closed.Load() || !strings.Contains(r.logs.String(), "plane did not close in time") {
		t.Fatalf("Close not called or not reported; logs:\n%s", r.logs.String())
	}
}

// waitLine waits until the child logs a line containing msg.
func (c *child) waitLine(t *testing.T, msg string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l := <-c.lines:
			if strings.Contains(l, msg) {
				return
			}
		case <-timeout:
			t.Fatalf("child did not log %q", msg)
		}
	}
}

// The parent's contract as a real process: shutdown{deadline} plus SIGTERM,
// and SIGKILL at the deadline. With a request stuck in a handler that ignores
// its context, the child still closes its plane and exits by itself first.
func TestProcessStuckHandlerExitsBeforeParentKills(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const shutdownTimeout = 3 * time.Second // the parent's, passed on as --shutdown-timeout
	parent := newFakeParent(t)
	c := startChild(t, exe, []string{envTestChild + "=stuck", "GORACE=atexit_sleep_ms=0",
		control.EnvSocket + "=" + parent.sock, control.EnvToken + "=tok", control.EnvService + "=test"},
		"--listen", "127.0.0.1:0", "--amnesia", "--shutdown-timeout", shutdownTimeout.String())
	parent.accept(t)
	if m := parent.next(t); m.Type != control.TypeHello {
		t.Fatalf("want hello, got %+v", m)
	}
	ready := parent.next(t)
	if ready.Type != control.TypeReady {
		t.Fatalf("want ready, got %+v", ready)
	}
	reqDone := make(chan struct{})
	go func() {
		defer close(reqDone)
		if resp, err := client.Get("http://" + ready.Addr + "/stuck"); err == nil {
			resp.Body.Close()
		}
	}()
	c.waitLine(t, "stuck handler started")

	deadline := time.Now().Add(shutdownTimeout)
	parent.send(t, control.Shutdown(deadline))
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var killed atomic.Bool
	kill := time.AfterFunc(time.Until(deadline), func() {
		killed.Store(true)
		_ = c.cmd.Process.Kill()
	})
	defer kill.Stop()

	code := c.exitCode(t)
	<-reqDone
	if killed.Load() || code != ExitOK {
		t.Fatalf("child exit code %d (killed by the parent's deadline: %v), want a clean exit 0 before it", code, killed.Load())
	}
	if !c.logged("plane closed") {
		t.Fatal("the plane's Close never ran")
	}
	if m := parent.next(t); m.Type != control.TypeHealth || m.OK == nil || *m.OK {
		t.Fatalf("want draining health, got %+v", m)
	}
	if m := parent.next(t); m.Type != control.TypeGoodbye {
		t.Fatalf("want goodbye, got %+v", m)
	}
}
