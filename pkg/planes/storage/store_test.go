package storage

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/address"
)

// TestStoreConformance runs the same contract against both stores.
func TestStoreConformance(t *testing.T) {
	stores := map[string]func(t *testing.T) Store{
		"disk": func(t *testing.T) Store {
			d, err := OpenDisk(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		"memory": func(*testing.T) Store { return NewMemory(16 << 20) },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			ctx := context.Background()
			data := randBytes(t, 3*slabBytes+17)
			addr, size, dedup, err := st.Put(ctx, bytes.NewReader(data), 1<<20)
			if err != nil || dedup || size != int64(len(data)) || addr != blake3.Sum256(data) {
				t.Fatalf("Put = %x %d %v %v", addr, size, dedup, err)
			}
			if _, _, dedup, err = st.Put(ctx, bytes.NewReader(data), 1<<20); err != nil || !dedup {
				t.Fatalf("second Put dedup=%v err=%v", dedup, err)
			}
			rc, v, err := st.Open(addr)
			if err != nil || v.Size != size {
				t.Fatalf("Open = %d %v", v.Size, err)
			}
			if _, err := rc.Seek(slabBytes-5, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, data[slabBytes-5:]) {
				t.Fatalf("read after seek: %d bytes, err %v", len(got), err)
			}
			rc.Close()
			if o, b := st.Usage(); o != 1 || b != size {
				t.Fatalf("Usage = %d %d", o, b)
			}
			_, _, _, err = st.Put(ctx, bytes.NewReader(randBytes(t, 2000)), 1999)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Put over max = %v, want ErrTooLarge", err)
			}
			_, _, _, err = st.Put(ctx, io.MultiReader(bytes.NewReader(data[:100]), errReader{}), 1<<20)
			if !errors.Is(err, ErrRead) {
				t.Fatalf("Put with failing reader = %v, want ErrRead", err)
			}
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, _, _, err = st.Put(cctx, bytes.NewReader(data), 1<<20); !errors.Is(err, context.Canceled) {
				t.Fatalf("Put with cancelled context = %v", err)
			}
			if err := st.Quarantine(addr, Version{}); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Quarantine of the zero Version = %v, want ErrNotFound", err)
			}
			// The copy a reader opened is quarantined (by another reader),
			// then a fresh upload stores the content again: the first
			// reader's late Quarantine must not touch the new copy.
			if err := st.Quarantine(addr, v); err != nil {
				t.Fatal(err)
			}
			if _, _, dedup, err := st.Put(ctx, bytes.NewReader(data), 1<<20); err != nil || dedup {
				t.Fatalf("re-upload after Quarantine: dedup=%v err=%v", dedup, err)
			}
			if err := st.Quarantine(addr, v); !errors.Is(err, ErrNotFound) {
				t.Fatalf("stale Quarantine = %v, want ErrNotFound", err)
			}
			if _, _, err := st.Open(addr); err != nil {
				t.Fatalf("stale Quarantine removed the fresh copy: Open = %v", err)
			}
			rc, v2, err := st.Open(addr)
			if err != nil {
				t.Fatal(err)
			}
			rc.Close()
			if err := st.Quarantine(addr, v2); err != nil {
				t.Fatal(err)
			}
			if _, _, err := st.Open(addr); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Open after Quarantine = %v", err)
			}
			if o, b := st.Usage(); o != 0 || b != 0 {
				t.Fatalf("Usage after Quarantine = %d %d", o, b)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal("Close is not idempotent:", err)
			}
			if _, _, _, err := st.Put(ctx, bytes.NewReader(data), 1<<20); !errors.Is(err, ErrClosed) {
				t.Fatalf("Put after Close = %v", err)
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestAmnesia(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "storage")
	p := newPlane(t, Config{DataDir: dir, Amnesia: true, AmnesiaMaxBytes: 1 << 20})
	a := randBytes(t, 600_000)
	if res := p.put(t, a); res.status != http.StatusCreated {
		t.Fatalf("first put: %d", res.status)
	}
	if res := p.put(t, randBytes(t, 600_000)); res.status != http.StatusInsufficientStorage || res.err.Code != "storage_full" {
		t.Fatalf("put over the cap: %d %+v, want 507", res.status, res.err)
	}
	// The failed upload's reservation was released: a small one still fits,
	// and dedup works.
	if res := p.put(t, randBytes(t, 1000)); res.status != http.StatusCreated {
		t.Fatalf("small put after 507: %d", res.status)
	}
	small := randBytes(t, 100)
	p.put(t, small)
	if res := p.put(t, small); res.status != http.StatusOK {
		t.Fatalf("dedup in amnesia: %d", res.status)
	}
	resp, body, err := p.do(t, http.MethodGet, "/o/"+address.Format(blake3.Sum256(a)), map[string]string{"Range": "bytes=10-19"})
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, a[10:20]) {
		t.Fatalf("range GET: %d %v", resp.StatusCode, err)
	}
	if o, b := testutil.Metric(t, p.reg, "macronode_storage_objects"), testutil.Metric(t, p.reg, "macronode_storage_bytes"); o != 3 || b != 601_100 {
		t.Fatalf("gauges objects=%v bytes=%v", o, b)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("amnesia created %s (%v)", dir, err)
	}
	if err := p.srv.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{DataDir: "x"}, true},
		{"amnesia without dir", Config{Amnesia: true}, true},
		{"no dir", Config{}, false},
		{"tiny chunk", Config{DataDir: "x", ChunkBytes: 10}, false},
		{"huge chunk", Config{DataDir: "x", ChunkBytes: 1 << 30}, false},
		{"negative max", Config{DataDir: "x", MaxObjectBytes: -1}, false},
		{"negative amnesia cap", Config{DataDir: "x", AmnesiaMaxBytes: -1}, false},
		{"negative idle timeout", Config{DataDir: "x", IOIdleTimeout: -time.Second}, false},
	}
	for _, tt := range tests {
		c, err := tt.cfg.withDefaults()
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
		if tt.ok && (c.MaxObjectBytes != DefaultMaxObjectBytes || c.ChunkBytes != DefaultChunkBytes ||
			c.AmnesiaMaxBytes != DefaultAmnesiaMaxBytes || c.IOIdleTimeout != DefaultIOIdleTimeout) {
			t.Errorf("%s: defaults not applied: %+v", tt.name, c)
		}
	}
}

