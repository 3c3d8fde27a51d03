package audit

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/events"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, o Options) *Log {
	t.Helper()
	l, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// Append returns only once the line is in the file (another reader, as
// after a crash, sees it at once), with the directory and file private.
func TestAppendDurable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := open(t, Options{Dir: dir})
	if err := l.Append(Record{Kind: KindFault, Who: "addr:127.0.0.1", Action: "POST /api/v1/services/storage/fault", Service: "storage", Result: "202",
		Detail: map[string]any{"kind": "kill", "pid": 42}}); err != nil {
		t.Fatal(err)
	}
	got := lines(t, filepath.Join(dir, FileName))
	if len(got) != 1 || !strings.Contains(got[0], `"kind":"fault"`) || !strings.Contains(got[0], `"pid":42`) || !strings.Contains(got[0], `"time":"`) {
		t.Fatalf("file holds %q", got)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, FileName): 0o600} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", path, fi.Mode().Perm(), err, want)
		}
	}
	// Reopening appends to what is there.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(Record{Kind: KindAdmin}); err == nil {
		t.Error("Append after Close succeeded")
	}
	l2 := open(t, Options{Dir: dir})
	if err := l2.Append(Record{Kind: KindAdmin, Result: "200"}); err != nil {
		t.Fatal(err)
	}
	recs, err := l2.Read(time.Time{}, 0)
	if err != nil || len(recs) != 2 || recs[0].Kind != KindFault || recs[1].Kind != KindAdmin {
		t.Fatalf("Read = %+v, %v", recs, err)
	}
}

func TestRotationKeepsN(t *testing.T) {
	dir := t.TempDir()
	l := open(t, Options{Dir: dir, MaxBytes: 300, Keep: 3})
	for i := range 40 {
		if err := l.Append(Record{Kind: KindAdmin, Action: "POST /x", Result: strings.Repeat("r", 20), Service: string(rune('a' + i%26))}); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if fi, _ := e.Info(); fi.Size() > 300 {
			t.Errorf("%s is %d bytes, over MaxBytes", e.Name(), fi.Size())
		}
	}
	if strings.Join(names, ",") != "audit.log,audit.log.1,audit.log.2" {
		t.Fatalf("files %v", names)
	}
	recs, err := l.Read(time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || len(recs) >= 40 || recs[len(recs)-1].Service != string(rune('a'+39%26)) {
		t.Fatalf("read %d records, last %+v", len(recs), recs[len(recs)-1])
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Time.Before(recs[i-1].Time) {
			t.Fatalf("records out of order at %d", i)
		}
	}
}

func TestReadSinceAndLimit(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		l := open(t, Options{Dir: dir})
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 10 {
			if err := l.Append(Record{Time: t0.Add(time.Duration(i) * time.Minute), Kind: KindAdmin, Result: string(rune('0' + i))}); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			since time.Time
			limit int
			want  string
		}{
			{limit: 0, want: "0123456789"},
			{limit: 3, want: "789"},
			{since: t0.Add(5 * time.Minute), want: "56789"},
			{since: t0.Add(5 * time.Minute), limit: 2, want: "89"},
			{since: t0.Add(time.Hour), want: ""},
		} {
			recs, err := l.Read(tc.since, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			for _, r := range recs {
				got += r.Result
			}
			if got != tc.want {
				t.Errorf("dir %q since %v limit %d: %q, want %q", dir, tc.since, tc.limit, got, tc.want)
			}
		}
	}
}

// Under amnesia nothing is written anywhere; the ring keeps the newest.
func TestMemoryRing(t *testing.T) {
	l := open(t, Options{MemRecords: 3})
	if l.Path() != "" {
		t.Fatalf("memory log has path %q", l.Path())
	}
	for i := range 5 {
		if err := l.Append(Record{Kind: KindAdmin, Result: string(rune('0' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	recs, _ := l.Read(time.Time{}, 0)
	if len(recs) != 3 || recs[0].Result != "2" || recs[2].Result != "4" {
		t.Fatalf("ring %+v", recs)
	}
}

func TestWatchRecordsCrashesAndBreaker(t *testing.T) {
	bus, err := events.New("boot", 0)
	if err != nil {
		t.Fatal(err)
	}
	l := open(t, Options{})
	done := l.Watch(bus, hclog.NewNullLogger())
	bus.Publish(events.Exited, "storage", map[string]any{"pid": 1, "expected": true})
	bus.Publish(events.Exited, "storage", map[string]any{"pid": 2, "expected": false, "signal": "killed"})
	bus.Publish(events.Failed, "index", map[string]any{"retry_seconds": 300})
	bus.Publish(events.Spawned, "storage", nil)
	testutil.Eventually(t, 5*time.Second, "two records", func() bool {
		recs, _ := l.Read(time.Time{}, 0)
		return len(recs) == 2
	})
	bus.Close()
	<-done
	recs, _ := l.Read(time.Time{}, 0)
	if recs[0].Kind != KindCrash || recs[0].Service != "storage" || recs[1].Kind != KindBreaker || recs[1].Service != "index" {
		t.Fatalf("records %+v", recs)
	}
}
