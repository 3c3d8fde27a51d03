package storage

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/address"
)

func TestRoundTrip(t *testing.T) {
	p := newPlane(t, Config{ChunkBytes: 4096})
	var total int64
	for _, n := range []int{0, 1, 4095, 4096, 4097, 100_000, 1 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := randBytes(t, n)
			res := p.put(t, data)
			if res.status != http.StatusCreated {
				t.Fatalf("POST status %d (%+v)", res.status, res.err)
			}
			if want := address.Format(blake3.Sum256(data)); res.body.Address != want || res.body.Size != int64(n) {
				t.Fatalf("POST = %+v, want address %s size %d", res.body, want, n)
			}
			resp, got, err := p.do(t, http.MethodGet, "/o/"+res.body.Address, nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET: status %d, err %v", resp.StatusCode, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("GET returned %d bytes that differ from the %d stored", len(got), n)
			}
			if resp.ContentLength != int64(n) {
				t.Fatalf("Content-Length %d, want %d", resp.ContentLength, n)
			}
			if _, err := os.Stat(objectPath(p.dir, res.body.Address)); err != nil {
				t.Fatalf("object not at its sharded path: %v", err)
			}
			total += int64(n)
		})
	}
	if got := testutil.Metric(t, p.reg, "macronode_storage_objects"); got != 7 {
		t.Errorf("objects gauge = %v, want 7", got)
	}
	if got := testutil.Metric(t, p.reg, "macronode_storage_bytes"); got != float64(total) {
		t.Errorf("bytes gauge = %v, want %d", got, total)
	}
	if got := testutil.Metric(t, p.reg, "macronode_storage_puts_total"); got != 7 {
		t.Errorf("puts_total = %v, want 7", got)
	}
	if got := files(t, filepath.Join(p.dir, "tmp")); len(got) != 0 {
		t.Errorf("temp files left: %v", got)
	}
}

func TestDedup(t *testing.T) {
	p := newPlane(t, Config{})
	data := randBytes(t, 300_000)
	first := p.put(t, data)
	second := p.put(t, data)
	if first.status != http.StatusCreated || second.status != http.StatusOK {
		t.Fatalf("statuses %d then %d, want 201 then 200", first.status, second.status)
	}
	if first.body != second.body {
		t.Fatalf("bodies differ: %+v vs %+v", first.body, second.body)
	}
	if got := files(t, filepath.Join(p.dir, "objects")); len(got) != 1 {
		t.Fatalf("files on disk: %v, want exactly one", got)
	}
	if got := files(t, filepath.Join(p.dir, "tmp")); len(got) != 0 {
		t.Fatalf("temp files left: %v", got)
	}
	if got := testutil.Metric(t, p.reg, "macronode_storage_dedup_hits_total"); got != 1 {
		t.Fatalf("dedup_hits_total = %v, want 1", got)
	}
	if got := testutil.Metric(t, p.reg, "macronode_storage_objects"); got != 1 {
		t.Fatalf("objects = %v, want 1", got)
	}
}

func TestConcurrentIdenticalPuts(t *testing.T) {
	p := newPlane(t, Config{})
	data := randBytes(t, 1<<20)
	const n = 8
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := http.Post(p.ts.URL+"/o", "application/octet-stream", bytes.NewReader(data))
			if err != nil {
				statuses <- -1
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[http.StatusCreated] != 1 || count[http.StatusOK] != n-1 {
		t.Fatalf("statuses %v, want one 201 and %d 200", count, n-1)
	}
	if got := files(t, filepath.Join(p.dir, "objects")); len(got) != 1 {
		t.Fatalf("files on disk: %v", got)
	}
	if got := files(t, filepath.Join(p.dir, "tmp")); len(got) != 0 {
		t.Fatalf("temp files left: %v", got)
	}
	if o, b := testutil.Metric(t, p.reg, "macronode_storage_objects"), testutil.Metric(t, p.reg, "macronode_storage_bytes"); o != 1 || b != 1<<20 {
		t.Fatalf("gauges objects=%v bytes=%v", o, b)
	}
}

func TestTooLarge(t *testing.T) {
	p := newPlane(t, Config{MaxObjectBytes: 1000})
	if res := p.put(t, randBytes(t, 1000)); res.status != http.StatusCreated {
		t.Fatalf("object at the limit: status %d", res.status)
	}
	// Announced length over the cap: refused before reading.
	res := p.put(t, randBytes(t, 1001))
	if res.status != http.StatusRequestEntityTooLarge || res.err.Code != "too_large" {
		t.Fatalf("status %d %+v, want 413 too_large", res.status, res.err)
	}
	// Unknown length (chunked): refused while reading.
	resp, err := http.Post(p.ts.URL+"/o", "application/octet-stream", io.MultiReader(bytes.NewReader(randBytes(t, 5000))))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var eb errBody
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: status %d %s", resp.StatusCode, raw)
	}
	mustJSONError(t, resp, raw, &eb)
	if got := files(t, filepath.Join(p.dir, "tmp")); len(got) != 0 {
		t.Fatalf("temp files left: %v", got)
	}
	if got := files(t, filepath.Join(p.dir, "objects")); len(got) != 1 {
		t.Fatalf("objects: %v, want only the one at the limit", got)
	}
	if got := testutil.Metric(t, p.reg, "macronode_storage_put_failures_total", "reason", "too_large"); got != 2 {
		t.Fatalf("put_failures_total{too_large} = %v", got)
	}
}

