package supervisor

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// reloadLine is what a fake child records for one reload message.
func reloadLine(pid int, cfg, service string) string {
	return fmt.Sprintf("reload pid=%d %s %s\n", pid, cfg, service)
}

// Reload reaches every connected child; a bad payload is dropped.
func TestReloadReachesConnectedChildren(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "record")
	h := startHarness(t, []Spec{
		fakeSpec(t, "a", "good", "MN_FAKE_RECORD="+rec),
		fakeSpec(t, "b", "good", "MN_FAKE_RECORD="+rec),
	}, nil)
	a, b := h.waitReady("a", 0), h.waitReady("b", 0)

	h.s.Reload(json.RawMessage(`{"log_level":`)) // not JSON: logged, not sent
	const cfg = `{"log_level":"debug"}`
	h.s.Reload(json.RawMessage(cfg))
	for _, want := range []string{reloadLine(a.PID, cfg, "a"), reloadLine(b.PID, cfg, "b")} {
		eventually(t, 10*time.Second, "child got "+want, func() bool { return strings.Contains(readFile(t, rec), want) })
	}
	// Messages on one connection arrive in order: the bad one would be first.
	if got := strings.Count(readFile(t, rec), "reload "); got != 2 {
		t.Errorf("%d reload lines, want 2:\n%s", got, readFile(t, rec))
	}
	if !h.logs.Contains("payload is not valid JSON") {
		t.Error("bad reload payload not logged")
	}
	if h.status("a").PID != a.PID || h.status("b").PID != b.PID {
		t.Error("a reload restarted a child")
	}
}

// A child that connects after Reload (here: restarted) receives the latest
// payload right after its hello, and only that one.
func TestReloadReachesRestartedChild(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "record")
	h := startHarness(t, []Spec{fakeSpec(t, "svc", "good", "MN_FAKE_RECORD="+rec)}, nil)
	first := h.waitReady("svc", 0)
	const older, latest = `{"log_level":"trace"}`, `{"log_level":"warn","extra":1}`
	h.s.Reload(json.RawMessage(older))
	h.s.Reload(json.RawMessage(latest))
	eventually(t, 10*time.Second, "first child got the latest", func() bool {
		return strings.Contains(readFile(t, rec), reloadLine(first.PID, latest, "svc"))
	})

	if err := h.s.Restart("svc"); err != nil {
		t.Fatal(err)
	}
	second := h.waitReady("svc", first.PID)
	eventually(t, 10*time.Second, "restarted child got the latest", func() bool {
		return strings.Contains(readFile(t, rec), reloadLine(second.PID, latest, "svc"))
	})
	if strings.Contains(readFile(t, rec), reloadLine(second.PID, older, "svc")) {
		t.Errorf("restarted child got a stale payload:\n%s", readFile(t, rec))
	}
}
