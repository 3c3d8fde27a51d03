package svcrt

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/control"
)

// fakeParent is the parent's end of the control channel, for tests.
type fakeParent struct {
	sock   string
	ln     *net.UnixListener
	conn   net.Conn
	enc    *control.Encoder
	msgs   chan control.Message
	readDn chan struct{}
}

func newFakeParent(t *testing.T) *fakeParent {
	t.Helper()
	dir, err := os.MkdirTemp("", "mn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "control.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeParent{sock: sock, ln: ln, msgs: make(chan control.Message, 256), readDn: make(chan struct{})}
	t.Cleanup(func() {
		_ = ln.Close()
		if p.conn != nil {
			_ = p.conn.Close()
			<-p.readDn
		}
	})
	return p
}

func (p *fakeParent) env(token string) func(string) string {
	return envMap(map[string]string{control.EnvSocket: p.sock, control.EnvToken: token, control.EnvService: "test"})
}

// accept takes the child's connection and starts reading its messages.
func (p *fakeParent) accept(t *testing.T) {
	t.Helper()
	if err := p.ln.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	conn, err := p.ln.Accept()
	if err != nil {
		t.Fatalf("accept child: %v", err)
	}
	p.conn = conn
	p.enc = control.NewEncoder(conn)
	go func() {
		defer close(p.readDn)
		defer close(p.msgs)
		dec := control.NewDecoder(conn)
		for {
			m, err := dec.Next()
			if err != nil {
				return
			}
			p.msgs <- m
		}
	}()
}

// next returns the next message that is not a heartbeat.
func (p *fakeParent) next(t *testing.T) control.Message {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				t.Fatal("child closed the control connection")
			}
			if m.Type != control.TypeHeartbeat {
				return m
			}
		case <-timeout:
			t.Fatal("no control message from child")
		}
	}
}

// heartbeat waits for a heartbeat, skipping nothing else silently.
func (p *fakeParent) heartbeat(t *testing.T) {
	t.Helper()
	select {
	case m, ok := <-p.msgs:
		if !ok || m.Type != control.TypeHeartbeat {
			t.Fatalf("want heartbeat, got %+v (open %v)", m, ok)
		}
	case <-time.After(3 * control.HeartbeatInterval):
		t.Fatal("no heartbeat within 3 intervals")
	}
}

func (p *fakeParent) send(t *testing.T, m control.Message) {
	t.Helper()
	if err := p.enc.Send(m); err != nil {
		t.Fatal(err)
	}
}

func TestSupervisedLifecycle(t *testing.T) {
	parent := newFakeParent(t)
	got := make(chan *testService, 1)
	r := startRun(t, testPlane(got, nil), []string{"--listen", "127.0.0.1:0"}, parent.env("tok-123"))
	parent.accept(t)

	hello := parent.next(t)
	if hello.Type != control.TypeHello || hello.Token != "tok-123" || hello.PID != os.Getpid() ||
		hello.Protocol != control.ProtocolVersion || hello.Service != "test" || hello.Version == "" {
		t.Fatalf("hello = %+v", hello)
	}
	ready := parent.next(t)
	if ready.Type != control.TypeReady || strings.HasSuffix(ready.Addr, ":0") {
		t.Fatalf("ready = %+v", ready)
	}
	if logged := r.addr(t); logged != ready.Addr {
		t.Fatalf("ready addr %s, logged %s", ready.Addr, logged)
	}
	if code, _, body := get(t, "http://"+ready.Addr+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz at ready addr = %d %s", code, body)
	}
	parent.heartbeat(t)
	parent.heartbeat(t)

	// Reload is logged.
	parent.send(t, control.Reload([]byte(`{"x":1}`)))
	eventually(t, 5*time.Second, "reload log", func() bool { return strings.Contains(r.logs.String(), "reload requested") })

	// Readiness changes are reported as health.
	svc := <-got
	svc.setReady(errors.New("disk full"))
	if m := parent.next(t); m.Type != control.TypeHealth || m.OK == nil || *m.OK || m.Detail != "disk full" {
		t.Fatalf("health = %+v", m)
	}
	svc.setReady(nil)
	if m := parent.next(t); m.Type != control.TypeHealth || m.OK == nil || !*m.OK {
		t.Fatalf("health = %+v", m)
	}

	parent.send(t, control.Shutdown(time.Now().Add(5*time.Second)))
	if err := r.wait(t); err != nil {
		t.Fatalf("Run after shutdown = %v; logs:\n%s", err, r.logs.String())
	}
	if m := parent.next(t); m.Type != control.TypeHealth || *m.OK {
		t.Fatalf("want draining health, got %+v", m)
	}
	if m := parent.next(t); m.Type != control.TypeGoodbye || m.Reason != "shutdown requested by parent" {
		t.Fatalf("want goodbye, got %+v", m)
	}
	if svc.closed.Load() != 1 {
		t.Fatal("Close not called")
	}
}

