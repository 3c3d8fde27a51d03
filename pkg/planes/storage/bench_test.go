package storage

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/macronode/macronode/pkg/address"
)

// benchSizes are the object sizes every benchmark runs at, so that
// `make bench` can print Put and Get throughput as ratios of the raw
// BLAKE3 rate and of a plain write+fsync.
var benchSizes = []struct {
	name string
	n    int
}{
	{"4KiB", 4 << 10},
	{"1MiB", 1 << 20},
	{"64MiB", 64 << 20},
}

// discardWriter is a ResponseWriter that throws the body away, so that GET
// benchmarks measure the plane, not a recorder's buffer.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// BenchmarkPut stores a fresh (never deduplicated) object per iteration
// through the handler: hash, temp write, fsync, rename, dir fsync.
func BenchmarkPut(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			srv, _ := newServer(b, Config{DataDir: b.TempDir()})
			h := srv.Handler()
			data := randBytes(b, sz.n)
			b.SetBytes(int64(sz.n))
			for i := 0; b.Loop(); i++ {
				binary.LittleEndian.PutUint64(data, uint64(i)) // unique content
				req := httptest.NewRequest(http.MethodPost, "/o", bytes.NewReader(data))
				w := &discardWriter{h: http.Header{}}
				h.ServeHTTP(w, req)
				if w.status != http.StatusCreated {
					b.Fatalf("status %d", w.status)
				}
				b.StopTimer()
				// Take the blob out again so the next iteration stores anew.
				rc, v, err := srv.store.Open(blake3.Sum256(data))
				if err != nil {
					b.Fatal(err)
				}
				rc.Close()
				if err := srv.store.Quarantine(blake3.Sum256(data), v); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkGet serves a full, verified GET through the handler. The
// verified-copy cache is emptied before each GET, so every iteration hashes
// the blob (a cache hit would skip that for blobs up to 8 MiB).
func BenchmarkGet(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			srv, _ := newServer(b, Config{DataDir: b.TempDir()})
			h := srv.Handler()
			data := randBytes(b, sz.n)
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/o", bytes.NewReader(data)))
			if w.status != http.StatusCreated {
				b.Fatalf("put status %d", w.status)
			}
			addr := blake3.Sum256(data)
			path := "/o/" + address.Format(addr)
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				srv.verified.forget(addr)
				w := &discardWriter{h: http.Header{}}
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// BenchmarkBlake3 is the raw hash rate: the ceiling for Put and Get.
func BenchmarkBlake3(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			data := randBytes(b, sz.n)
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				_ = blake3.Sum256(data)
			}
		})
	}
}

// BenchmarkWriteFsync is a plain create+write+fsync+close of the same sizes:
// the durability cost Put cannot avoid.
func BenchmarkWriteFsync(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			dir := b.TempDir()
			data := randBytes(b, sz.n)
			p := filepath.Join(dir, "f")
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				f, err := os.Create(p)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Write(data); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := os.Remove(p); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
