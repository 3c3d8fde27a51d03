package storage

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/macronode/macronode/internal/testutil"
)

func TestBadAddresses(t *testing.T) {
	p := newPlane(t, Config{})
	for _, a := range []string{
		"b3:" + strings.ToUpper(goodHex),
		"b3:" + goodHex[:63],
		"b3:" + goodHex + "0",
		"sha256:" + goodHex,
		goodHex,
		"b3:" + goodHex[:63] + "g",
		"b3:" + goodHex[:60] + "%2F..",
		"b3:" + goodHex[:61] + "%00x",
		"%2e%2e%2fetc",
	} {
		t.Run(a, func(t *testing.T) {
			for _, m := range []string{http.MethodGet, http.MethodHead} {
				resp, raw, _ := p.do(t, m, "/o/"+a, nil)
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("%s: status %d, want 400", m, resp.StatusCode)
				}
				if m == http.MethodGet {
					var eb errBody
					mustJSONError(t, resp, raw, &eb)
					if eb.Code != "bad_address" {
						t.Fatalf("code %q", eb.Code)
					}
				}
			}
		})
	}
}

func TestUnknownAddress(t *testing.T) {
	p := newPlane(t, Config{})
	resp, raw, _ := p.do(t, http.MethodGet, "/o/b3:"+goodHex, nil)
	var eb errBody
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
	mustJSONError(t, resp, raw, &eb)
	if eb.Code != "not_found" {
		t.Fatalf("code %q", eb.Code)
	}
	if resp.Header.Get("Cache-Control") != "" || resp.Header.Get("ETag") != "" {
		t.Fatal("a 404 must not carry the immutable caching headers")
	}
}

func TestHeadersHeadAndConditional(t *testing.T) {
	p := newPlane(t, Config{})
	data := randBytes(t, 5000)
	addr := p.put(t, data).body.Address
	etag := `"` + addr + `"`

	resp, body, _ := p.do(t, http.MethodGet, "/o/"+addr, nil)
	want := map[string]string{
		"ETag":          etag,
		"Cache-Control": "public, max-age=31536000, immutable",
		"Content-Type":  "application/octet-stream",
		"Accept-Ranges": "bytes",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("GET %s = %q, want %q", k, got, v)
		}
	}
	if !bytes.Equal(body, data) {
		t.Fatal("GET body differs")
	}

	resp, body, _ = p.do(t, http.MethodHead, "/o/"+addr, nil)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 5000 || len(body) != 0 {
		t.Fatalf("HEAD: status %d length %d body %d", resp.StatusCode, resp.ContentLength, len(body))
	}
	if resp.Header.Get("ETag") != etag {
		t.Fatalf("HEAD ETag %q", resp.Header.Get("ETag"))
	}

	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		resp, body, _ = p.do(t, http.MethodGet, "/o/"+addr, map[string]string{"If-None-Match": inm})
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != etag {
			t.Fatalf("If-None-Match %s: status %d, %d bytes", inm, resp.StatusCode, len(body))
		}
	}
	resp, body, _ = p.do(t, http.MethodGet, "/o/"+addr, map[string]string{"If-None-Match": `"b3:` + goodHex + `"`})
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("non-matching If-None-Match: status %d", resp.StatusCode)
	}
	if got := testutil.Metric(t, p.reg, "macronode_storage_get_bytes_total"); got != 10000 {
		t.Fatalf("get_bytes_total = %v, want 10000", got)
	}
}

func TestRange(t *testing.T) {
	p := newPlane(t, Config{ChunkBytes: 1024})
	data := randBytes(t, 10_000)
	addr := p.put(t, data).body.Address
	empty := p.put(t, nil).body.Address
	etag := `"` + addr + `"`
	tests := []struct {
		addr, rng, ifRange string
		status             int
		from, to           int // expected body data[from:to]
		contentRange       string
	}{
		{addr, "bytes=0-99", "", 206, 0, 100, "bytes 0-99/10000"},
		{addr, "bytes=5000-", "", 206, 5000, 10000, "bytes 5000-9999/10000"},
		{addr, "bytes=-10", "", 206, 9990, 10000, "bytes 9990-9999/10000"},
		{addr, "bytes=-20000", "", 206, 0, 10000, "bytes 0-9999/10000"},
		{addr, "bytes=9000-20000", "", 206, 9000, 10000, "bytes 9000-9999/10000"},
		{addr, "bytes=1023-2049", "", 206, 1023, 2050, "bytes 1023-2049/10000"},
		{addr, "bytes=0-9223372036854775807", "", 206, 0, 10000, "bytes 0-9999/10000"},
		{addr, "bytes=100-99999999999999999999", "", 206, 100, 10000, "bytes 100-9999/10000"},
		{addr, "bytes=0-99", etag, 206, 0, 100, "bytes 0-99/10000"},
		{addr, "bytes=0-99", `"b3:` + goodHex + `"`, 200, 0, 10000, ""},
		{addr, "bytes=0-1,5-6", "", 200, 0, 10000, ""},
		{addr, "items=0-5", "", 200, 0, 10000, ""},
		{addr, "bytes=10000-", "", 416, 0, 0, "bytes */10000"},
		{addr, "bytes=-0", "", 416, 0, 0, "bytes */10000"},
		{addr, "bytes=9-3", "", 416, 0, 0, "bytes */10000"},
		{addr, "bytes=x-y", "", 416, 0, 0, "bytes */10000"},
		{empty, "bytes=0-", "", 416, 0, 0, "bytes */0"},
	}
	for _, tt := range tests {
		t.Run(tt.rng+" "+tt.ifRange, func(t *testing.T) {
			hdr := map[string]string{"Range": tt.rng}
			if tt.ifRange != "" {
				hdr["If-Range"] = tt.ifRange
			}
			resp, body, err := p.do(t, http.MethodGet, "/o/"+tt.addr, hdr)
			if err != nil || resp.StatusCode != tt.status {
				t.Fatalf("status %d err %v, want %d", resp.StatusCode, err, tt.status)
			}
			if got := resp.Header.Get("Content-Range"); got != tt.contentRange {
				t.Fatalf("Content-Range %q, want %q", got, tt.contentRange)
			}
			if tt.status == 416 {
				var eb errBody
				mustJSONError(t, resp, body, &eb)
				return
			}
			if !bytes.Equal(body, data[tt.from:tt.to]) {
				t.Fatalf("body is %d bytes, want data[%d:%d]", len(body), tt.from, tt.to)
			}
		})
	}
}

