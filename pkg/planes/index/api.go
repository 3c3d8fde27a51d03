package index

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/macronode/macronode/pkg/fsx"
	"github.com/macronode/macronode/pkg/httpx"
)

const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

func (s *Server) routes() http.Handler {
	mux := httpx.NewMux()
	mux.HandleFunc("GET /names", s.handleList)
	mux.HandleFunc("GET /names/{name...}", s.handleGet)
	mux.HandleFunc("PUT /names/{name...}", s.handlePut)
	mux.HandleFunc("DELETE /names/{name...}", s.handleDelete)
	// Recover, RequestID and request metrics are the child runtime's.
	return mux
}

// putBody is the JSON body of PUT /names/{name}.
type putBody struct {
	Address string `json:"address"`
}

// errBodyTooLarge marks a body over the cap (413).
var errBodyTooLarge = errors.New("request body too large")

// decodePutBody reads one JSON object {"address":"b3:..."} of at most max
// bytes from r: unknown fields, trailing data and a malformed address are
// errors; an oversized body wraps errBodyTooLarge.
func decodePutBody(r io.Reader, max int64) (string, error) {
	lr := &io.LimitedReader{R: r, N: max + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	var body putBody
	err := dec.Decode(&body)
	if lr.N <= 0 {
		return "", fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, max)
	}
	if err != nil {
		return "", fmt.Errorf("invalid JSON body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if lr.N <= 0 {
			return "", fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, max)
		}
		return "", errors.New("invalid JSON body: trailing data after the object")
	}
	if err := ValidateAddress(body.Address); err != nil {
		return "", err
	}
	return body.Address, nil
}

// pathName extracts and validates the {name...} wildcard, answering 400
// itself when it is not a valid name.
func pathName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if err := ValidateName(name); err != nil {
		httpx.Error(w, http.StatusBadRequest, "bad_name", err.Error())
		return "", false
	}
	return name, true
}

// storeError answers a store failure that is not a normal outcome.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, op string, err error) {
	if errors.Is(err, errClosed) {
		httpx.Error(w, http.StatusServiceUnavailable, "", "index store is closed")
		return
	}
	if fsx.NoSpace(err) {
		// Reads go on; a write succeeds again once space is freed.
		s.log.Error("index store full", "op", op, "error", err, "request_id", httpx.RequestIDFrom(r.Context()))
		httpx.Error(w, http.StatusInsufficientStorage, "storage_full", "index store: no space left for "+op)
		return
	}
	s.log.Error("index store failure", "op", op, "error", err, "request_id", httpx.RequestIDFrom(r.Context()))
	httpx.Errorf(w, http.StatusInternalServerError, "", "index store: %s failed", op)
}

func (s *Server) handlePut(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r)
	if !ok {
		return
	}
	data, ok := httpx.ReadBody(w, r, s.cfg.MaxBodyBytes, s.cfg.IOIdleTimeout)
	if !ok {
		return
	}
	addr, err := decodePutBody(bytes.NewReader(data), s.cfg.MaxBodyBytes)
	switch {
	case errors.Is(err, errBodyTooLarge):
		httpx.Errorf(w, http.StatusRequestEntityTooLarge, "", "request body exceeds %d bytes", s.cfg.MaxBodyBytes)
		return
	case errors.Is(err, ErrBadAddress):
		httpx.Error(w, http.StatusBadRequest, "bad_address", err.Error())
		return
	case err != nil:
		httpx.Error(w, http.StatusBadRequest, "bad_json", err.Error())
		return
	}
	if err := r.Context().Err(); err != nil {
		return // the client is gone; do not write on its behalf
	}
	pc := preconditions(r.Header)
	rec, created, err := s.store.put(name, addr, time.Now(), pc.check)
	switch {
	case errors.Is(err, errPrecondition):
		s.m.conflicts.Inc()
		httpx.Error(w, http.StatusPreconditionFailed, "", err.Error())
		return
	case err != nil:
		s.storeError(w, r, "put", err)
		return
	}
	s.m.puts.Inc()
	w.Header().Set("ETag", etag(rec.Version))
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/names/"+name)
	}
	httpx.JSON(w, status, rec)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r)
	if !ok {
		return
	}
	s.m.gets.Inc()
	rec, err := s.store.get(name)
	switch {
	case errors.Is(err, ErrNotFound):
		httpx.Errorf(w, http.StatusNotFound, "", "name %q is not bound", name)
		return
	case err != nil:
		s.storeError(w, r, "get", err)
		return
	}
	w.Header().Set("ETag", etag(rec.Version))
	if pc := preconditions(r.Header); pc.noneMatch != nil && pc.noneMatch.has(rec.Version, true) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	httpx.JSON(w, http.StatusOK, rec)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r)
	if !ok {
		return
	}
	pc := preconditions(r.Header)
	err := s.store.del(name, pc.check)
	switch {
	case errors.Is(err, ErrNotFound):
		httpx.Errorf(w, http.StatusNotFound, "", "name %q is not bound", name)
		return
	case errors.Is(err, errPrecondition):
		s.m.conflicts.Inc()
		httpx.Error(w, http.StatusPreconditionFailed, "", err.Error())
		return
	case err != nil:
		s.storeError(w, r, "delete", err)
		return
	}
	s.m.deletes.Inc()
	w.WriteHeader(http.StatusNoContent)
}

// listPage is the answer of GET /names.
type listPage struct {
	Names []Record `json:"names"`
	Next  string   `json:"next"`
}

// listQuery is a parsed GET /names query.
type listQuery struct {
	prefix, after string
	limit         int
}

func parseListQuery(q url.Values) (listQuery, string, error) {
	lq := listQuery{prefix: q.Get("prefix"), after: q.Get("after"), limit: defaultListLimit}
	if !validPrefix(lq.prefix) {
		return lq, "bad_prefix", fmt.Errorf("prefix must be at most %d bytes of [a-z0-9._/-]", MaxNameLen)
	}
	if !validPrefix(lq.after) {
		return lq, "bad_cursor", fmt.Errorf("after must be at most %d bytes of [a-z0-9._/-]", MaxNameLen)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return lq, "bad_limit", fmt.Errorf("limit must be an integer from 1 to %d, got %q", maxListLimit, v)
		}
		lq.limit = n
	}
	return lq, "", nil
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	lq, code, err := parseListQuery(r.URL.Query())
	if err != nil {
		httpx.Error(w, http.StatusBadRequest, code, err.Error())
		return
	}
	recs, err := s.store.list(lq.prefix, lq.after, lq.limit+1)
	if err != nil {
		s.storeError(w, r, "list", err)
		return
	}
	page := listPage{Names: recs}
	if len(recs) > lq.limit {
		page.Names = recs[:lq.limit]
		page.Next = page.Names[lq.limit-1].Name
	}
	httpx.JSON(w, http.StatusOK, page)
}