func TestReadyAndClose(t *testing.T) {
	srv, reg := newServer(t, Config{})
	p := serve(t, srv, reg)
	if err := srv.Ready(); err != nil {
		t.Fatal(err)
	}
	addr := p.put(t, []byte("x")).body.Address
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if srv.Ready() == nil {
		t.Fatal("Ready after Close")
	}
	if res := p.put(t, []byte("y")); res.status != http.StatusServiceUnavailable {
		t.Fatalf("PUT after Close: %d", res.status)
	}
	if resp, _, _ := p.do(t, http.MethodGet, "/o/"+addr, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET after Close: %d", resp.StatusCode)
	}
}

func TestRenameNoReplace(t *testing.T) {
	for name, fn := range map[string]func(string, string) error{"renameNoReplace": renameNoReplace, "linkNoReplace": linkNoReplace} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
			for _, p := range []string{a, b} {
				if err := os.WriteFile(p, []byte(p), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := fn(a, b); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("onto an existing name: %v, want fs.ErrExist", err)
			}
			if got, _ := os.ReadFile(b); string(got) != b {
				t.Fatal("existing file was replaced")
			}
			if err := fn(a, c); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(a); !os.IsNotExist(err) {
				t.Fatalf("old name still present: %v", err)
			}
			if got, _ := os.ReadFile(c); string(got) != a {
				t.Fatal("content not moved")
			}
		})
	}
}

func TestRegisterFlags(t *testing.T) {
	var c Config
	set := flag.NewFlagSet("svc-storage", flag.ContinueOnError)
	c.RegisterFlags(set)
	if c.MaxObjectBytes != DefaultMaxObjectBytes || c.ChunkBytes != DefaultChunkBytes ||
		c.AmnesiaMaxBytes != DefaultAmnesiaMaxBytes || c.IOIdleTimeout != DefaultIOIdleTimeout {
		t.Fatalf("defaults not set: %+v", c)
	}
	if err := set.Parse([]string{"--max-object-bytes", "1048576", "--chunk-bytes", "8192", "--amnesia-max-bytes", "999", "--io-idle-timeout", "90s"}); err != nil {
		t.Fatal(err)
	}
	if c.MaxObjectBytes != 1<<20 || c.ChunkBytes != 8192 || c.AmnesiaMaxBytes != 999 || c.IOIdleTimeout != 90*time.Second {
		t.Fatalf("flags not applied: %+v", c)
	}
}
