package e2e

import (
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// standalone is one svc-* binary run by hand, as a developer would, with no
// parent: `svc-<plane> --listen ADDR --data-dir DIR`.
type standalone struct {
	name    string
	cmd     *exec.Cmd
	base    string // http://ADDR
	addr    string // ADDR
	out     syncBuffer
	done    chan struct{}
	waitErr error
}

// startStandalone starts bin(name) on a free port with a fresh data dir,
// waits until its /readyz is 200, and registers cleanup that kills what is
// left and checks that no process of ours remains.
func startStandalone(t *testing.T, name string) *standalone {
	t.Helper()
	return startStandaloneOn(t, name, freeAddr(t))
}

// startStandaloneOn is startStandalone listening on addr, with extra flags.
func startStandaloneOn(t *testing.T, name, addr string, args ...string) *standalone {
	t.Helper()
	dataDir := t.TempDir()
	s := &standalone{name: name, base: "http://" + addr, addr: addr, done: make(chan struct{})}
	s.cmd = exec.Command(bin(name), append([]string{"--listen", addr, "--data-dir", dataDir}, args...)...)
	s.cmd.Env = baseEnv()
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(s.out.String(), 200))
		}
		assertNoLeftoversOfNode(t, binDir, s.cmd.Process.Pid, dataDir)
	})
	eventually(t, readyTimeout, func() (bool, string) {
		select {
		case <-s.done:
			t.Fatalf("%s exited before it was ready: %v", name, s.waitErr)
		default:
		}
		code, err := tryJSON("GET", s.base+"/readyz", nil, nil)
		return err == nil && code == 200, fmt.Sprintf("/readyz %d %v", code, err)
	})
	return s
}

// terminate sends SIGTERM and expects a clean exit 0 within shutdownTimeout.
func (s *standalone) terminate(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if code := s.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited %d (%v) after SIGTERM, want 0", s.name, code, s.waitErr)
		}
	case <-time.After(shutdownTimeout):
		t.Errorf("%s still running %v after SIGTERM", s.name, shutdownTimeout)
	}
}
