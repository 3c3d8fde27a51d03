package dht

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	mh "github.com/multiformats/go-multihash"
)

// fakeStorage serves GET /o?after=&limit= over a sorted list of addresses,
// as the storage plane does.
func fakeStorage(t testing.TB, addrs []string, failFirst int32) (*httptest.Server, *atomic.Int32) {
	sorted := append([]string(nil), addrs...)
	sort.Strings(sorted)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/o" {
			http.NotFound(w, r)
			return
		}
		if calls.Add(1) <= failFirst {
			http.Error(w, `{"error":"starting"}`, http.StatusServiceUnavailable)
			return
		}
		after := r.URL.Query().Get("after")
		limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil || limit < 1 {
			http.Error(w, `{"error":"bad limit"}`, http.StatusBadRequest)
			return
		}
		i := sort.SearchStrings(sorted, after)
		if i < len(sorted) && sorted[i] == after {
			i++
		}
		page := sorted[i:min(i+limit, len(sorted))]
		next := ""
		if i+limit < len(sorted) {
			next = page[len(page)-1]
		}
		_ = json.NewEncoder(w).Encode(listPage{Addresses: append([]string{}, page...), Next: next})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestStorageListerWalk(t *testing.T) {
	var addrs []string
	for i := range 25 {
		addrs = append(addrs, testAddr(i))
	}
	withJunk := append(append([]string(nil), addrs...), "b3:NOTHEX", "junk")
	tests := []struct {
		name      string
		addrs     []string
		limit     int
		wantKeys  int
		wantSkip  int
		wantPages int32
	}{
		{"empty store", nil, 10, 0, 0, 1},
		{"one page", addrs[:5], 10, 5, 0, 1},
		{"exact pages", addrs[:20], 10, 20, 0, 2},
		{"several pages", addrs, 10, 25, 0, 3},
		{"page of one", addrs[:3], 1, 3, 0, 3},
		{"malformed skipped", withJunk, 10, 25, 2, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls := fakeStorage(t, tc.addrs, 0)
			l := storageLister{client: srv.Client(), base: srv.URL, limit: tc.limit}
			seen := map[string]bool{}
			cursor, keys, skipped, err := l.walk(context.Background(), "", func(b []mh.Multihash) error {
				for _, h := range b {
					seen[string(h)] = true
				}
				return nil
			})
			if err != nil || cursor != "" {
				t.Fatalf("walk: cursor %q, err %v", cursor, err)
			}
			if keys != tc.wantKeys || skipped != tc.wantSkip || len(seen) != tc.wantKeys {
				t.Fatalf("keys %d (distinct %d), skipped %d; want %d, %d", keys, len(seen), skipped, tc.wantKeys, tc.wantSkip)
			}
			if got := calls.Load(); got != tc.wantPages {
				t.Fatalf("pages fetched %d, want %d", got, tc.wantPages)
			}
			for _, a := range tc.addrs {
				if c, err := KeyFor(a); err == nil && !seen[string(c.Hash())] {
					t.Fatalf("address %s was not walked", a)
				}
			}
		})
	}
}

func TestStorageListerErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"status", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}, "503"},
		{"junk body", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("<html>"))
		}, "decode"},
		{"cursor does not advance", func(w http.ResponseWriter, _ *http.Request) {
			_ = json.NewEncoder(w).Encode(listPage{Addresses: []string{testAddr(1)}, Next: testAddr(1)})
		}, "does not advance"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			l := storageLister{client: srv.Client(), base: srv.URL, limit: 10}
			_, _, _, err := l.walk(context.Background(), "", func([]mh.Multihash) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("walk error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestWalkResumesAfterAFailedPage: a walk that fails mid-way returns the
// cursor it reached, and a second walk from there finishes the listing
// without repeating pages.
func TestWalkResumesAfterAFailedPage(t *testing.T) {
	var addrs []string
	for i := range 30 {
		addrs = append(addrs, testAddr(i))
	}
	srv, _ := fakeStorage(t, addrs, 0)
	l := storageLister{client: srv.Client(), base: srv.URL, limit: 10}
	var got int
	fail := true
	cursor, keys, _, err := l.walk(context.Background(), "", func(b []mh.Multihash) error {
		if got == 10 && fail {
			fail = false
			return context.DeadlineExceeded
		}
		got += len(b)
		return nil
	})
	if err == nil || cursor == "" || keys != 10 {
		t.Fatalf("first walk: cursor %q keys %d err %v; want a cursor, 10 keys and an error", cursor, keys, err)
	}
	cursor, keys, _, err = l.walk(context.Background(), cursor, func(b []mh.Multihash) error { got += len(b); return nil })
	if err != nil || cursor != "" || keys != 20 || got != 30 {
		t.Fatalf("resumed walk: cursor %q keys %d total %d err %v; want 20 more, 30 in all", cursor, keys, got, err)
	}
}
