package mailbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
)

func TestParseRecord(t *testing.T) {
	good := appendRecord(nil, recDel, u64(7))
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-1] ^= 1
	huge := append([]byte(nil), good...)
	copy(huge[4:], []byte{0xff, 0xff, 0xff, 0xff})
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"whole record", good, true},
		{"record and more", append(append([]byte(nil), good...), 1, 2, 3), true},
		{"empty", nil, false},
		{"header only", good[:recHeader-1], false},
		{"truncated payload", good[:len(good)-1], false},
		{"flipped bit", flipped, false},
		{"length past the end", huge, false},
		{"zeros", make([]byte, 32), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, p, n, err := parseRecord(tc.in)
			if !tc.ok {
				if !errors.Is(err, errBadRecord) {
					t.Fatalf("parseRecord = %d %x %d %v, want errBadRecord", kind, p, n, err)
				}
				return
			}
			if err != nil || kind != recDel || n != len(good) || beU64(p) != 7 {
				t.Fatalf("parseRecord = %d %x %d %v", kind, p, n, err)
			}
		})
	}
}

// lastSegment is the path of the newest segment file of e's log.
func lastSegment(t *testing.T, dataDir string) string {
	t.Helper()
	ids, err := segmentIDs(filepath.Join(dataDir, LogDir))
	if err != nil || len(ids) == 0 {
		t.Fatalf("segments: %v %v", ids, err)
	}
	return filepath.Join(dataDir, LogDir, segName(ids[len(ids)-1]))
}

// Garbage over (or after) the tail of the log is cut off at start-up and
// counted; every record before it is intact and new sends append after it.
func TestTornTailIsTruncated(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tear     func(f *os.File, size int64) error
		lostLast bool // the last message's own record was damaged
	}{
		{"garbage over the last record", func(f *os.File, size int64) error {
			_, err := f.WriteAt([]byte("\xde\xad\xbe\xef garbage"), size-12)
			return err
		}, true},
		{"last record cut short", func(f *os.File, size int64) error { return f.Truncate(size - 3) }, true},
		{"garbage after the last record", func(f *os.File, size int64) error {
			_, err := f.WriteAt([]byte(strings.Repeat("\x00\x13\x37", 100)), size)
			return err
		}, false},
		{"a header claiming a huge record", func(f *os.File, size int64) error {
			_, err := f.WriteAt([]byte{1, 2, 3, 4, 0x7f, 0xff, 0xff, 0xff, recPut}, size)
			return err
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			var ids []string
			for i := 0; i < 10; i++ {
				ids = append(ids, e.send("t", fmt.Sprintf("m%d", i)))
			}
			e.stop()
			path := lastSegment(t, e.cfg.DataDir)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.tear(f, int64(lastNonZero(data))); err != nil { // the end of the records
				t.Fatal(err)
			}
			_ = f.Close()
			e.start()
			if got := metricValue(t, e.reg, "macronode_mailbox_torn_tails_total", ""); got != 1 {
				t.Fatalf("torn_tails_total = %v, want 1", got)
			}
			want := ids
			if tc.lostLast {
				want = ids[:9]
			}
			after := e.send("t", "after the tear")
			e.restart() // the new record sits where the torn one was
			got := e.receive("t", "max=100")
			if len(got) != len(want)+1 {
				t.Fatalf("after the tear got %d messages, want %d: %+v", len(got), len(want)+1, got)
			}
			for i, id := range want {
				if got[i].ID != id || got[i].data(t) != fmt.Sprintf("m%d", i) {
					t.Fatalf("message %d = %+v, want id %s body m%d", i, got[i], id, i)
				}
			}
			if last := got[len(got)-1]; last.ID != after || last.data(t) != "after the tear" {
				t.Fatalf("send after the tear: %+v", last)
			}
			if v := metricValue(t, e.reg, "macronode_mailbox_torn_tails_total", ""); v != 0 {
				t.Fatalf("a clean restart counted %v torn tails", v)
			}
		})
	}
}

func dirSize(t *testing.T, dir string) (n int64, files int) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
		files++
	}
	return n, files
}

