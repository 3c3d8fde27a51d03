package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/macronode/macronode/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var at = time.Date(2026, 12, 1, 5, 42, 49, 123456000, time.UTC)

// formatOne formats one line as an Output of format (journal: with
// priority prefixes) would.
func formatOne(format string, journal bool, stream string, l Line) string {
	o := &Output{json: format == "json", journal: journal}
	return string(o.Child("storage", nil).format(nil, at, stream, l))
}

func TestChildLineFormat(t *testing.T) {
	hcl := `{"@level":"warn","@message":"disk slow","@module":"svc-storage","@timestamp":"2026-12-01T05:42:49.000000Z","ms":12,"path":"/a b"}`
	tests := []struct {
		name    string
		format  string
		journal bool
		line    Line
		want    string
	}{
		{"json object passed through", "json", false, Line{Text: []byte(hcl)},
			`{"@service":"storage",` + hcl[1:] + "\n"},
		{"empty object", "json", false, Line{Text: []byte(`{}`)}, `{"@service":"storage"}` + "\n"},
		{"plain line wrapped", "json", false, Line{Text: []byte("hello \"x\"\\\t\x01 é \xff")},
			`{"@level":"info","@message":"hello \"x\"\\\t\u0001 é \ufffd","@service":"storage","@stream":"stderr","@timestamp":"2026-12-01T05:42:49.123456Z"}` + "\n"},
		{"crash line wrapped at error", "json", false, Line{Text: []byte("panic: boom"), Crash: true},
			`{"@level":"error","@message":"panic: boom","@service":"storage","@stream":"stderr","@timestamp":"2026-12-01T05:42:49.123456Z"}` + "\n"},
		{"spaced object is not taken as one", "json", false, Line{Text: []byte(`{ "a": 1 }`)},
			`{"@level":"info","@message":"{ \"a\": 1 }","@service":"storage","@stream":"stderr","@timestamp":"2026-12-01T05:42:49.123456Z"}` + "\n"},
		{"journal warn", "json", true, Line{Text: []byte(hcl)}, `<4>{"@service":"storage",` + hcl[1:] + "\n"},
		{"journal debug by level key", "json", true, Line{Text: []byte(`{"level":"debug","msg":"x"}`)}, `<7>{"@service":"storage","level":"debug","msg":"x"}` + "\n"},
		{"journal error", "json", true, Line{Text: []byte(`{"@level":"error","@message":"x"}`)}, `<3>{"@service":"storage","@level":"error","@message":"x"}` + "\n"},
		{"journal plain", "text", true, Line{Text: []byte("hello")}, "<6>storage | hello\n"},
		{"journal crash", "text", true, Line{Text: []byte("goroutine 1 [running]:"), Crash: true}, "<3>storage | goroutine 1 [running]:\n"},
		{"text renders an object", "text", false, Line{Text: []byte(hcl)},
			"2026-12-01T05:42:49.000000Z [WARN]  storage: disk slow: ms=12 path=\"/a b\"\n"},
		{"text keeps a record on one line", "text", false, Line{Text: []byte(`{"@level":"info","@message":"a\nb","k":"c\nd"}`)},
			"[INFO]  storage: \"a\\nb\": k=\"c\\nd\"\n"},
		{"text object without fields", "text", false, Line{Text: []byte(`{"level":"error","msg":"down"}`)}, "[ERROR] storage: down\n"},
		{"text plain line prefixed", "text", false, Line{Text: []byte("\tmain.go:12 +0x1d")}, "storage | \tmain.go:12 +0x1d\n"},
		{"text broken object prefixed", "text", false, Line{Text: []byte(`{"a":}`)}, "storage | {\"a\":}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := formatOne(tc.format, tc.journal, "stderr", tc.line)
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if tc.format == "json" {
				body := got
				if tc.journal {
					body = got[3:]
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(body), &m); err != nil || m["@service"] != "storage" {
					t.Errorf("not a JSON object with @service: %v %v", m, err)
				}
			}
		})
	}
}

