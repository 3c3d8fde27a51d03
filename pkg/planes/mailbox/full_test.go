package mailbox

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/macronode/macronode/internal/testutil"
)

// On a full file system a send answers 507 storage_full (never 500), what
// was stored can still be received, and sends work again once space is
// freed, without a restart.
func TestFullDiskAnswers507(t *testing.T) {
	for _, seg := range []int64{DefaultSegmentBytes, 64 << 10} {
		t.Run(fmt.Sprintf("segment_bytes=%d", seg), func(t *testing.T) { fullDisk(t, seg) })
	}
}

// fullDisk runs the full-disk story with segments of segBytes: with small
// ones the disk also fills while a new segment is started.
func fullDisk(t *testing.T, segBytes int64) {
	dir := testutil.SmallFS(t, "2m")
	e := newEnv(t, Config{DataDir: dir, SegmentBytes: segBytes})
	e.send("kept", "before the disk filled")
	free := testutil.Fill(t, dir)
	body := []byte(strings.Repeat("m", 8<<10))
	full, stored := false, 0
	for i := 0; i < 5000 && !full; i++ {
		switch st, out := e.do(context.Background(), "POST", "/mailboxes/filler/messages", body, nil); st {
		case http.StatusCreated:
			stored++
		case http.StatusInsufficientStorage:
			if decode[map[string]string](t, out)["code"] != "storage_full" {
				t.Fatalf("507 body %s: want code storage_full", out)
			}
			full = true
		default:
			t.Fatalf("send on a filling disk: %d %s, want 201 or 507", st, out)
		}
	}
	if !full {
		t.Fatal("5000 messages of 8 KiB fitted on a full 2 MiB file system: no 507 seen")
	}
	msgs := e.receive("kept", "max=1")
	if len(msgs) != 1 || msgs[0].data(t) != "before the disk filled" {
		t.Fatalf("receive on a full disk: %+v", msgs)
	}
	free()
	e.send("after", "space freed")
	if msgs := e.receive("after", "max=1"); len(msgs) != 1 {
		t.Fatalf("receive after space was freed: %+v", msgs)
	}
	// The failed writes left nothing behind in the log: it replays clean
	// and holds every message that got a 201.
	e.restart()
	if v := metricValue(t, e.reg, "macronode_mailbox_torn_tails_total", ""); v != 0 {
		t.Fatalf("the log has a torn tail after the full disk: %v", v)
	}
	if info := e.info("filler"); info.Depth != stored {
		t.Fatalf("after restart the box holds %d messages, %d got 201", info.Depth, stored)
	}
	if info := e.info("after"); info.Depth != 1 {
		t.Fatalf("after restart: %+v", info)
	}
}
