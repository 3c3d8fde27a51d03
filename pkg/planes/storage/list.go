package storage

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/macronode/macronode/pkg/address"
	"github.com/macronode/macronode/pkg/httpx"
)

// List implements Store. It walks objects/ in order, one shard at a time:
// shards are named by the address's first two hex digits and os.ReadDir
// returns names sorted, so lowercase hex names come out in address order.
// Shards wholly before after are skipped without being read. Entries that
// are not a blob filed under its own shard are ignored.
func (d *DiskStore) List(after *[32]byte, limit int) ([][32]byte, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	if limit <= 0 {
		return nil, nil
	}
	var from string // hex of after; "" lists from the start
	if after != nil {
		from = hex.EncodeToString(after[:])
	}
	out := make([][32]byte, 0, min(limit, 1024))
	shards, err := readShard(d.objDir)
	if err != nil {
		return nil, err
	}
	for _, o := range shards {
		if !isShardName(o) || from != "" && o < from[:2] {
			continue
		}
		dir := filepath.Join(d.objDir, o)
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		for _, e := range ents {
			n := e.Name()
			if n <= from || len(n) != 64 || n[:2] != o || !e.Type().IsRegular() {
				continue
			}
			var a [32]byte
			if _, err := hex.Decode(a[:], []byte(n)); err != nil || hex.EncodeToString(a[:]) != n {
				continue // not lowercase hex
			}
			out = append(out, a)
			if len(out) == limit {
				return out, nil
			}
		}
	}
	return out, nil
}

// readShard returns the sorted names of the sub-directories of dir; a
// missing dir is empty.
func readShard(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// isShardName reports whether s is two lowercase hex digits.
func isShardName(s string) bool {
	if len(s) != 2 {
		return false
	}
	for i := range 2 {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// List implements Store. The memory store has no order of its own: it
// collects the addresses after `after` under the read lock and sorts them,
// which is bounded by the amnesia byte cap.
func (m *MemStore) List(after *[32]byte, limit int) ([][32]byte, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	if limit <= 0 {
		return nil, nil
	}
	m.mu.RLock()
	out := make([][32]byte, 0, len(m.objs))
	for a := range m.objs {
		if after == nil || bytes.Compare(a[:], after[:]) > 0 {
			out = append(out, a)
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(x, y [32]byte) int { return bytes.Compare(x[:], y[:]) })
	return out[:min(len(out), limit)], nil
}

// Listing limits of GET /o.
const (
	DefaultListLimit = 1000
	MaxListLimit     = 10000
)

// listResponse is the body of GET /o.
type listResponse struct {
	Addresses []string `json:"addresses"`
	Next      string   `json:"next"`
}

// handleList serves GET /o?after=&limit=: up to limit (default 1000, at most
// 10000) stored addresses greater than after, ascending. next is the last
// address of the page when more follow, "" on the last page; the next page
// is GET /o?after=<next>. It is an internal API: the gateway does not route
// it.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after *[32]byte
	if v := q.Get("after"); v != "" {
		a, err := address.Parse(v)
		if err != nil {
			httpx.Errorf(w, http.StatusBadRequest, "bad_after", "after: %v", err)
			return
		}
		after = &a
	}
	limit := DefaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			httpx.Errorf(w, http.StatusBadRequest, "bad_limit", "limit: want an integer in 1..%d, got %q", MaxListLimit, v)
			return
		}
		limit = n
	}
	addrs, err := s.store.List(after, limit+1)
	switch {
	case errors.Is(err, ErrClosed):
		httpx.Error(w, http.StatusServiceUnavailable, "unavailable", "store closed")
		return
	case err != nil:
		s.log.Error("list objects", "error", err, "request_id", httpx.RequestIDFrom(r.Context()))
		httpx.Error(w, http.StatusInternalServerError, "internal", "could not list objects")
		return
	}
	resp := listResponse{Addresses: make([]string, 0, min(len(addrs), limit))}
	for _, a := range addrs[:min(len(addrs), limit)] {
		resp.Addresses = append(resp.Addresses, address.Format(a))
	}
	if len(addrs) > limit {
		resp.Next = resp.Addresses[limit-1]
	}
	httpx.JSON(w, http.StatusOK, resp)
}