// Acked segments are deleted; a message pinning the oldest segment is
// copied forward so that the segment can go, and survives a restart.
func TestCompactionBoundsTheLog(t *testing.T) {
	e := newEnv(t, Config{SegmentBytes: 64 << 10, CompactFreeRatio: 0.5})
	ldir := filepath.Join(e.cfg.DataDir, LogDir)
	pinned := e.send("keep", "pinned in the first segment")
	body := strings.Repeat("z", 8<<10)
	for round := 0; round < 5; round++ {
		for i := 0; i < 40; i++ {
			e.send("big", body)
		}
		e.drain("big")
	}
	e.send("big", "one more commit runs compaction")
	size, files := dirSize(t, ldir)
	t.Logf("log after 200 sends of 8 KiB, all but 2 acked: %d bytes in %d segments", size, files)
	if size > 3*(64<<10) || files > 3 {
		t.Fatalf("log holds %d bytes in %d segments: compaction did not bound it", size, files)
	}
	if got := metricValue(t, e.reg, "macronode_mailbox_compactions_total", ""); got < 20 {
		t.Fatalf("compactions_total = %v, want one per deleted segment", got)
	}
	e.restart()
	got := e.receive("keep", "")
	if len(got) != 1 || got[0].ID != pinned || got[0].data(t) != "pinned in the first segment" {
		t.Fatalf("pinned message after compaction and restart: %+v", got)
	}
	if got := e.receive("big", ""); len(got) != 1 || got[0].data(t) != "one more commit runs compaction" {
		t.Fatalf("last message after restart: %+v", got)
	}
}