// faultyFile fails Write after limit bytes, or Sync, with err.
type faultyFile struct {
	*os.File
	limit     int64
	written   int64
	failSync  bool
	injectErr error
}

func (f *faultyFile) Write(p []byte) (int, error) {
	if f.written+int64(len(p)) > f.limit {
		return 0, &os.PathError{Op: "write", Path: f.Name(), Err: f.injectErr}
	}
	f.written += int64(len(p))
	return f.File.Write(p)
}

func (f *faultyFile) Sync() error {
	if f.failSync {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: f.injectErr}
	}
	return f.File.Sync()
}

func TestDiskFull(t *testing.T) {
	tests := []struct {
		name   string
		errno  syscall.Errno
		rigged func(d *DiskStore, errno syscall.Errno)
	}{
		{"create", syscall.ENOSPC, func(d *DiskStore, e syscall.Errno) {
			d.createTemp = func(string, string) (tempFile, error) { return nil, &os.PathError{Op: "open", Path: "x", Err: e} }
		}},
		{"write", syscall.ENOSPC, func(d *DiskStore, e syscall.Errno) {
			d.createTemp = func(dir, pat string) (tempFile, error) {
				f, err := os.CreateTemp(dir, pat)
				return &faultyFile{File: f, limit: 100_000, injectErr: e}, err
			}
		}},
		{"write quota", syscall.EDQUOT, func(d *DiskStore, e syscall.Errno) {
			d.createTemp = func(dir, pat string) (tempFile, error) {
				f, err := os.CreateTemp(dir, pat)
				return &faultyFile{File: f, limit: 0, injectErr: e}, err
			}
		}},
		{"fsync", syscall.ENOSPC, func(d *DiskStore, e syscall.Errno) {
			d.createTemp = func(dir, pat string) (tempFile, error) {
				f, err := os.CreateTemp(dir, pat)
				return &faultyFile{File: f, limit: 1 << 40, failSync: true, injectErr: e}, err
			}
		}},
		{"rename", syscall.ENOSPC, func(d *DiskStore, e syscall.Errno) {
			d.rename = func(o, n string) error { return &os.LinkError{Op: "rename", Old: o, New: n, Err: e} }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, reg := newServer(t, Config{})
			tt.rigged(srv.store.(*DiskStore), tt.errno)
			p := serve(t, srv, reg)
			res := p.put(t, randBytes(t, 300_000))
			if res.status != http.StatusInsufficientStorage || res.err.Code != "storage_full" {
				t.Fatalf("status %d %+v, want 507 storage_full", res.status, res.err)
			}
			if got := files(t, filepath.Join(p.dir, "tmp")); len(got) != 0 {
				t.Fatalf("temp files left: %v", got)
			}
			if got := files(t, filepath.Join(p.dir, "objects")); len(got) != 0 {
				t.Fatalf("partial object visible: %v", got)
			}
			if got := testutil.Metric(t, p.reg, "macronode_storage_objects"); got != 0 {
				t.Fatalf("objects gauge = %v", got)
			}
		})
	}
}

// An upload (POST /o, or PUT /o/{addr}) whose body breaks off mid-way
// keeps nothing.
func TestClientDisconnectRemovesTemp(t *testing.T) {
	data := randBytes(t, 1<<20)
	for _, target := range []string{"POST /o", "PUT /o/" + address.Format(blake3.Sum256(data))} {
		t.Run(target, func(t *testing.T) {
			p := newPlane(t, Config{})
			conn, err := net.Dial("tcp", strings.TrimPrefix(p.ts.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = fmt.Fprintf(conn, "%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", target, 10<<20)
			if err == nil {
				_, err = conn.Write(data)
			}
			if err != nil {
				t.Fatal(err)
			}
			// Wait until the upload has reached the temp file, then hang up.
			eventually(t, 5*time.Second, "temp file", func() bool { return len(files(t, filepath.Join(p.dir, "tmp"))) == 1 })
			conn.Close()
			eventually(t, 5*time.Second, "failed put counted", func() bool {
				return testutil.Metric(t, p.reg, "macronode_storage_put_failures_total", "reason", "client") == 1
			})
			if got := files(t, filepath.Join(p.dir, "tmp")); len(got) != 0 {
				t.Fatalf("temp files left: %v", got)
			}
			if got := files(t, filepath.Join(p.dir, "objects")); len(got) != 0 {
				t.Fatalf("objects: %v", got)
			}
		})
	}
}

func TestStrayTempCleanupAndCountAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "storage")
	data := randBytes(t, 12345)
	addr := address.Format(blake3.Sum256(data))
	obj := objectPath(dir, addr)
	if err := os.MkdirAll(filepath.Dir(obj), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(obj, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"put-123", "put-456"} {
		if err := os.WriteFile(filepath.Join(dir, "tmp", name), []byte("half an upload"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := newPlane(t, Config{DataDir: dir})
	if got := files(t, filepath.Join(dir, "tmp")); len(got) != 0 {
		t.Fatalf("stray temp files survived New: %v", got)
	}
	if o, b := testutil.Metric(t, p.reg, "macronode_storage_objects"), testutil.Metric(t, p.reg, "macronode_storage_bytes"); o != 1 || b != 12345 {
		t.Fatalf("gauges at start: objects=%v bytes=%v", o, b)
	}
	resp, got, err := p.do(t, http.MethodGet, "/o/"+addr, nil)
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET pre-existing object: status %d err %v", resp.StatusCode, err)
	}
}
