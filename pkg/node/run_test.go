package node

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/supervisor"
)

// running is one node.Run under test, with an injected supervisor and
// signal source.
type running struct {
	sigs  chan os.Signal
	addr  string // the admin plane
	errc  chan error
	sup   *fakeSup
	extra []string // environment of the configuration, for reloads
}

// freePort returns a loopback address the kernel just handed out.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func startRun(t *testing.T, sup *fakeSup, reload func(env []string) (*config.Config, error)) *running {
	t.Helper()
	r := &running{sigs: make(chan os.Signal, 4), addr: freePort(t), errc: make(chan error, 1), sup: sup}
	r.extra = []string{"RON_HTTP_ADDR=" + r.addr, "RON_DATA_DIR=" + t.TempDir(), "RON_SERVICES=storage"}
	opts := Options{
		Config:  load(t, r.extra...),
		Signals: r.sigs,
		NewSupervisor: func(supervisor.Options) (Supervisor, error) {
			return sup, nil
		},
	}
	if reload != nil {
		opts.Reload = func() (*config.Config, error) { return reload(r.extra) }
	}
	go func() { r.errc <- Run(context.Background(), opts) }()
	<-sup.running
	testutil.Eventually(t, 10*time.Second, "admin plane up", func() bool { return r.get("/healthz") == http.StatusOK })
	return r
}

// get returns the status of GET path on the admin plane, 0 if unreachable.
func (r *running) get(path string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + r.addr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.errc:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// SIGTERM drains in order: readiness turns 503 before the supervisor is
// told to stop, the admin plane keeps serving while the children stop,
// and it closes last, after the supervisor has returned.
func TestRunOrderedDrain(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			sup := newFakeSup("storage")
			sup.release = make(chan struct{})
			readyzAtStop := make(chan int, 1)
			var r *running
			sup.onStop = func() { readyzAtStop <- r.get("/readyz") }
			r = startRun(t, sup, nil)
			if code := r.get("/readyz"); code != http.StatusOK {
				t.Fatalf("/readyz %d before the signal, want 200", code)
			}
			r.sigs <- sig
			<-sup.stopped
			if code := <-readyzAtStop; code != http.StatusServiceUnavailable {
				t.Errorf("/readyz %d when the supervisor was told to stop, want 503", code)
			}
			if code := r.get("/healthz"); code != http.StatusOK {
				t.Errorf("/healthz %d while the children stop, want the admin plane still serving", code)
			}
			select {
			case err := <-r.errc:
				t.Fatalf("Run returned (%v) before the supervisor finished", err)
			default:
			}
			close(sup.release)
			if err := r.wait(t); err != nil {
				t.Fatalf("Run = %v, want nil after a clean drain", err)
			}
			if code := r.get("/healthz"); code != 0 {
				t.Errorf("/healthz %d after Run returned, want the admin plane closed", code)
			}
		})
	}
}

// A second SIGINT during the drain exits at once with ErrForced.
func TestRunSecondInterruptForces(t *testing.T) {
	sup := newFakeSup("storage")
	sup.release = make(chan struct{}) // the children never finish stopping
	t.Cleanup(func() { close(sup.release) })
	r := startRun(t, sup, nil)
	r.sigs <- syscall.SIGINT
	<-sup.stopped
	r.sigs <- syscall.SIGINT
	if err := r.wait(t); !errors.Is(err, ErrForced) {
		t.Fatalf("Run = %v, want ErrForced", err)
	}
}

// SIGHUP reloads: the configuration is re-read and a changed log level
// reaches the children through the supervisor.
func TestRunSIGHUPReloads(t *testing.T) {
	sup := newFakeSup("storage")
	reloads := make(chan struct{}, 4)
	r := startRun(t, sup, func(env []string) (*config.Config, error) {
		reloads <- struct{}{}
		return load(t, append(env, "RON_LOG=debug")...), nil
	})
	r.sigs <- syscall.SIGHUP
	<-reloads
	testutil.Eventually(t, 5*time.Second, "log level handed to the children", func() bool {
		return slices.Equal(sup.reloaded(), []string{`{"log_level":"debug"}`})
	})
	r.sigs <- syscall.SIGTERM
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
