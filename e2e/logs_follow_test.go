package e2e

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// `macronode logs storage -f` against a real node shows a line that the
// storage child logs after the follow began: the follow prints the ring's
// "plane ready" line of the first child, then a fault kill makes the
// supervisor start a new child, whose own "plane ready" line must arrive
// through the open stream. Interrupted, the follower exits 0.
func TestLogsFollowStreamsNewLines(t *testing.T) {
	n := startNode(t, nodeOpts{services: "storage"})
	firstPID := childPID(t, n, "storage")

	cmd := exec.Command(bin("macronode"), "logs", "storage", "-f", "-n", "1000")
	cmd.Env = append(baseEnv(), "RON_HTTP_ADDR="+n.admin)
	cmd.Dir = t.TempDir()
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start logs -f: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // a no-op once it exited
	}()
	readyLines := func() int { return strings.Count(out.String(), "plane ready") }
	eventually(t, 15*time.Second, func() (bool, string) {
		return readyLines() == 1, "the first child's ready line in the follow output:\n" + tail(out.String(), 10)
	})

	if code := postJSON(t, n.url("/api/v1/services/storage/fault"), map[string]string{"kind": "kill"}, nil); code != http.StatusAccepted {
		t.Fatalf("fault kill: HTTP %d", code)
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		return readyLines() == 2, fmt.Sprintf("the restarted child's ready line (first pid %d):\n%s\nstderr:\n%s",
			firstPID, tail(out.String(), 10), errOut.String())
	})
	if pid := childPID(t, n, "storage"); pid == firstPID {
		t.Errorf("storage pid still %d after the kill", pid)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("interrupt logs -f: %v", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("logs -f exited with %v; stderr:\n%s", err, errOut.String())
		}
	case <-time.After(cliTimeout):
		t.Fatalf("logs -f did not exit within %v of SIGINT", cliTimeout)
	}
	if s := errOut.String(); s != "" {
		t.Errorf("unexpected stderr: %q", s)
	}
}
