package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/address"
)

// putAt sends PUT /o/{addr} with body and decodes the answer.
func (p *plane) putAt(t testing.TB, addr string, body io.Reader) putResult {
	t.Helper()
	return p.upload(t, http.MethodPut, "/o/"+addr, body)
}

func TestPutAt(t *testing.T) {
	data := []byte("the blob a peer sent us")
	good := address.Format(blake3.Sum256(data))
	other := address.Format(blake3.Sum256([]byte("something else")))
	tests := []struct {
		name     string
		amnesia  bool
		max      int64
		addr     string
		body     []byte
		chunked  bool
		want     int
		code     string
		wantKept bool
	}{
		{"matching body", false, 0, good, data, false, http.StatusCreated, "", true},
		{"matching body chunked", false, 0, good, data, true, http.StatusCreated, "", true},
		{"matching body amnesia", true, 0, good, data, false, http.StatusCreated, "", true},
		{"mismatch", false, 0, other, data, false, http.StatusUnprocessableEntity, "hash_mismatch", false},
		{"mismatch amnesia", true, 0, other, data, false, http.StatusUnprocessableEntity, "hash_mismatch", false},
		{"bad address", false, 0, "b3:XYZ", data, false, http.StatusBadRequest, "bad_address", false},
		{"too large", false, 10, good, data, false, http.StatusRequestEntityTooLarge, "too_large", false},
		{"too large chunked", false, 10, good, data, true, http.StatusRequestEntityTooLarge, "too_large", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlane(t, Config{Amnesia: tc.amnesia, MaxObjectBytes: tc.max})
			var body io.Reader = bytes.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			res := p.putAt(t, tc.addr, body)
			if res.status != tc.want || res.err.Code != tc.code {
				t.Fatalf("status %d %+v, want %d %q", res.status, res.err, tc.want, tc.code)
			}
			if tc.want == http.StatusCreated && (res.body.Address != tc.addr || res.body.Size != int64(len(tc.body))) {
				t.Fatalf("answer %+v", res.body)
			}
			if objs, _ := p.srv.store.Usage(); (objs == 1) != tc.wantKept {
				t.Fatalf("objects stored = %d, want kept=%v", objs, tc.wantKept)
			}
			if !tc.amnesia {
				if got := files(t, filepath.Join(p.dir, "tmp")); len(got) != 0 {
					t.Fatalf("temp files left: %v", got)
				}
			}
			resp, raw, err := p.do(t, http.MethodGet, "/o/"+good, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantKept != (resp.StatusCode == http.StatusOK && bytes.Equal(raw, data)) {
				t.Fatalf("GET after PUT: %d %q", resp.StatusCode, raw)
			}
		})
	}
}

func TestPutAtDedupAndMismatchMetric(t *testing.T) {
	p := newPlane(t, Config{})
	data := randBytes(t, 3000)
	addr := address.Format(blake3.Sum256(data))
	if res := p.put(t, data); res.status != http.StatusCreated {
		t.Fatalf("POST: %d", res.status)
	}
	if res := p.putAt(t, addr, bytes.NewReader(data)); res.status != http.StatusOK || res.body.Address != addr {
		t.Fatalf("PUT of a stored blob: %d %+v, want 200", res.status, res.body)
	}
	// A damaged stored copy is re-verified on PUT, as on POST: replaced, 201.
	flipByte(t, objectPath(p.dir, addr), 7)
	if res := p.putAt(t, addr, bytes.NewReader(data)); res.status != http.StatusCreated {
		t.Fatalf("PUT over a damaged copy: %d, want 201", res.status)
	}
	if res := p.putAt(t, addr, bytes.NewReader(data[1:])); res.status != http.StatusUnprocessableEntity {
		t.Fatalf("PUT of wrong bytes over a stored blob: %d, want 422", res.status)
	}
	if got := testutil.Metric(t, p.reg, "macronode_storage_put_failures_total", "reason", "mismatch"); got != 1 {
		t.Fatalf("put_failures_total{mismatch} = %v", got)
	}
	if got := testutil.Metric(t, p.reg, "macronode_storage_dedup_hits_total"); got != 1 {
		t.Fatalf("dedup_hits_total = %v", got)
	}
	resp, raw, _ := p.do(t, http.MethodGet, "/o/"+addr, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(raw, data) {
		t.Fatalf("GET: %d, %d bytes", resp.StatusCode, len(raw))
	}
}

// The memory store gives back the bytes of a refused body.
func TestMemPutAtMismatchReleasesCap(t *testing.T) {
	m := NewMemory(1000)
	data := bytes.Repeat([]byte{7}, 800)
	var wrong [32]byte
	for range 3 {
		if _, _, err := m.PutAt(context.Background(), wrong, bytes.NewReader(data), 1<<20); !errors.Is(err, ErrMismatch) {
			t.Fatalf("PutAt = %v, want ErrMismatch", err)
		}
	}
	if _, _, err := m.PutAt(context.Background(), blake3.Sum256(data), bytes.NewReader(data), 1<<20); err != nil {
		t.Fatalf("PutAt of the right address after refusals: %v", err)
	}
}