func TestTampering(t *testing.T) {
	const big = 9 << 20 // > VerifyBeforeSendBytes: stream-verified
	for _, tc := range []struct {
		name  string
		size  int
		rng   string
		where func(n int) int64
	}{
		{"small middle", 100_000, "", func(n int) int64 { return int64(n / 2) }},
		{"small range", 100_000, "bytes=0-9", func(n int) int64 { return int64(n - 1) }},
		{"large first byte", big, "", func(int) int64 { return 0 }},
		{"large last byte", big, "", func(n int) int64 { return int64(n - 1) }},
		{"large range", big, "bytes=100-200", func(n int) int64 { return int64(n / 2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlane(t, Config{})
			data := randBytes(t, tc.size)
			addr := p.put(t, data).body.Address
			path := objectPath(p.dir, addr)
			flipByte(t, path, tc.where(tc.size))

			hdr := map[string]string{}
			if tc.rng != "" {
				hdr["Range"] = tc.rng
			}
			resp, body, err := p.do(t, http.MethodGet, "/o/"+addr, hdr)
			clean200 := err == nil && resp.StatusCode/100 == 2
			if clean200 {
				t.Fatalf("tampered object served cleanly: status %d, %d bytes", resp.StatusCode, len(body))
			}
			if tc.size == big && tc.rng == "" {
				// Stream-verified: the 200 headers went out; the body must
				// break off short of Content-Length.
				if resp.StatusCode != http.StatusOK || err == nil || int64(len(body)) >= resp.ContentLength {
					t.Fatalf("status %d, %d of %d bytes, err %v: want an aborted body", resp.StatusCode, len(body), resp.ContentLength, err)
				}
			} else {
				var eb errBody
				if resp.StatusCode != http.StatusInternalServerError {
					t.Fatalf("status %d, want 500", resp.StatusCode)
				}
				mustJSONError(t, resp, body, &eb)
				if eb.Code != "corrupt" {
					t.Fatalf("code %q", eb.Code)
				}
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("tampered object still in place: %v", err)
			}
			if q := files(t, filepath.Join(p.dir, "quarantine")); len(q) != 1 || !strings.HasPrefix(q[0], strings.TrimPrefix(addr, "b3:")) {
				t.Fatalf("quarantine holds %v", q)
			}
			if got := testutil.Metric(t, p.reg, "macronode_storage_verify_failures_total"); got != 1 {
				t.Fatalf("verify_failures_total = %v", got)
			}
			if o := testutil.Metric(t, p.reg, "macronode_storage_objects"); o != 0 {
				t.Fatalf("objects gauge = %v after quarantine", o)
			}
			resp, _, _ = p.do(t, http.MethodGet, "/o/"+addr, nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("GET after quarantine: status %d, want 404", resp.StatusCode)
			}
			// A fresh upload of the right content heals the store.
			if res := p.put(t, data); res.status != http.StatusCreated {
				t.Fatalf("re-upload status %d", res.status)
			}
			resp, body, err = p.do(t, http.MethodGet, "/o/"+addr, nil)
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
				t.Fatalf("GET after re-upload: status %d err %v", resp.StatusCode, err)
			}
		})
	}
}

func TestTruncatedObjectReplacedOnPut(t *testing.T) {
	p := newPlane(t, Config{})
	data := randBytes(t, 4000)
	addr := p.put(t, data).body.Address
	if err := os.Truncate(objectPath(p.dir, addr), 100); err != nil {
		t.Fatal(err)
	}
	if res := p.put(t, data); res.status != http.StatusCreated {
		t.Fatalf("re-upload over a truncated copy: status %d, want 201", res.status)
	}
	resp, body, err := p.do(t, http.MethodGet, "/o/"+addr, nil)
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET: status %d err %v", resp.StatusCode, err)
	}
	// The bytes gauge cannot know the size a file had before it was changed
	// behind the store's back (it is exact again after a restart); the
	// object count is exact.
	if o := testutil.Metric(t, p.reg, "macronode_storage_objects"); o != 1 {
		t.Fatalf("objects gauge = %v", o)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(fmt.Errorf("flip byte at %d: %w", off, err))
	}
}
