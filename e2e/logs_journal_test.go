package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Under systemd (JOURNAL_STREAM naming the parent's stderr) every line the
// parent writes starts with its syslog priority, its own records and the
// child lines it passes on alike, so `journalctl -p warning` can filter: a
// child killed behind the supervisor's back gives a warning line, "<4>".
func TestJournalPriorityPrefixes(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	journal := fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino)
	n := startNode(t, nodeOpts{services: "storage", stderr: f, env: []string{journal}})
	pid := childPID(t, n, "storage")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill storage child %d: %v", pid, err)
	}
	warning := regexp.MustCompile(`(?m)^<4>\{.*"child exited unexpectedly"`)
	eventually(t, 15*time.Second, func() (bool, string) {
		b, err := os.ReadFile(f.Name())
		return err == nil && warning.Match(b), "a <4> line for the killed child in:\n" + tail(string(b), 20)
	})
	n.waitReady(readyTimeout)
	n.stop()

	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	prefixed := regexp.MustCompile(`^<[3467]>\{`)
	var child bool
	for _, l := range lines {
		if !prefixed.MatchString(l) {
			t.Errorf("line without a priority prefix: %q", l)
		}
		child = child || strings.HasPrefix(l, `<6>{"@service":"storage",`)
	}
	if !child {
		t.Errorf("no info line of the storage child passed on with its priority in:\n%s", tail(string(b), 20))
	}
}
