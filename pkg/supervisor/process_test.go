package supervisor

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/logging"
)

func grandchildPID(t *testing.T, h *harness, name string) int {
	t.Helper()
	var pid int
	eventually(t, 10*time.Second, "grandchild pid in logs", func() bool {
		lines, _ := h.s.Logs(name, 0)
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l.Text, "grandchild="); ok {
				pid, _ = strconv.Atoi(v)
			}
		}
		return pid != 0
	})
	return pid
}

// A grandchild in the child's group holds the pipes: the exit is still seen,
// the group is swept and the child restarted.
func TestGrandchildInGroupIsSwept(t *testing.T) {
	h := startHarness(t, []Spec{fakeSpec(t, "gc", "grandchild")}, nil)
	first := h.waitReady("gc", 0)
	gpid := grandchildPID(t, h, "gc")
	if gone(gpid) {
		t.Fatalf("grandchild %d not running", gpid)
	}
	// Kill only the child: the grandchild keeps stdout/stderr open.
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := h.waitReady("gc", first.PID)
	if len(st.Exits) != 1 || st.Exits[0].Description != "signal: killed" {
		t.Errorf("exits %+v", st.Exits)
	}
	eventually(t, 5*time.Second, "grandchild killed with the group", func() bool { return gone(gpid) })
}

// A grandchild that left the group (setsid) holds the pipes forever: the
// bounded pipe drain (pipeDrainDelay) still lets the owner reap and restart.
func TestGrandchildOutsideGroupDoesNotHangWait(t *testing.T) {
	h := startHarness(t, []Spec{fakeSpec(t, "gc", "grandchild", "MN_FAKE_SETSID=1")}, nil)
	first := h.waitReady("gc", 0)
	gpid := grandchildPID(t, h, "gc")
	t.Cleanup(func() { _ = syscall.Kill(gpid, syscall.SIGKILL) })
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "readiness drops at once", func() bool { return !h.status("gc").Ready })
	st := h.waitReady("gc", first.PID)
	if len(st.Exits) != 1 || st.Exits[0].PID != first.PID || st.Exits[0].Description != "signal: killed" {
		t.Errorf("exits %+v", st.Exits)
	}
	if gone(gpid) {
		t.Error("escaped grandchild unexpectedly gone (test premise broken)")
	}
	// The new child made an escaped grandchild of its own: kill it now so
	// that shutdown does not wait out the drain bound again.
	var gpid2 int
	eventually(t, 10*time.Second, "second grandchild", func() bool {
		gpid2 = grandchildPID(t, h, "gc")
		return gpid2 != gpid
	})
	_ = syscall.Kill(gpid2, syscall.SIGKILL)
}

// blockingWriter stalls writes of flood lines (block: of any line) until
// released: a log sink that fell far behind.
type blockingWriter struct {
	release chan struct{}
	once    sync.Once
	block   bool
	out     syncBuffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	if w.block || bytes.Contains(p, []byte("flood line")) {
		<-w.release
	}
	return w.out.Write(p)
}

func (w *blockingWriter) open() { w.once.Do(func() { close(w.release) }) }

// A flooding child is read at full speed; a stalled sink drops (and counts)
// lines instead of blocking the child; memory stays bounded by the ring.
func TestFloodWithSlowSink(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	out, err := logging.NewOutput(w, "json", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = out.Close() }) // after the harness stops Run
	h := startHarness(t, []Spec{fakeSpec(t, "flood", "flood")}, func(o *Options) {
		o.LogLines = 100
		o.LogOutput = out
	})
	t.Cleanup(w.open) // runs before the harness stops Run
	first := h.waitReady("flood", 0)
	c := h.s.Collector()
	labels := map[string]string{"service": "flood", "stream": "stdout"}
	eventually(t, 20*time.Second, "lines dropped", func() bool {
		return counter(t, c, "macronode_child_log_dropped_total", map[string]string{"service": "flood"}) > 1000
	})
	before := counter(t, c, "macronode_child_log_lines_total", labels)
	eventually(t, 20*time.Second, "parent keeps reading", func() bool {
		return counter(t, c, "macronode_child_log_lines_total", labels) > before+10000
	})
	lines, err := h.s.Logs("flood", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 100 {
		t.Errorf("ring holds %d lines, want 100", len(lines))
	}
	if got, _ := h.s.Logs("flood", 7); len(got) != 7 || got[6].Time.Before(got[0].Time) {
		t.Errorf("Logs(7) = %d lines", len(got))
	}
	if st := h.status("flood"); st.PID != first.PID || !st.Ready {
		t.Errorf("flooding child not steady: %+v", st)
	}
	w.open()
}

