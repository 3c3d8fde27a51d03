package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/admin"
)

// TestLogsFollowSmallN: with -n smaller than the buffer, -f prints the N
// lines, then only the lines added later (it used to reprint the buffer).
func TestLogsFollowSmallN(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t, "")
	for i := range 6 {
		f.addLine(fmt.Sprintf("old %d", i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		env := Env{Stdout: &stdout, Stderr: &stderr, pollEvery: 5 * time.Millisecond,
			Environ: func() []string { return []string{"RON_HTTP_ADDR=" + f.addr()} }}
		done <- Run(ctx, []string{"macronode", "logs", "storage", "-n", "2", "-f"}, env)
	}()
	testutil.Eventually(t, 5*time.Second, "two lines on stdout", func() bool { return strings.Count(stdout.String(), "\n") >= 2 })
	f.addLine("new 1")
	f.addLine("new 2")
	testutil.Eventually(t, 5*time.Second, `"new 2" on stdout`, func() bool { return strings.Contains(stdout.String(), "new 2") })
	// Let several more polls happen: they must print nothing.
	polls := func() int { f.mu.Lock(); defer f.mu.Unlock(); return f.logPolls }
	seen := polls()
	testutil.Eventually(t, 5*time.Second, "three more polls", func() bool { return polls() >= seen+3 })
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var texts []string
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		fields := strings.SplitN(l, " ", 3)
		texts = append(texts, fields[len(fields)-1])
	}
	if got, want := strings.Join(texts, ","), "old 4,old 5,new 1,new 2"; got != want {
		t.Errorf("printed %q, want %q\n%s", got, want, stdout.String())
	}
	if stderr.String() != "" {
		t.Errorf("unexpected stderr %q", stderr.String())
	}
}

func TestNewLines(t *testing.T) {
	t.Parallel()
	at := func(n int, text string) admin.LogLine {
		return admin.LogLine{Time: time.Date(2025, 1, 1, 0, 0, 0, n, time.UTC), Stream: "stdout", Text: text}
	}
	a, b, c, d := at(1, "a"), at(2, "b"), at(3, "c"), at(4, "d")
	bErr := b
	bErr.Stream = "stderr"
	bLater := at(9, "b")
	tests := []struct {
		name      string
		last      *admin.LogLine
		cur       []admin.LogLine
		want      []admin.LogLine
		wantFound bool
	}{
		{"nothing printed yet", nil, []admin.LogLine{a, b}, []admin.LogLine{a, b}, true},
		{"last in the middle of a longer answer", &b, []admin.LogLine{a, b, c, d}, []admin.LogLine{c, d}, true},
		{"nothing new", &d, []admin.LogLine{a, b, c, d}, []admin.LogLine{}, true},
		{"empty answer", &d, nil, nil, true},
		{"rotated past", &a, []admin.LogLine{c, d}, []admin.LogLine{c, d}, false},
		{"same text, other stream", &b, []admin.LogLine{a, bErr, c}, []admin.LogLine{a, bErr, c}, false},
		{"same text, other time", &b, []admin.LogLine{bLater, c}, []admin.LogLine{bLater, c}, false},
		{"latest copy wins", &b, []admin.LogLine{b, c, b, d}, []admin.LogLine{d}, true},
	}
	for _, tc := range tests {
		got, found := newLines(tc.last, tc.cur)
		if found != tc.wantFound || len(got) != len(tc.want) {
			t.Errorf("%s: got %v (found %v), want %v (found %v)", tc.name, got, found, tc.want, tc.wantFound)
			continue
		}
		for i := range got {
			if !sameLine(got[i], tc.want[i]) {
				t.Errorf("%s: line %d = %v, want %v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
}

// TestLogsFollowRotated: when the buffer rotated past the last line shown
// between two polls, everything it still holds is printed, with a notice.
func TestLogsFollowRotated(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t, "")
	f.addLine("first")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		env := Env{Stdout: &stdout, Stderr: &stderr, pollEvery: 5 * time.Millisecond,
			Environ: func() []string { return []string{"RON_HTTP_ADDR=" + f.addr()} }}
		done <- Run(ctx, []string{"macronode", "logs", "storage", "-f"}, env)
	}()
	testutil.Eventually(t, 5*time.Second, `"first" on stdout`, func() bool { return strings.Contains(stdout.String(), "first") })
	f.mu.Lock()
	f.logLines = nil // the ring buffer dropped everything shown so far
	f.mu.Unlock()
	f.addLine("second")
	testutil.Eventually(t, 5*time.Second, `"second" on stdout`, func() bool { return strings.Contains(stdout.String(), "second") })
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if strings.Count(stdout.String(), "\n") != 2 || !strings.Contains(stderr.String(), "rotated past the last line shown") {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}