// A data dir of the bbolt version is migrated at start: its messages,
// delivery counts, dead-letter boxes and idempotency keys are kept, its
// leases end, the old file is renamed, and ids continue above the old ones.
func TestMigrateFromBolt(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	db, err := bolt.Open(filepath.Join(dir, BoltFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs := map[uint64]record{
		3: {box: "a", enqueuedAt: now.UnixNano(), visibleAt: now.UnixNano(), deliveries: 1},
		5: {box: "a", enqueuedAt: now.UnixNano(), visibleAt: now.Add(time.Hour).UnixNano(), deliveries: 2, receipt: "leased"},
		6: {box: "a.dlq", enqueuedAt: now.UnixNano(), visibleAt: now.UnixNano()},
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket([]byte("meta"))
		body, _ := tx.CreateBucket([]byte("body"))
		idem, _ := tx.CreateBucket([]byte("idem"))
		for seq, r := range recs {
			_ = meta.Put(u64(seq), r.encode())
			_ = body.Put(u64(seq), []byte(fmt.Sprintf("body %d", seq)))
		}
		_ = meta.SetSequence(9)
		return idem.Put([]byte("a\x00key-1"), encodeIdem(now, 3))
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	e := newEnv(t, Config{DataDir: dir})
	if _, err := os.Stat(filepath.Join(dir, BoltFile+MigratedSuffix)); err != nil {
		t.Fatalf("old file not renamed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, BoltFile)); !os.IsNotExist(err) {
		t.Fatalf("%s still in place: %v", BoltFile, err)
	}
	got := e.receive("a", "max=10")
	if len(got) != 2 || got[0].ID != formatID(3) || got[0].Deliveries != 2 || got[1].ID != formatID(5) ||
		got[1].Deliveries != 3 || got[1].data(t) != "body 5" {
		t.Fatalf("migrated box a: %+v", got)
	}
	if dl := e.receive("a.dlq", ""); len(dl) != 1 || dl[0].data(t) != "body 6" {
		t.Fatalf("migrated dead-letter box: %+v", dl)
	}
	st, out := e.do(t.Context(), "POST", "/mailboxes/a/messages", []byte("again"), map[string]string{"Idempotency-Key": "key-1"})
	if st != 200 || decode[map[string]string](t, out)["id"] != formatID(3) {
		t.Fatalf("migrated idempotency key: %d %s", st, out)
	}
	if id := e.send("a", "new"); id <= formatID(9) {
		t.Fatalf("new id %s not above the migrated sequence 9", id)
	}
	e.restart() // a second start does not migrate again
	if info := e.info("a"); info.Depth != 3 {
		t.Fatalf("after a second start: %+v", info)
	}
	// A crash between the two renames: the log is complete, the old file
	// still in place. The next start only finishes the rename.
	e.stop()
	if err := os.Rename(filepath.Join(dir, BoltFile+MigratedSuffix), filepath.Join(dir, BoltFile)); err != nil {
		t.Fatal(err)
	}
	e.start()
	if info := e.info("a"); info.Depth != 3 {
		t.Fatalf("after a start that found both the log and %s: %+v", BoltFile, info)
	}
	if _, err := os.Stat(filepath.Join(dir, BoltFile)); !os.IsNotExist(err) {
		t.Fatalf("%s still in place: %v", BoltFile, err)
	}
}

// A segment whose file grew past its zero-filled part (an append fitted
// where the zero fill did not) is filled on from its records' end, never
// over them.
func TestGrowNeverOverwritesRecords(t *testing.T) {
	dir := t.TempDir()
	open := func() *store {
		st, err := openStore(dir, hclog.NewNullLogger(), DefaultSegmentBytes, DefaultCompactFreeRatio)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	meta := record{box: "g"}.encode()
	put := func(st *store, seq uint64) {
		if err := st.appendBatch([]write{{seq: seq, meta: meta, body: []byte(fmt.Sprint("body ", seq)), putBody: true}}); err != nil {
			t.Fatal(err)
		}
	}
	st := open()
	put(st, 1)
	seg := st.active()
	seg.filled = 0 // as if the zero fill had failed and the append grown the file
	put(st, 2)
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	st = open()
	defer func() { _ = st.close() }()
	for _, seq := range []uint64{1, 2} {
		if b, ok, err := st.readBody(seq); err != nil || !ok || string(b) != fmt.Sprint("body ", seq) {
			t.Fatalf("message %d after reopen: %q %v %v", seq, b, ok, err)
		}
	}
	if st.torn.Load() != 0 {
		t.Fatal("a clean log replayed with a torn tail")
	}
}

// Compaction keeps the newest state of what it copies forward: a message
// moved to a dead-letter box, one delayed by a nack, an idempotency key and
// a delivery count, all first written in segments that compaction removes.
func TestCompactionKeepsNewestState(t *testing.T) {
	e := newEnv(t, Config{SegmentBytes: 32 << 10, MaxDeliveries: 1, IdempotencyWindow: time.Hour})
	_, out := e.do(t.Context(), "POST", "/mailboxes/keep/messages", []byte("keyed"), map[string]string{"Idempotency-Key": "k"})
	keyed := decode[map[string]string](t, out)["id"]
	poison := e.send("jobs", "poison")
	m := e.receive("jobs", "")[0]
	e.settle("jobs", "nack", nil, m.Receipt) // deliveries used up: to jobs.dlq
	e.send("later", "delayed")
	d := e.receive("later", "")[0]
	e.settle("later", "nack", map[string]any{"delay": "1h"}, d.Receipt)
	body := strings.Repeat("f", 4<<10)
	for round := 0; round < 4; round++ { // roll the segments over several times
		for i := 0; i < 20; i++ {
			e.send("churn", body)
		}
		e.drain("churn")
	}
	ids, err := segmentIDs(filepath.Join(e.cfg.DataDir, LogDir))
	if err != nil || ids[0] == 1 {
		t.Fatalf("segment 1 was not compacted away: %v %v", ids, err)
	}
	e.restart()
	if dl := e.receive("jobs.dlq", ""); len(dl) != 1 || dl[0].ID != poison || dl[0].data(t) != "poison" {
		t.Fatalf("dead-letter box after compaction: %+v", dl)
	}
	if info := e.info("later"); info.Depth != 1 || info.InFlight != 0 {
		t.Fatalf("delayed box after compaction: %+v", info)
	}
	if got := e.receive("later", ""); len(got) != 0 {
		t.Fatalf("the nack's delay was lost in compaction: %+v", got)
	}
	st, out := e.do(t.Context(), "POST", "/mailboxes/keep/messages", []byte("again"), map[string]string{"Idempotency-Key": "k"})
	if st != 200 || decode[map[string]string](t, out)["id"] != keyed {
		t.Fatalf("idempotency key after compaction: %d %s", st, out)
	}
}
