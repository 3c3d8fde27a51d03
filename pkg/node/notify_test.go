package node

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/config"
)

// listenNotify binds a unixgram socket as systemd's NOTIFY_SOCKET and
// returns the datagrams it receives.
func listenNotify(t *testing.T) <-chan string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			select {
			case got <- string(buf[:n]):
			default:
			}
		}
	}()
	t.Cleanup(func() { _ = c.Close(); <-done })
	t.Setenv("NOTIFY_SOCKET", path)
	return got
}

// healthz asks the admin plane's /healthz.
func healthz(t *testing.T, srv *admin.Server) (int, admin.HealthResponse) {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1/healthz", nil))
	var body admin.HealthResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("/healthz body %q: %v", rec.Body.String(), err)
	}
	return rec.Code, body
}

// A wedged service loop (the supervisor's probe fails) turns /healthz 503
// and stops WATCHDOG=1; once it answers again, both recover.
func TestWedgedSupervisorFailsHealthAndWatchdog(t *testing.T) {
	dgrams := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "100000") // pet every 50ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	cfg := load(t, "RON_SERVICES=storage")
	sup := newFakeSup("storage")
	srv, err := admin.New(admin.Options{Config: func() *config.Config { return cfg }, Services: sup})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{log: hclog.NewNullLogger(), sup: sup, admin: srv, started: time.Now(), changes: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := n.notifier(ctx)
	defer func() { cancel(); <-done }()

	watchdogs := func(d time.Duration) int {
		n, end := 0, time.After(d)
		for {
			select {
			case m := <-dgrams:
				if strings.Contains(m, "WATCHDOG=1") {
					n++
				}
			case <-end:
				return n
			}
		}
	}
	if got := watchdogs(500 * time.Millisecond); got == 0 {
		t.Fatal("no WATCHDOG=1 while the supervisor answers")
	}
	if code, body := healthz(t, srv); code != http.StatusOK || body.Checks["supervisor"] != "ok" {
		t.Fatalf("/healthz %d %+v, want 200 with supervisor ok", code, body)
	}

	sup.wedged.Store(true)
	probes := sup.probes.Load()
	testutil.Eventually(t, 5*time.Second, "the watchdog probes the wedged supervisor", func() bool {
		return sup.probes.Load() > probes+1
	})
	watchdogs(100 * time.Millisecond) // discard those sent before the wedge
	if got := watchdogs(500 * time.Millisecond); got != 0 {
		t.Fatalf("%d WATCHDOG=1 while the supervisor is wedged, want none", got)
	}
	if code, body := healthz(t, srv); code != http.StatusServiceUnavailable || body.Checks["supervisor"] != "unresponsive" {
		t.Fatalf("/healthz %d %+v, want 503 with supervisor unresponsive", code, body)
	}

	sup.wedged.Store(false)
	testutil.Eventually(t, 5*time.Second, "WATCHDOG=1 again", func() bool { return watchdogs(100*time.Millisecond) > 0 })
	if code, _ := healthz(t, srv); code != http.StatusOK {
		t.Fatalf("/healthz %d after recovery, want 200", code)
	}
}
