package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/macronode/macronode/pkg/address"
)

// fillStore stores n distinct small blobs in st and returns their addresses,
// sorted.
func fillStore(t *testing.T, st Store, n int) [][32]byte {
	t.Helper()
	var out [][32]byte
	for i := range n {
		a, _, _, err := st.Put(context.Background(), bytes.NewReader([]byte("blob "+strconv.Itoa(i))), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y [32]byte) int { return bytes.Compare(x[:], y[:]) })
	return out
}

func TestStoreList(t *testing.T) {
	stores := map[string]func(t *testing.T) Store{
		"disk": func(t *testing.T) Store {
			d, err := OpenDisk(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close() })
			return d
		},
		"memory": func(*testing.T) Store { return NewMemory(16 << 20) },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			all := fillStore(t, st, 300)
			var zero, ones [32]byte
			for i := range ones {
				ones[i] = 0xff
			}
			tests := []struct {
				name  string
				after *[32]byte
				limit int
				want  [][32]byte
			}{
				{"all", nil, 1000, all},
				{"first page", nil, 7, all[:7]},
				{"after the 7th", &all[6], 7, all[7:14]},
				{"after the last", &all[len(all)-1], 10, nil},
				{"after zero", &zero, 1000, all},
				{"after all ones", &ones, 1000, nil},
				{"no limit", nil, 0, nil},
			}
			// An address not stored, between two stored ones.
			between := all[100]
			between[31]++
			if between != all[101] {
				tests = append(tests, struct {
					name  string
					after *[32]byte
					limit int
					want  [][32]byte
				}{"after an absent address", &between, 3, all[101:104]})
			}
			for _, tc := range tests {
				got, err := st.List(tc.after, tc.limit)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if len(got) != len(tc.want) || len(got) > 0 && !slices.Equal(got, tc.want) {
					t.Errorf("%s: got %d addresses, want %d (equal=%v)", tc.name, len(got), len(tc.want), slices.Equal(got, tc.want))
				}
			}
			// Paging through with after = the last one seen yields every
			// address once, in order.
			var paged [][32]byte
			var after *[32]byte
			for {
				page, err := st.List(after, 13)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				paged = append(paged, page...)
				after = &page[len(page)-1]
			}
			if !slices.Equal(paged, all) {
				t.Fatalf("paging yielded %d addresses, want the %d stored in order", len(paged), len(all))
			}
		})
	}
}

// The disk listing ignores what is not a blob filed under its own shard.
func TestDiskListIgnoresStrays(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDisk(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	all := fillStore(t, d, 5)
	h := address.Format(all[0])[len(address.Prefix):]
	misfiled := filepath.Join(dir, "objects", "00", h) // wrong shard
	if h[:2] == "00" {
		misfiled = filepath.Join(dir, "objects", "01", h)
	}
	strays := map[string][]byte{
		misfiled:                                 nil,
		filepath.Join(dir, "objects", "zz", "x"): nil,
		filepath.Join(dir, "objects", h[0:2], "notes.txt"):              nil,
		filepath.Join(dir, "objects", h[0:2], h[:63]+"A"):               nil,
		filepath.Join(dir, "objects", h[0:2], h[:4]+"short"):            nil,
		filepath.Join(dir, "objects", h[0:2], h[:60]+"dir0", "inner"):   nil,
		filepath.Join(dir, "objects", h[0:2], h[2:4], h[:4]+"x", "old"): nil,
	}
	for p := range strays {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.List(nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, all) {
		t.Fatalf("List = %d addresses, want the %d stored", len(got), len(all))
	}
}

func TestListHTTP(t *testing.T) {
	p := newPlane(t, Config{})
	all := fillStore(t, p.srv.store, 25)
	type listed struct {
		Addresses []string `json:"addresses"`
		Next      string   `json:"next"`
	}
	get := func(t *testing.T, q string) (int, listed, errBody) {
		t.Helper()
		resp, raw, err := p.do(t, http.MethodGet, "/o"+q, nil)
		if err != nil {
			t.Fatal(err)
		}
		var l listed
		var eb errBody
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(raw, &l); err != nil {
				t.Fatalf("decode %s: %v", raw, err)
			}
		} else {
			mustJSONError(t, resp, raw, &eb)
		}
		return resp.StatusCode, l, eb
	}
	fmtAll := make([]string, len(all))
	for i, a := range all {
		fmtAll[i] = address.Format(a)
	}
	tests := []struct {
		q        string
		status   int
		code     string
		addrs    []string
		wantNext string
	}{
		{"", 200, "", fmtAll, ""},
		{"?limit=10", 200, "", fmtAll[:10], fmtAll[9]},
		{"?limit=25", 200, "", fmtAll, ""},
		{"?limit=24", 200, "", fmtAll[:24], fmtAll[23]},
		{"?after=" + fmtAll[9] + "&limit=10", 200, "", fmtAll[10:20], fmtAll[19]},
		{"?after=" + fmtAll[19] + "&limit=10", 200, "", fmtAll[20:], ""},
		{"?after=" + fmtAll[24], 200, "", []string{}, ""},
		{"?limit=10000", 200, "", fmtAll, ""},
		{"?limit=0", 400, "bad_limit", nil, ""},
		{"?limit=10001", 400, "bad_limit", nil, ""},
		{"?limit=-1", 400, "bad_limit", nil, ""},
		{"?limit=ten", 400, "bad_limit", nil, ""},
		{"?after=b3:zz", 400, "bad_after", nil, ""},
		{"?after=" + fmtAll[0][3:], 400, "bad_after", nil, ""},
	}
	for _, tc := range tests {
		status, l, eb := get(t, tc.q)
		if status != tc.status || eb.Code != tc.code {
			t.Errorf("GET /o%s: %d %q, want %d %q", tc.q, status, eb.Code, tc.status, tc.code)
			continue
		}
		if status == 200 && (!slices.Equal(l.Addresses, tc.addrs) || l.Next != tc.wantNext || l.Addresses == nil) {
			t.Errorf("GET /o%s: %d addresses, next %q; want %d, next %q", tc.q, len(l.Addresses), l.Next, len(tc.addrs), tc.wantNext)
		}
	}
}
