package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The parent holds every plane's listening socket (issue 14): a child's
// crash refuses no connection, a stopped plane refuses at once.

// heldStatus is the part of a service's status about its socket.
type heldStatus struct {
	State          string  `json:"state"`
	PID            int     `json:"pid"`
	Ready          bool    `json:"ready"`
	UptimeSeconds  float64 `json:"uptime_seconds"`
	Listen         string  `json:"listen"`
	Listener       string  `json:"listener"`
	RestartPending bool    `json:"restart_pending"`
}

func heldOf(t testing.TB, n *node, name string) heldStatus {
	t.Helper()
	var st struct {
		Services map[string]heldStatus `json:"services"`
	}
	if code := getJSON(t, n.url("/api/v1/status"), &st); code != 200 {
		t.Fatalf("/api/v1/status answered %d", code)
	}
	return st.Services[name]
}

// loadResult counts what a client load saw.
type loadResult struct {
	ok, failed, refused atomic.Int64
	mu                  sync.Mutex
	firstErr            string
}

func (r *loadResult) fail(err error, what string) {
	r.failed.Add(1)
	if errors.Is(err, syscall.ECONNREFUSED) {
		r.refused.Add(1)
	}
	r.mu.Lock()
	if r.firstErr == "" {
		r.firstErr = what
	}
	r.mu.Unlock()
}

func (r *loadResult) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("ok %d, failed %d (refused %d), first failure: %s", r.ok.Load(), r.failed.Load(), r.refused.Load(), r.firstErr)
}

// getLoad runs clients GET url loops, each at most one request per pace,
// until ctx ends. Each client keeps its connections alive, as a real one does.
func getLoad(ctx context.Context, url string, clients int, pace time.Duration) (*loadResult, func()) {
	res := &loadResult{}
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 2}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for ctx.Err() == nil {
				resp, err := c.Get(url)
				switch {
				case err != nil:
					if ctx.Err() == nil {
						res.fail(err, err.Error())
					}
				default:
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						res.ok.Add(1)
					} else {
						res.fail(nil, fmt.Sprintf("status %d", resp.StatusCode))
					}
				}
				select {
				case <-ctx.Done():
				case <-tick.C:
				}
			}
		}()
	}
	return res, wg.Wait
}

// killStable kills the plane's child with SIGKILL once it has been ready
// for stableFor (so the supervisor restarts it at once), then waits until
// a new child is ready; times times, gap apart.
func killStable(t *testing.T, n *node, plane string, times int, stableFor, gap time.Duration) {
	t.Helper()
	for i := range times {
		var pid int
		eventually(t, 30*time.Second, func() (bool, string) {
			s := heldOf(t, n, plane)
			pid = s.PID
			return s.Ready && s.UptimeSeconds >= stableFor.Seconds(), fmt.Sprintf("%s stable: %+v", plane, s)
		})
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s (%d): %v", plane, pid, err)
		}
		eventually(t, restartTimeout, func() (bool, string) {
			s := heldOf(t, n, plane)
			return s.Ready && s.PID != pid && s.PID != 0, fmt.Sprintf("%s back: %+v", plane, s)
		})
		if i < times-1 {
			time.Sleep(gap) // pacing of the drill, not synchronization
		}
	}
}

// stableAfter1s makes a child stable after 1s of readiness, so that a
// kill is followed by an immediate restart, without backoff.
const stableAfter1s = "services:\n  storage:\n    stable_after: 1s\n"

// Clients GET a blob straight from storage's port while storage is killed
// three times: the parent's socket queues their connects, so none fails.
func TestListenDirectLoadSurvivesKills(t *testing.T) {
	n := startNode(t, nodeOpts{services: "storage", config: stableAfter1s})
	if s := heldOf(t, n, "storage"); s.Listener != "held" || s.Listen != n.addrs["storage"] {
		t.Fatalf("storage listener %q on %q, want held on %s", s.Listener, s.Listen, n.addrs["storage"])
	}
	base := "http://" + n.addrs["storage"]
	addr := putBlob(t, base, []byte("held socket"))

	ctx, cancel := context.WithCancel(context.Background())
	res, wait := getLoad(ctx, base+"/o/"+addr, 4, 2*time.Millisecond)
	killStable(t, n, "storage", 3, 1500*time.Millisecond, time.Second)
	cancel()
	wait()
	t.Logf("direct load across 3 kills: %s", res)
	if res.failed.Load() != 0 || res.ok.Load() == 0 {
		t.Fatalf("direct load across 3 kills: %s", res)
	}
}

// The same load through the gateway, paced under its per-client rate
// limit. Every request answers 200 only if the gateway retries a GET
// whose backend connection failed mid-request (the gateway's own retry).
func TestListenGatewayLoadSurvivesKills(t *testing.T) {
	n := startNode(t, nodeOpts{services: "storage,gateway", config: stableAfter1s})
	addr := putBlob(t, n.gw(""), []byte("held socket via the gateway"))
	ctx, cancel := context.WithCancel(context.Background())
	// 4 clients x 100/s stays well under the 1000/s of one client address.
	res, wait := getLoad(ctx, n.gw("/o/"+addr), 4, 10*time.Millisecond)
	killStable(t, n, "storage", 3, 1500*time.Millisecond, 6*time.Second)
	cancel()
	wait()
	t.Logf("gateway load across 3 kills: %s", res)
	if res.failed.Load() != 0 || res.ok.Load() == 0 {
		t.Fatalf("gateway load across 3 kills: %s", res)
	}
}

