package cli

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
)

// followState is the fake node's side of `logs -f`: lines have ids f-<n>
// (n = index+1 in fakeNode.logLines).
type followState struct {
	wake    chan struct{} // closed when something changes
	lastIDs []string      // the Last-Event-ID of each follow request
	missed  int           // a dropped notice to send
	cut     bool          // end the open stream (a broken connection)
}

func (f *fakeNode) wakeFollowersLocked() {
	if f.follow.wake != nil {
		close(f.follow.wake)
		f.follow.wake = nil
	}
}

// change runs fn under the lock and wakes the open streams.
func (f *fakeNode) change(fn func(*followState)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.follow)
	f.wakeFollowersLocked()
}

func (f *fakeNode) followRequests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.follow.lastIDs...)
}

// serveFollow streams the lines from Last-Event-ID, or the newest n.
func (f *fakeNode) serveFollow(w http.ResponseWriter, r *http.Request, n int) {
	last := r.Header.Get("Last-Event-ID")
	f.mu.Lock()
	f.follow.lastIDs = append(f.follow.lastIDs, last)
	from := max(len(f.logLines)-n, 0)
	f.mu.Unlock()
	if last != "" {
		i, err := strconv.Atoi(strings.TrimPrefix(last, "f-"))
		if err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		from = i
	}
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	for {
		f.mu.Lock()
		lines := f.logLines[min(from, len(f.logLines)):]
		missed, cut := f.follow.missed, f.follow.cut
		f.follow.missed, f.follow.cut = 0, false
		if f.follow.wake == nil {
			f.follow.wake = make(chan struct{})
		}
		wake := f.follow.wake
		f.mu.Unlock()
		if missed > 0 {
			fmt.Fprintf(w, "event: dropped\ndata: {\"missed\":%d}\n\n", missed)
		}
		for _, l := range lines {
			from++
			fmt.Fprintf(w, "id: f-%d\nevent: line\ndata: {\"time\":%q,\"stream\":%q,\"text\":%q}\n\n",
				from, l.Time.Format(time.RFC3339Nano), l.Stream, l.Text)
		}
		fmt.Fprint(w, ": heartbeat\n\n")
		if rc.Flush() != nil || cut {
			return
		}
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		}
	}
}

// startFollow runs `macronode logs storage -f args...` until the test ends
// it with the returned stop, which gives the exit code.
func startFollow(t *testing.T, f *fakeNode, stdout, stderr *syncBuffer, args ...string) (stop func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		env := Env{Stdout: stdout, Stderr: stderr, Environ: func() []string { return []string{"RON_HTTP_ADDR=" + f.addr()} }}
		done <- Run(ctx, append([]string{"macronode", "logs", "storage", "-f"}, args...), env)
	}()
	t.Cleanup(cancel)
	return func() int { cancel(); return <-done }
}

// texts lists the lines printed (piped: each as the child wrote it).
func texts(out string) string {
	return strings.Join(strings.Split(strings.TrimSpace(out), "\n"), ",")
}

// -f prints the newest N lines, then each line as it is streamed, once.
func TestLogsFollow(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t, "")
	for i := range 6 {
		f.addLine(fmt.Sprintf("old %d", i))
	}
	var stdout, stderr syncBuffer
	stop := startFollow(t, f, &stdout, &stderr, "-n", "2")
	testutil.Eventually(t, 5*time.Second, "two lines on stdout", func() bool { return strings.Count(stdout.String(), "\n") >= 2 })
	f.addLine("new 1")
	f.addLine("new 2")
	testutil.Eventually(t, 5*time.Second, `"new 2" on stdout`, func() bool { return strings.Contains(stdout.String(), "new 2") })
	if code := stop(); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got, want := texts(stdout.String()), "old 4,old 5,new 1,new 2"; got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
	f.mu.Lock()
	polls := f.logPolls
	f.mu.Unlock()
	if stderr.String() != "" || polls != 0 {
		t.Errorf("stderr %q, %d JSON polls", stderr.String(), polls)
	}
	if got := f.followRequests(); len(got) != 1 {
		t.Errorf("follow requests %q, want one", got)
	}
}

// After a broken connection -f reconnects from the last line printed, and
// prints the node's dropped notices on stderr.
func TestLogsFollowReconnectAndDropped(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t, "")
	f.addLine("a")
	var stdout, stderr syncBuffer
	stop := startFollow(t, f, &stdout, &stderr)
	testutil.Eventually(t, 5*time.Second, `"a" on stdout`, func() bool { return strings.Contains(stdout.String(), "a") })
	f.change(func(s *followState) { s.cut = true })
	testutil.Eventually(t, 10*time.Second, "a second follow request", func() bool { return len(f.followRequests()) == 2 })
	f.addLine("b")
	f.change(func(s *followState) { s.missed = 7 })
	testutil.Eventually(t, 5*time.Second, "the dropped notice", func() bool { return strings.Contains(stderr.String(), "7 line(s) of storage dropped") })
	if code := stop(); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got := texts(stdout.String()); got != "a,b" {
		t.Errorf("printed %q, want a,b", got)
	}
	if got := f.followRequests(); got[0] != "" || got[1] != "f-1" {
		t.Errorf("Last-Event-IDs %q, want \"\" then f-1", got)
	}
}

func TestLogsFollowUnknownService(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t, "")
	// A name that is no plane is refused before asking the node.
	r := run(t, []string{"RON_HTTP_ADDR=" + f.addr()}, "logs", "nosuch", "-f")
	if r.code != ExitUsage || !strings.Contains(r.stderr, `unknown service "nosuch"`) {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	// A plane this node does not run: the node's 404.
	r = run(t, []string{"RON_HTTP_ADDR=" + f.addr()}, "logs", "dht", "-f")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "HTTP 404") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}
