package index

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/macronode/macronode/internal/testutil"
)

// On a full file system a write answers 507 storage_full (never 500), reads
// keep working, and writes work again once space is freed, without a restart.
func TestFullDiskAnswers507(t *testing.T) {
	dir := testutil.SmallFS(t, "1m")
	h := newHarness(t, Config{DataDir: dir})
	addr := "b3:" + strings.Repeat("a", 64)
	if r := h.do("PUT", "/names/kept", putBodyFor(addr)); r.status != http.StatusCreated {
		t.Fatalf("PUT before the disk filled: %d %s", r.status, r.raw)
	}
	free := testutil.Fill(t, dir)
	full := false
	for i := 0; i < 20000 && !full; i++ {
		name := fmt.Sprintf("filler/%04d/%s", i, strings.Repeat("n", 200))
		switch r := h.do("PUT", "/names/"+name, putBodyFor(addr)); r.status {
		case http.StatusCreated:
		case http.StatusInsufficientStorage:
			if r.body["code"] != "storage_full" {
				t.Fatalf("507 body %s: want code storage_full", r.raw)
			}
			full = true
		default:
			t.Fatalf("PUT on a filling disk: %d %s, want 201 or 507", r.status, r.raw)
		}
	}
	if !full {
		t.Fatal("20000 names fitted on a full 1 MiB file system: no 507 seen")
	}
	if r := h.do("GET", "/names/kept", ""); r.status != http.StatusOK || r.body["address"] != addr {
		t.Fatalf("GET on a full disk: %d %s", r.status, r.raw)
	}
	free()
	if r := h.do("PUT", "/names/after", putBodyFor(addr)); r.status != http.StatusCreated {
		t.Fatalf("PUT after space was freed: %d %s", r.status, r.raw)
	}
	if r := h.do("GET", "/names/after", ""); r.status != http.StatusOK {
		t.Fatalf("GET of the name written after space was freed: %d %s", r.status, r.raw)
	}
}