func TestSupervisedReadyWaitsForPlane(t *testing.T) {
	parent := newFakeParent(t)
	got := make(chan *testService, 1)
	r := startRun(t, testPlane(got, errors.New("replaying journal")), []string{"--listen", "127.0.0.1:0"}, parent.env("t"))
	parent.accept(t)
	if m := parent.next(t); m.Type != control.TypeHello {
		t.Fatalf("first message %+v", m)
	}
	if m := parent.next(t); m.Type != control.TypeHealth || *m.OK || m.Detail != "replaying journal" {
		t.Fatalf("want not-ready health before ready, got %+v", m)
	}
	addr := r.addr(t)
	if code, _, _ := get(t, "http://"+addr+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d while plane not ready", code)
	}
	(<-got).setReady(nil)
	if m := parent.next(t); m.Type != control.TypeReady || m.Addr != addr {
		t.Fatalf("want ready{%s}, got %+v", addr, m)
	}
	r.cancel()
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	parent.next(t) // draining health
	if m := parent.next(t); m.Type != control.TypeGoodbye || m.Reason != "terminated by signal" {
		t.Fatalf("want goodbye, got %+v", m)
	}
}

func TestSupervisedLostParent(t *testing.T) {
	parent := newFakeParent(t)
	got := make(chan *testService, 1)
	r := startRun(t, testPlane(got, nil), []string{"--listen", "127.0.0.1:0"}, parent.env("t"))
	parent.accept(t)
	parent.next(t) // hello
	parent.next(t) // ready
	_ = parent.conn.Close()
	err := r.wait(t)
	if !errors.Is(err, ErrLostControl) || ExitCode(err) != ExitFailure {
		t.Fatalf("Run after parent closed = %v, want ErrLostControl", err)
	}
	if !strings.Contains(r.logs.String(), `"lost control connection to parent"`) {
		t.Fatalf("no lost-connection log line:\n%s", r.logs.String())
	}
	if (<-got).closed.Load() != 1 {
		t.Fatal("stores not closed after losing the parent")
	}
}

func TestSupervisedMalformedParentMessage(t *testing.T) {
	parent := newFakeParent(t)
	r := startRun(t, testPlane(nil, nil), []string{"--listen", "127.0.0.1:0"}, parent.env("t"))
	parent.accept(t)
	parent.next(t) // hello
	if _, err := parent.conn.Write([]byte("{not json\n")); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(t); !errors.Is(err, ErrLostControl) || !errors.Is(err, control.ErrMalformed) {
		t.Fatalf("Run = %v, want lost control wrapping ErrMalformed", err)
	}
}

func TestSupervisedDialFailure(t *testing.T) {
	dir, err := os.MkdirTemp("", "mn")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	built := false
	p := testPlane(nil, nil)
	build := p.Build
	p.Build = func(ctx context.Context, env Env) (Service, error) { built = true; return build(ctx, env) }
	logs := &syncBuffer{}
	missing := filepath.Join(dir, "missing.sock")
	err = run(t.Context(), p, []string{"--listen", "127.0.0.1:0"}, logs,
		envMap(map[string]string{control.EnvSocket: missing, control.EnvToken: "t"}))
	if err == nil || !strings.Contains(err.Error(), missing) || ExitCode(err) != ExitFailure {
		t.Fatalf("run with missing socket = %v", err)
	}
	if built {
		t.Fatal("plane built without a parent")
	}
	if !strings.Contains(logs.String(), control.EnvSocket) {
		t.Fatalf("log does not name %s:\n%s", control.EnvSocket, logs.String())
	}
}