// Over-long lines are cut and marked; hclog JSON lines are passed on as
// they came with the service spliced in, plain lines wrapped.
func TestChildLogLines(t *testing.T) {
	h := startHarness(t, []Spec{fakeSpec(t, "talk", "good", "MN_FAKE_LONGLINE=1")}, nil)
	h.waitReady("talk", 0)
	eventually(t, 10*time.Second, "line after the long one", func() bool { return h.logsContain("talk", "after long line") })
	lines, _ := h.s.Logs("talk", 0)
	var long *LogLine
	for i := range lines {
		if strings.HasPrefix(lines[i].Text, "LLLL") {
			long = &lines[i]
		}
	}
	if long == nil || len(long.Text) != maxLineBytes+len(truncatedMark) || !strings.HasSuffix(long.Text, truncatedMark) {
		t.Fatalf("long line not cut to %d bytes + mark: %v", maxLineBytes, long != nil)
	}
	if !h.logsContain("talk", "plain line") {
		t.Error("plain stdout line missing from the ring")
	}
	eventually(t, 5*time.Second, "passed-on JSON line", func() bool {
		for _, e := range h.logs.entries() {
			if e["@message"] == "hello from child" {
				return e["@level"] == "warn" && e["k"] == "v" && e["@service"] == "talk"
			}
		}
		return false
	})
	eventually(t, 5*time.Second, "wrapped plain line", func() bool {
		for _, e := range h.logs.entries() {
			if e["@message"] == "plain line" {
				return e["@level"] == "info" && e["@stream"] == "stdout" && e["@service"] == "talk"
			}
		}
		return false
	})
}

func TestRing(t *testing.T) {
	r := newRing(3)
	if got := r.last(0); len(got) != 0 {
		t.Fatalf("empty ring: %v", got)
	}
	for i := 1; i <= 5; i++ {
		r.add(LogLine{Text: fmt.Sprint(i)})
		var texts []string
		for _, l := range r.last(0) {
			texts = append(texts, l.Text)
		}
		want := map[int]string{1: "1", 2: "1,2", 3: "1,2,3", 4: "2,3,4", 5: "3,4,5"}[i]
		if strings.Join(texts, ",") != want {
			t.Errorf("after %d adds: %v, want %s", i, texts, want)
		}
	}
	if got := r.last(2); len(got) != 2 || got[0].Text != "4" || got[1].Text != "5" {
		t.Errorf("last(2) = %v", got)
	}
}

func TestReadLines(t *testing.T) {
	long := "a" + strings.Repeat("é", maxLineBytes) // the cut at maxLineBytes falls inside a rune
	in := "one\r\ntwo\n" + long + "\nthree\n" + strings.Repeat("x", 3*maxLineBytes) + "\nfour"
	sink := &logSink{ring: newRing(10), stdout: nopCounter(), stderr: nopCounter(), dropped: nopCounter()}
	readLines(strings.NewReader(in), "stdout", sink, nil)
	var got []string
	for _, l := range sink.ring.last(0) {
		got = append(got, l.Text)
	}
	want := []string{"one", "two", "a" + strings.Repeat("é", maxLineBytes/2-1) + truncatedMark, "three",
		strings.Repeat("x", maxLineBytes) + truncatedMark, "four"}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %.40q (len %d), want %.40q (len %d)", i, got[i], len(got[i]), want[i], len(want[i]))
		}
	}
}

// When the parent dies (SIGKILL, no chance to clean up), Pdeathsig kills the
// child, even one that ignores SIGTERM and its control connection closing.
func TestChildDiesWithParent(t *testing.T) {
	cmd := exec.Command(testExe(t))
	cmd.Env = append(os.Environ(), "MN_FAKE_CHILD=parent", "GORACE=atexit_sleep_ms=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var child int
	sc := bufio.NewScanner(out)
	for child == 0 && sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "dir="); ok {
			t.Cleanup(func() { _ = os.RemoveAll(v) })
		}
		if v, ok := strings.CutPrefix(sc.Text(), "child="); ok {
			child, _ = strconv.Atoi(v)
		}
	}
	if child == 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("fake parent never reported a ready child")
	}
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if gone(child) {
		t.Fatalf("child %d not running", child)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	eventually(t, 5*time.Second, "orphaned child killed by Pdeathsig", func() bool { return gone(child) })
}
