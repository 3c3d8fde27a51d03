package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sseEvent is one event of GET /api/v1/events.
type sseEvent struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Service string          `json:"service"`
	Data    json.RawMessage `json:"data"`
}

func (e sseEvent) pid() int {
	var d struct {
		PID int `json:"pid"`
	}
	_ = json.Unmarshal(e.Data, &d)
	return d.PID
}

// eventLog collects a node's event stream in the background.
type eventLog struct {
	mu  sync.Mutex
	evs []sseEvent
}

func (l *eventLog) snapshot() []sseEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sseEvent(nil), l.evs...)
}

// readEvents reads an event stream's events (gap frames as type "gap")
// until it ends, passing each to f.
func readEvents(resp *http.Response, f func(sseEvent)) {
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	typ := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var ev sseEvent
			_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev)
			ev.Type = typ
			f(ev)
		}
	}
}

// followEvents streams the node's events from the start of its ring.
func followEvents(t *testing.T, n *node) *eventLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", n.url("/api/v1/events?history=1"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		cancel()
		t.Fatalf("GET /api/v1/events: %v %v", resp, err)
	}
	l := &eventLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		readEvents(resp, func(ev sseEvent) { l.mu.Lock(); l.evs = append(l.evs, ev); l.mu.Unlock() })
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return l
}

// after returns the index of the first event at or after from of typ for
// service whose pid matches (pid 0: any), or -1.
func after(evs []sseEvent, from int, typ, service string, pid int) int {
	for i := from; i < len(evs); i++ {
		if evs[i].Type == typ && evs[i].Service == service && (pid == 0 || evs[i].pid() == pid) {
			return i
		}
	}
	return -1
}

// kill -9 of a stable child: the stream shows exited, then spawned, then
// ready of the new pid; a reconnect with Last-Event-ID replays exactly the
// ids after it; a junk id gets 400.
func TestEventsStreamKillAndResume(t *testing.T) {
	n := startNode(t, nodeOpts{})
	l := followEvents(t, n)
	old := childPID(t, n, "storage")
	signalChild(t, old, "svc-storage", syscall.SIGKILL)

	var exited int
	eventually(t, restartTimeout, func() (bool, string) {
		evs := l.snapshot()
		exited = after(evs, 0, "exited", "storage", old)
		spawned := -1
		if exited >= 0 {
			spawned = after(evs, exited, "spawned", "storage", 0)
		}
		if spawned < 0 {
			return false, fmt.Sprintf("no exited(%d) then spawned in %d events", old, len(evs))
		}
		return after(evs, spawned, "ready", "storage", evs[spawned].pid()) > 0, "no ready of the new child"
	})

	evs := l.snapshot()
	req, _ := http.NewRequest("GET", n.url("/api/v1/events?follow=0"), nil)
	req.Header.Set("Last-Event-ID", evs[exited].ID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var replayed []string
	readEvents(resp, func(ev sseEvent) { replayed = append(replayed, ev.ID) })
	resp.Body.Close()
	var want []string
	for _, ev := range evs[exited+1:] {
		want = append(want, ev.ID)
	}
	if len(replayed) < len(want) || strings.Join(replayed[:len(want)], " ") != strings.Join(want, " ") {
		t.Errorf("replay after %s = %v, want %v (then anything newer)", evs[exited].ID, replayed, want)
	}

	req, _ = http.NewRequest("GET", n.url("/api/v1/events"), nil)
	req.Header.Set("Last-Event-ID", "junk")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("junk Last-Event-ID: %d, want 400", resp.StatusCode)
	}
}

// macronode chaos storage --count 3 prints three recovery times and a
// median, and the audit log on disk holds three fault lines.
func TestEventsChaosDrill(t *testing.T) {
	n := startNode(t, nodeOpts{})
	res := runCLI(t, []string{"RON_HTTP_ADDR=" + n.admin}, "macronode", "chaos", "storage", "--count", "3", "--interval", "100ms")
	if res.code != 0 {
		t.Fatalf("chaos exit %d:\n%s", res.code, res.out)
	}
	if got := strings.Count(res.out, "round "); got != 3 || !strings.Contains(res.out, "fault -> ready over 3 rounds: median ") {
		t.Fatalf("chaos output:\n%s", res.out)
	}
	t.Logf("chaos:\n%s", res.out)
	b, err := os.ReadFile(filepath.Join(n.dataDir, "audit", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), `"kind":"fault"`); got != 3 {
		t.Errorf("audit.log has %d fault lines, want 3:\n%s", got, b)
	}
}

// macronode status --watch, piped, prints a change line when a child dies
// and comes back.
func TestEventsStatusWatchPiped(t *testing.T) {
	n := startNode(t, nodeOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := execCLI(ctx, []string{"RON_HTTP_ADDR=" + n.admin}, "macronode", "status", "--watch")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	eventually(t, 10*time.Second, func() (bool, string) {
		return strings.Contains(out.String(), "storage state running"), fmt.Sprintf("no first line in %q", out.String())
	})
	old := childPID(t, n, "storage")
	signalChild(t, old, "svc-storage", syscall.SIGKILL)
	eventually(t, restartTimeout, func() (bool, string) {
		return strings.Contains(out.String(), fmt.Sprintf(" pid %d->", old)), fmt.Sprintf("no change line in %q", out.String())
	})
}

// execCLI prepares a long-running CLI command that ends when ctx does.
func execCLI(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin(name), args...)
	cmd.Env = append(baseEnv(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
