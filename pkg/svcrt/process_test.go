package svcrt

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/control"
)

// binDir holds binaries built by the tests; TestMain removes it.
var (
	binDir   string
	buildMu  sync.Mutex
	builtBin = map[string]string{}
)

// buildCmd builds ./cmd/<name> once per test binary and returns its path.
func buildCmd(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a binary")
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := builtBin[name]; ok {
		return p
	}
	if binDir == "" {
		d, err := os.MkdirTemp("", "mnbin")
		if err != nil {
			t.Fatal(err)
		}
		binDir = d
	}
	out := filepath.Join(binDir, name)
	cmd := exec.Command("go", "build", "-o", out, "github.com/macronode/macronode/cmd/"+name)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, b)
	}
	builtBin[name] = out
	return out
}

// child is a started svc-* process whose stderr is scanned for the address.
type child struct {
	cmd   *exec.Cmd
	addr  chan string
	lines chan string // every stderr line, buffered
	done  chan error  // Wait's result, after stderr is drained
}

func startChild(t *testing.T, bin string, env []string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, addr: make(chan string, 1), lines: make(chan string, 1024), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			select {
			case c.lines <- line:
			default:
			}
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["@message"] == "serving" {
				if a, ok := m["addr"].(string); ok {
					c.addr <- a
				}
			}
		}
		c.done <- cmd.Wait() // only after the pipe is drained
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

func (c *child) waitAddr(t *testing.T) string {
	t.Helper()
	select {
	case a := <-c.addr:
		return a
	case err := <-c.done:
		c.done <- err
		t.Fatalf("child exited before serving: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("child did not report its address")
	}
	return ""
}

func (c *child) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(20 * time.Second):
		t.Fatal("child did not exit")
		return -1
	}
}

func (c *child) logged(msg string) bool {
	for {
		select {
		case l := <-c.lines:
			if strings.Contains(l, msg) {
				return true
			}
		default:
			return false
		}
	}
}

func TestProcessStandaloneSIGTERM(t *testing.T) {
	bin := buildCmd(t, "svc-dht")
	c := startChild(t, bin, []string{control.EnvSocket + "="}, "--listen", "127.0.0.1:0", "--amnesia")
	base := "http://" + c.waitAddr(t)
	if code, _, body := get(t, base+"/healthz"); code != http.StatusOK || !strings.Contains(body, `"service":"svc-dht"`) {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	if code, _, body := get(t, base+"/info"); code != http.StatusOK || !strings.Contains(body, `"plane":"dht"`) {
		t.Fatalf("/info = %d %s", code, body)
	}
	if code, _, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "macronode_build_info") {
		t.Fatalf("/metrics = %d", code)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.exitCode(t); code != ExitOK {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	if !c.logged(`"stopped"`) {
		t.Fatal("no stopped log line")
	}
}

func TestProcessUsageExitCodes(t *testing.T) {
	bin := buildCmd(t, "svc-overlay")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, ExitOK, "MACRONODE_CONTROL_SOCKET"},
		{[]string{"-h"}, ExitOK, "svc-overlay --listen 127.0.0.1:9100"},
		{[]string{"--version"}, ExitOK, "svc-overlay 0.1.0"},
		{[]string{"--bogus"}, ExitUsage, "flag provided but not defined"},
		{[]string{"--log-format", "xml"}, ExitUsage, "--log-format"},
	}
	for _, tc := range tests {
		out, err := exec.Command(bin, tc.args...).CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: exit %d (want %d), output:\n%s", tc.args, code, tc.code, out)
		}
	}
}

func TestProcessPortTaken(t *testing.T) {
	bin := buildCmd(t, "svc-dht")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, err := exec.Command(bin, "--listen", ln.Addr().String(), "--amnesia").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitFailure || !strings.Contains(string(out), "address already in use") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

// The child must not outlive a parent whose control connection drops.
func TestProcessExitsWhenParentConnectionDrops(t *testing.T) {
	bin := buildCmd(t, "svc-dht")
	parent := newFakeParent(t)
	c := startChild(t, bin, []string{control.EnvSocket + "=" + parent.sock, control.EnvToken + "=tok", control.EnvService + "=dht"},
		"--listen", "127.0.0.1:0", "--amnesia")
	parent.accept(t)
	hello := parent.next(t)
	if hello.Type != control.TypeHello || hello.PID != c.cmd.Process.Pid || hello.Token != "tok" || hello.Service != "dht" {
		t.Fatalf("hello = %+v (child pid %d)", hello, c.cmd.Process.Pid)
	}
	if m := parent.next(t); m.Type != control.TypeReady {
		t.Fatalf("want ready, got %+v", m)
	}
	_ = parent.conn.Close()
	if code := c.exitCode(t); code != ExitFailure {
		t.Fatalf("exit code after losing parent = %d, want %d", code, ExitFailure)
	}
	if !c.logged("lost control connection to parent") {
		t.Fatal("no lost-connection log line")
	}
}
