package mailbox

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/macronode/macronode/internal/testutil"
)

// On a full file system a send answers 507 storage_full (never 500), what
// was stored can still be received, and sends work again once space is
// freed, without a restart.
func TestFullDiskAnswers507(t *testing.T) {
	dir := testutil.SmallFS(t, "2m")
	e := newEnv(t, Config{DataDir: dir})
	e.send("kept", "before the disk filled")
	free := testutil.Fill(t, dir)
	body := []byte(strings.Repeat("m", 8<<10))
	full := false
	for i := 0; i < 5000 && !full; i++ {
		switch st, out := e.do(context.Background(), "POST", "/mailboxes/filler/messages", body, nil); st {
		case http.StatusCreated:
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
}
