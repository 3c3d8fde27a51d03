package storage

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
)

// chunkCounter counts the chunks verifyAll hashes.
func chunkCounter(srv *Server) *atomic.Int64 {
	var n atomic.Int64
	srv.hookVerifyChunk = func(*http.Request) { n.Add(1) }
	return &n
}

func TestVerifiedCache(t *testing.T) {
	srv, reg := newServer(t, Config{ChunkBytes: 4096})
	hashed := chunkCounter(srv)
	p := serve(t, srv, reg)
	data := randBytes(t, 100_000)
	addr := p.put(t, data).body.Address
	rng := map[string]string{"Range": "bytes=1000-1999"}

	resp, body, err := p.do(t, http.MethodGet, "/o/"+addr, rng)
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[1000:2000]) {
		t.Fatalf("first range GET: status %d err %v", resp.StatusCode, err)
	}
	first := hashed.Load()
	if first == 0 {
		t.Fatal("first range GET did not hash the blob")
	}
	for _, h := range []map[string]string{rng, {"Range": "bytes=-10"}, nil} { // range, range, small full GET
		resp, body, err = p.do(t, http.MethodGet, "/o/"+addr, h)
		if err != nil || resp.StatusCode/100 != 2 || len(body) == 0 {
			t.Fatalf("GET %v: status %d err %v", h, resp.StatusCode, err)
		}
	}
	if got := hashed.Load(); got != first {
		t.Fatalf("repeated GETs of an unchanged blob hashed %d more chunks", got-first)
	}
	if got := testutil.Metric(t, p.reg, "macronode_storage_verify_cache_hits_total"); got != 3 {
		t.Fatalf("verify_cache_hits_total = %v, want 3", got)
	}

	// Tamper after caching: the write changes mtime (set explicitly, in case
	// the clock is coarse) and ctime, so the copy is verified again.
	path := objectPath(p.dir, addr)
	flipByte(t, path, 50_000)
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	resp, body, _ = p.do(t, http.MethodGet, "/o/"+addr, rng)
	var eb errBody
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("range GET of a tampered cached blob: status %d, want 500", resp.StatusCode)
	}
	if mustJSONError(t, resp, body, &eb); eb.Code != "corrupt" {
		t.Fatalf("code %q", eb.Code)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("tampered blob not quarantined: %v", err)
	}
	if q := files(t, filepath.Join(p.dir, "quarantine")); len(q) != 1 {
		t.Fatalf("quarantine holds %v", q)
	}
	if srv.verified.len() != 0 {
		t.Fatal("the corrupt blob is still in the verified cache")
	}
}

// TestStreamedGetFillsCache: a full GET verified while streaming remembers
// the copy, so a later range read does not hash it again.
func TestStreamedGetFillsCache(t *testing.T) {
	srv, reg := newServer(t, Config{ChunkBytes: 4096})
	srv.verifyBefore = 1000
	hashed := chunkCounter(srv)
	p := serve(t, srv, reg)
	data := randBytes(t, 50_000)
	addr := p.put(t, data).body.Address
	if resp, body, err := p.do(t, http.MethodGet, "/o/"+addr, nil); err != nil || !bytes.Equal(body, data) {
		t.Fatalf("full GET: status %d err %v", resp.StatusCode, err)
	}
	resp, body, err := p.do(t, http.MethodGet, "/o/"+addr, map[string]string{"Range": "bytes=0-9"})
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[:10]) {
		t.Fatalf("range GET: status %d err %v", resp.StatusCode, err)
	}
	if n := hashed.Load(); n != 0 {
		t.Fatalf("range GET after a verified full GET hashed %d chunks", n)
	}
}

// TestVerifyStopsWhenClientLeaves: a range GET whose client goes away while
// the blob is being hashed stops reading it.
func TestVerifyStopsWhenClientLeaves(t *testing.T) {
	srv, reg := newServer(t, Config{ChunkBytes: 4096})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var chunks atomic.Int64
	srv.hookVerifyChunk = func(r *http.Request) {
		if chunks.Add(1) > 1 {
			return
		}
		cancel()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
			t.Error("the request context was not cancelled when the client left")
		}
	}
	p := serve(t, srv, reg)
	data := randBytes(t, 1<<20) // 256 chunks
	addr := p.put(t, data).body.Address
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.ts.URL+"/o/"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Range", "bytes=0-9")
	if resp, err := http.DefaultClient.Do(req); !errors.Is(err, context.Canceled) {
		if err == nil {
			resp.Body.Close()
		}
		t.Fatalf("GET = %v, want context.Canceled", err)
	}
	p.ts.Close() // waits for the handler to return
	if n := chunks.Load(); n != 1 {
		t.Fatalf("verification hashed %d chunks after the client left, want it to stop at once", n-1)
	}
	if srv.verified.len() != 0 {
		t.Fatal("an unfinished verification was cached")
	}
}

func TestVerifiedCacheLRU(t *testing.T) {
	c := newVerifiedCache(2)
	objs := []*memObject{{size: 1}, {size: 1}, {size: 1}}
	v := func(i int) Version { return Version{Size: 1, obj: objs[i]} }
	a := func(i int) [32]byte { return [32]byte{byte(i)} }
	c.add(a(0), v(0))
	c.add(a(1), v(1))
	if !c.verified(a(0), v(0)) { // a(0) is now the most recent
		t.Fatal("miss on a fresh entry")
	}
	c.add(a(2), v(2)) // evicts a(1), the least recently used
	if c.verified(a(1), v(1)) || !c.verified(a(0), v(0)) || !c.verified(a(2), v(2)) || c.len() != 2 {
		t.Fatalf("LRU eviction wrong (len %d)", c.len())
	}
	if c.verified(a(0), v(1)) { // another copy under the same address
		t.Fatal("hit for a different copy")
	}
	if c.len() != 1 {
		t.Fatalf("stale entry kept: len %d", c.len())
	}
	c.forget(a(2))
	if c.len() != 0 {
		t.Fatal("forget kept the entry")
	}
}

func TestVersionUnchanged(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	stat := func() Version {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return Version{Size: fi.Size(), file: fi}
	}
	v1 := stat()
	if !v1.unchanged(stat()) || !v1.sameCopy(stat()) {
		t.Fatal("an untouched file looks changed")
	}
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(p, past, past); err != nil {
		t.Fatal(err)
	}
	if v1.unchanged(stat()) || !v1.sameCopy(stat()) {
		t.Fatal("a new mtime must change the version but not the copy")
	}
	if err := os.Rename(p, p+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v1.sameCopy(stat()) {
		t.Fatal("a replacement file is the same copy")
	}
	if (Version{}).sameCopy(Version{}) {
		t.Fatal("the zero Version matches")
	}
}
