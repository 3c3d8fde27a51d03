package node

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/supervisor"
)

func TestDrainProgress(t *testing.T) {
	now := time.Now()
	stopping := func(name string, left time.Duration) supervisor.Status {
		return supervisor.Status{Name: name, State: supervisor.StateStopping, PID: 10, StopDeadline: now.Add(left)}
	}
	running := supervisor.Status{Name: "storage", State: supervisor.StateRunning, PID: 11}
	stopped := supervisor.Status{Name: "dht", State: supervisor.StateStopped}
	tests := []struct {
		name     string
		prev     int
		snap     []supervisor.Status
		live     int
		progress bool
	}{
		{"first look with children", -1, []supervisor.Status{running}, 1, true},
		{"first look, nothing to stop", -1, []supervisor.Status{stopped}, 0, false},
		{"a child drains before its deadline", 2, []supervisor.Status{stopping("gateway", time.Second), running}, 2, true},
		{"a child exited since the last look", 2, []supervisor.Status{stopped, running}, 1, true},
		{"stuck: past the deadline, nobody exited", 2, []supervisor.Status{stopping("gateway", -time.Second), running}, 2, false},
		{"waiting for a tier, nothing drains", 1, []supervisor.Status{running}, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			live, progress := drainProgress(tc.prev, tc.snap, now)
			if live != tc.live || progress != tc.progress {
				t.Errorf("drainProgress = %d, %v; want %d, %v", live, progress, tc.live, tc.progress)
			}
		})
	}
}

func TestDrainStatus(t *testing.T) {
	now := time.Now()
	snap := []supervisor.Status{
		{Name: "storage", State: supervisor.StateRunning, PID: 3},
		{Name: "overlay", State: supervisor.StateStopped},
		{Name: "dht", State: supervisor.StateStopping, PID: 4, StopDeadline: now.Add(4240 * time.Millisecond)},
		{Name: "gateway", State: supervisor.StateStopping, PID: 5, StopDeadline: now.Add(-time.Second)},
	}
	if got, want := drainStatus(snap, now), "stopping: dht 4.2s left, gateway 0s left; 1 more"; got != want {
		t.Errorf("drainStatus = %q, want %q", got, want)
	}
	if got := drainStatus(nil, now); got != "stopping" {
		t.Errorf("drainStatus(nil) = %q", got)
	}
}

// Under systemd, a child that drains slowly keeps the stop alive with
// EXTEND_TIMEOUT_USEC, never past shutdown_timeout + 5s, and the whole
// stop of the children stays within shutdown_timeout.
func TestDrainExtendsSystemdTimeout(t *testing.T) {
	const budget = 4 * time.Second
	old := extendEvery
	extendEvery = 200 * time.Millisecond
	t.Cleanup(func() { extendEvery = old })
	notes := listenNotify(t)

	// The child takes 1.5s to drain after SIGTERM, and never says hello.
	child := supervisor.Spec{
		Name: "storage", Binary: "/bin/sh", Critical: true,
		Args:         []string{"-c", "trap 'sleep 1.5; exit 0' TERM; echo trapped; while :; do sleep 0.05; done"},
		StartTimeout: time.Minute, HeartbeatTimeout: time.Minute, ShutdownTimeout: time.Minute,
	}
	supc := make(chan *supervisor.Supervisor, 1)
	sigs := make(chan os.Signal, 1)
	opts := Options{
		Config:  load(t, "RON_HTTP_ADDR="+freePort(t), "RON_DATA_DIR="+t.TempDir(), "RON_SERVICES=storage", "RON_GRACEFUL_TIMEOUT="+budget.String()),
		Signals: sigs,
		NewSupervisor: func(o supervisor.Options) (Supervisor, error) {
			if o.StopBudget != budget {
				t.Errorf("supervisor stop budget %v, want shutdown_timeout %v", o.StopBudget, budget)
			}
			o.Specs = []supervisor.Spec{child}
			s, err := supervisor.New(o)
			if err == nil {
				supc <- s
			}
			return s, err
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- Run(context.Background(), opts) }()
	sup := <-supc
	var pid int
	testutil.Eventually(t, 10*time.Second, "child ready to drain", func() bool {
		pid = sup.Snapshot()[0].PID
		lines, err := sup.Logs("storage", 10)
		return pid != 0 && err == nil && len(lines) > 0 && lines[0].Text == "trapped"
	})

	start := time.Now()
	sigs <- syscall.SIGTERM
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	took := time.Since(start)
	if took > budget {
		t.Errorf("the stop took %v, over shutdown_timeout %v", took, budget)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("child %d still exists", pid)
	}
	if e := sup.Snapshot()[0].Exits; len(e) != 1 || e[0].Description != "exit status 0" {
		t.Errorf("the child did not drain by itself: %+v", e)
	}

	limit := start.Add(budget + extendSlack)
	extensions, drainStatusSeen := 0, false
	for len(notes) > 0 {
		msg := <-notes
		for _, line := range strings.Split(msg, "\n") {
			if strings.HasPrefix(line, "STATUS=stopping: storage ") {
				drainStatusSeen = true
			}
			v, ok := strings.CutPrefix(line, "EXTEND_TIMEOUT_USEC=")
			if !ok {
				continue
			}
			usec, err := strconv.ParseInt(v, 10, 64)
			if err != nil || usec <= 0 {
				t.Errorf("bad extension %q", line)
				continue
			}
			extensions++
			// Sent before Run returned: its end is before now + usec.
			if end := time.Now().Add(time.Duration(usec) * time.Microsecond); end.After(limit.Add(time.Second)) {
				t.Errorf("extension %q reaches past shutdown_timeout + 5s", line)
			}
			if time.Duration(usec)*time.Microsecond > 3*extendEvery {
				t.Errorf("extension %q longer than three looks", line)
			}
		}
	}
	t.Logf("stop took %v with %d extensions", took, extensions)
	if extensions == 0 {
		t.Error("no EXTEND_TIMEOUT_USEC while the child drained")
	}
	if !drainStatusSeen {
		t.Error("no STATUS= line naming the draining child")
	}
}