// journalFile returns a temp file and the JOURNAL_STREAM value naming it.
func journalFile(t *testing.T) (*os.File, string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return f, fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// With JOURNAL_STREAM naming the output, the parent's own records and the
// child lines it passes on start with their syslog priority; naming another
// file, or malformed, adds none.
func TestJournalPriorities(t *testing.T) {
	f, stream := journalFile(t)
	_, other := journalFile(t)
	for _, env := range []string{other, "", "12", "a:b", "1:2:3"} {
		if JournalStream(env, f) {
			t.Errorf("JOURNAL_STREAM=%q taken as naming the file", env)
		}
	}
	if JournalStream(stream, &bytes.Buffer{}) {
		t.Error("a buffer taken as the journal stream")
	}
	log, out, err := NewParent("trace", "json", f, []string{"HOME=/x", "JOURNAL_STREAM=" + stream})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Journal() || !out.JSON() {
		t.Fatalf("journal %v json %v", out.Journal(), out.JSON())
	}
	log.Warn("disk almost full", "free", "1%", "detail", "two\nlines") // JSON: one line
	log.Error("boom")
	log.Info("hi")
	log.Debug("dbg")
	log.Trace("trc")
	out.Child("storage", nil).Write(at, "stderr", []Line{{Text: []byte(`{"@level":"warn","@message":"child warning"}`)}})
	lines := closeAndRead(t, out, f)
	want := []string{"<4>", "<3>", "<6>", "<7>", "<7>", "<4>"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines: %q", len(lines), lines)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]+"{") {
			t.Errorf("line %d = %q, want prefix %s", i, l, want[i])
		}
	}
	if !strings.Contains(lines[0], `"@message":"disk almost full"`) || !strings.Contains(lines[5], `"@service":"storage"`) {
		t.Errorf("lines: %q", lines)
	}
}

// closeAndRead closes out and returns the lines written to f.
func closeAndRead(t *testing.T, out *Output, f *os.File) []string {
	t.Helper()
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// In text, hclog puts a multi-line value on lines of its own: each gets
// the record's priority, since the journal takes every line as an entry.
func TestJournalMultiLineRecord(t *testing.T) {
	f, stream := journalFile(t)
	log, out, err := NewParent("info", "text", f, []string{"JOURNAL_STREAM=" + stream})
	if err != nil {
		t.Fatal(err)
	}
	log.Error("child crashed", "stack", "goroutine 1 [running]:\nmain.main()")
	lines := closeAndRead(t, out, f)
	if len(lines) < 2 {
		t.Fatalf("want a multi-line record, got %q", lines)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "<3>") {
			t.Errorf("line %q has no <3>", l)
		}
	}
}

// stallWriter blocks every write until released.
type stallWriter struct {
	release chan struct{}
	once    sync.Once
	out     testutil.SyncBuffer
}

func (w *stallWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.out.Write(p)
}

func (w *stallWriter) open() { w.once.Do(func() { close(w.release) }) }

// A stalled output never blocks the child's writer: past the queue, whole
// batches are dropped and counted, and every line is either written or
// counted, once the output moves again.
func TestChildWriteNeverBlocks(t *testing.T) {
	w := &stallWriter{release: make(chan struct{})}
	defer w.open()
	out, err := NewOutput(w, "json", "")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	dropped := 0
	c := out.Child("flood", func(n int) { mu.Lock(); dropped += n; mu.Unlock() })
	const batches, per = 40 * outputQueueLen, 10
	lines := make([]Line, per)
	for i := range lines {
		lines[i] = Line{Text: []byte(`{"@level":"info","@message":"x"}`)}
	}
	done := make(chan struct{})
	go func() {
		for range batches {
			c.Write(at, "stdout", lines)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked on a stalled output")
	}
	mu.Lock()
	d := dropped
	mu.Unlock()
	// Held at most: a full queue, one batch in hand, and writeChunk bytes
	// gathered by the writer into the write that stalls.
	lineBytes := len(c.format(nil, at, "stdout", lines[0]))
	if least := batches*per - (outputQueueLen+1)*per - (writeChunk/lineBytes + per); d < least {
		t.Errorf("dropped %d lines, want at least %d", d, least)
	}
	w.open()
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	written := strings.Count(w.out.String(), "\n")
	if written+dropped != batches*per {
		t.Errorf("written %d + dropped %d != %d", written, dropped, batches*per)
	}
	c.Write(at, "stdout", lines) // after Close: dropped, not written
	if dropped != batches*per-written+per {
		t.Errorf("a write after Close was not counted as dropped")
	}
}

// Big batches are bounded by bytes, not only by count: with the writer
// stuck, at most outputQueueBytes wait (plus what the writer holds).
func TestQueueBoundedInBytes(t *testing.T) {
	w := &stallWriter{release: make(chan struct{})}
	defer w.open()
	out, err := NewOutput(w, "text", "")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	dropped := 0
	c := out.Child("big", func(n int) { mu.Lock(); dropped += n; mu.Unlock() })
	line := []Line{{Text: bytes.Repeat([]byte("x"), 512<<10)}}
	const total = 40 // far fewer than outputQueueLen: only the byte bound can drop
	for range total {
		c.Write(at, "stdout", line)
	}
	mu.Lock()
	kept := total - dropped
	mu.Unlock()
	if most := outputQueueBytes/len(line[0].Text) + 2; kept > most {
		t.Errorf("%d batches of 512 KiB held, want at most %d", kept, most)
	}
	w.open()
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if written := strings.Count(w.out.String(), "\n"); written != kept {
		t.Errorf("written %d, kept %d", written, kept)
	}
	if q := out.queued.Load(); q != 0 {
		t.Errorf("%d bytes still counted as queued after Close", q)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// Lines that the output refuses are counted as dropped; the parent's own
// record gets the error.
func TestWriteErrorCountsDrops(t *testing.T) {
	out, err := NewOutput(failWriter{}, "text", "")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	dropped := 0
	c := out.Child("x", func(n int) { mu.Lock(); dropped += n; mu.Unlock() })
	c.Write(at, "stdout", []Line{{Text: []byte("a")}, {Text: []byte("b")}})
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if dropped != 2 {
		t.Errorf("dropped %d, want 2", dropped)
	}
	if _, err := out.Write([]byte("own record\n")); err == nil {
		t.Error("the parent's own record hid a write error")
	}
	out.Logger("macronode", hclog.Info).Info("no panic on a failing output")
}

// Writes racing Close: every line is written or counted, none lost.
func TestCloseLosesNothing(t *testing.T) {
	var w testutil.SyncBuffer
	out, err := NewOutput(&w, "json", "")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	dropped := 0
	c := out.Child("x", func(n int) { mu.Lock(); dropped += n; mu.Unlock() })
	const writers, each = 4, 500
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				c.Write(at, "stdout", []Line{{Text: []byte("a")}})
			}
		}()
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if written := strings.Count(w.String(), "\n"); written+dropped != writers*each {
		t.Errorf("written %d + dropped %d != %d", written, dropped, writers*each)
	}
}