// A stopped plane refuses connects at once and the gateway answers 503
// without waiting; start binds the socket again and both serve.
func TestListenStoppedPlaneRefused(t *testing.T) {
	n := startNode(t, nodeOpts{services: "storage,gateway"})
	addr := putBlob(t, n.gw(""), []byte("stop me"))
	if code := postJSON(t, n.url("/api/v1/services/storage/stop"), nil, nil); code != 202 {
		t.Fatalf("stop answered %d", code)
	}
	eventually(t, restartTimeout, func() (bool, string) {
		s := heldOf(t, n, "storage")
		return s.State == "stopped" && s.Listener == "closed", fmt.Sprintf("storage: %+v", s)
	})
	if c, err := net.DialTimeout("tcp", n.addrs["storage"], 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("connect to a stopped storage: %v, want connection refused", err)
	}
	start := time.Now()
	resp, body, err := request("GET", n.gw("/o/"+addr), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); resp.StatusCode != 503 || took > 2*time.Second {
		t.Fatalf("gateway with storage stopped: %d after %v (%s), want 503 at once", resp.StatusCode, took, trunc(body))
	}

	if code := postJSON(t, n.url("/api/v1/services/storage/start"), nil, nil); code != 202 {
		t.Fatalf("start answered %d", code)
	}
	eventually(t, restartTimeout, func() (bool, string) {
		s := heldOf(t, n, "storage")
		return s.Ready && s.Listener == "held", fmt.Sprintf("storage: %+v", s)
	})
	for _, url := range []string{"http://" + n.addrs["storage"] + "/o/" + addr, n.gw("/o/" + addr)} {
		eventually(t, restartTimeout, func() (bool, string) {
			resp, body, err := request("GET", url, nil, nil)
			if err != nil {
				return false, err.Error()
			}
			return resp.StatusCode == 200, fmt.Sprintf("GET %s: %d %s", url, resp.StatusCode, trunc(body))
		})
	}
}

// The plane binary serves on a socket passed by systemd-socket-activate,
// and on its own bind when the LISTEN_* variables are not addressed to it.
func TestListenSocketActivation(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("systemd-socket-activate is required under CI: %v", err)
		}
		t.Skip("systemd-socket-activate not installed (Debian: package systemd)")
	}
	for _, tc := range []struct {
		name      string
		cmd       func(addr string) []string
		env       []string
		inherited bool
	}{
		// --listen names the same port: a bind of its own would fail with
		// EADDRINUSE, since the tool holds the socket.
		{name: "socket activation", inherited: true, cmd: func(addr string) []string {
			return []string{tool, "-l", addr, bin("svc-storage"), "--listen", addr}
		}},
		{name: "variables for another pid", env: []string{"LISTEN_FDS=1", "LISTEN_PID=1"}, cmd: func(addr string) []string {
			return []string{bin("svc-storage"), "--listen", addr}
		}},
		{name: "by hand", cmd: func(addr string) []string { return []string{bin("svc-storage"), "--listen", addr} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := freeAddr(t)
			args := append(tc.cmd(addr), "--data-dir", filepath.Join(t.TempDir(), "s"), "--log-format", "json")
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = append(baseEnv(), tc.env...)
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-done:
				case <-time.After(shutdownTimeout):
					_ = cmd.Process.Kill()
					<-done
					t.Errorf("did not exit within %v of SIGTERM", shutdownTimeout)
				}
			}()
			// Under socket activation the child starts on the first connect.
			eventually(t, readyTimeout, func() (bool, string) {
				resp, body, err := request("GET", "http://"+addr+"/readyz", nil, nil)
				if err != nil {
					return false, err.Error() + "\n" + tail(out.String(), 5)
				}
				return resp.StatusCode == 200, fmt.Sprintf("/readyz %d %s", resp.StatusCode, trunc(body))
			})
			want := fmt.Sprintf(`"inherited_listener":%v`, tc.inherited)
			eventually(t, 5*time.Second, func() (bool, string) {
				return strings.Contains(out.String(), want), "no " + want + " in\n" + tail(out.String(), 10)
			})
		})
	}
}

// A plane port that is taken fails the node's start, naming the plane and
// the address, before any child is spawned.
func TestListenBusyPortFailsStart(t *testing.T) {
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	n := startNode(t, nodeOpts{services: "storage", noWait: true, addrs: map[string]string{"storage": hold.Addr().String()}})
	code, ok := n.wait(readyTimeout)
	if !ok {
		t.Fatalf("macronode still runs with storage's port taken")
	}
	want := "bind storage listener on " + hold.Addr().String()
	if code != 1 || !strings.Contains(n.stderr.String()+n.stdout.String(), want) {
		t.Fatalf("exit %d, want 1 with %q in:\n%s", code, want, tail(n.stderr.String(), 5))
	}
}
