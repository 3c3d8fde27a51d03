package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/zeebo/blake3"

	"github.com/macronode/macronode/pkg/httpx"
)

// putResponse is the body of a successful POST /o.
type putResponse struct {
	Address string `json:"address"`
	Size    int64  `json:"size"`
}

// handlePut serves POST /o: the body is the blob. It answers 201 Created
// with {"address":"b3:<hex>","size":n} when the blob is new, and 200 OK with
// the same body when the content was already stored (a dedup hit: nothing is
// written twice, macronode_storage_dedup_hits_total counts it). 413 when the
// body exceeds --max-object-bytes, 507 when the disk (or the amnesia cap) is
// full, 400 when the client's body breaks off; in every error case nothing
// is left behind.
func (s *Server) handlePut(w http.ResponseWriter, r *http.Request) {
	max := s.cfg.MaxObjectBytes
	if r.ContentLength > max {
		s.m.putFail.WithLabelValues("too_large").Inc()
		httpx.Errorf(w, http.StatusRequestEntityTooLarge, "too_large", "object of %d bytes exceeds the limit of %d bytes", r.ContentLength, max)
		return
	}
	body := http.MaxBytesReader(w, r.Body, max)
	addr, size, dedup, err := s.store.Put(r.Context(), body, max)
	if err != nil {
		s.putError(w, r, err)
		return
	}
	s.m.puts.Inc()
	s.m.putBytes.Add(float64(size))
	resp := putResponse{Address: FormatAddress(addr), Size: size}
	if dedup {
		s.m.dedup.Inc()
		httpx.JSON(w, http.StatusOK, resp)
		return
	}
	w.Header().Set("Location", "/o/"+resp.Address)
	httpx.JSON(w, http.StatusCreated, resp)
}

// putError maps a Store.Put error to its status and JSON error.
func (s *Server) putError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case httpx.IsTooLarge(err) || errors.Is(err, ErrTooLarge):
		s.m.putFail.WithLabelValues("too_large").Inc()
		httpx.Errorf(w, http.StatusRequestEntityTooLarge, "too_large", "object exceeds the limit of %d bytes", s.cfg.MaxObjectBytes)
	case errors.Is(err, ErrFull):
		s.m.putFail.WithLabelValues("storage_full").Inc()
		s.log.Error("store full", "error", err, "request_id", httpx.RequestIDFrom(r.Context()))
		httpx.Error(w, http.StatusInsufficientStorage, "storage_full", "storage full")
	case errors.Is(err, ErrClosed):
		s.m.putFail.WithLabelValues("internal").Inc()
		httpx.Error(w, http.StatusServiceUnavailable, "unavailable", "store closed")
	case errors.Is(err, ErrRead), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.m.putFail.WithLabelValues("client").Inc()
		httpx.Errorf(w, http.StatusBadRequest, "bad_body", "upload did not complete: %v", err)
	default:
		s.m.putFail.WithLabelValues("internal").Inc()
		s.log.Error("put failed", "error", err, "request_id", httpx.RequestIDFrom(r.Context()))
		httpx.Error(w, http.StatusInternalServerError, "internal", "could not store object")
	}
}

// handleGet serves GET and HEAD /o/{addr}; see the package doc for the
// verification rules.
func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	addr, err := ParseAddress(r.PathValue("addr"))
	if err != nil {
		httpx.Error(w, http.StatusBadRequest, "bad_address", err.Error())
		return
	}
	f, size, err := s.store.Open(addr)
	switch {
	case errors.Is(err, ErrNotFound):
		httpx.Errorf(w, http.StatusNotFound, "not_found", "no object %s", FormatAddress(addr))
		return
	case errors.Is(err, ErrClosed):
		httpx.Error(w, http.StatusServiceUnavailable, "unavailable", "store closed")
		return
	case err != nil:
		s.log.Error("open object", "error", err, "request_id", httpx.RequestIDFrom(r.Context()))
		httpx.Error(w, http.StatusInternalServerError, "internal", "could not open object")
		return
	}
	defer f.Close()
	s.m.gets.Inc()

	etag := `"` + FormatAddress(addr) + `"`
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		setObjectHeaders(w.Header(), etag)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	start, length, partial := int64(0), size, false
	if rh := r.Header.Get("Range"); rh != "" && ifRangeAllows(r.Header.Get("If-Range"), etag) {
		a, n, ok, err := parseRange(rh, size)
		if err != nil {
			w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			httpx.Errorf(w, http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable", "range %q: %v (object is %d bytes)", rh, err, size)
			return
		}
		if ok {
			start, length, partial = a, n, true
		}
	}

	buf := s.chunks.Get().(*[]byte)
	defer s.chunks.Put(buf)
	verifyFirst := partial || size <= s.verifyBefore
	if verifyFirst && r.Method != http.MethodHead {
		if !s.verifyAll(w, r, f, addr, size, *buf) {
			return
		}
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			s.log.Error("seek object", "address", FormatAddress(addr), "error", err)
			httpx.Error(w, http.StatusInternalServerError, "internal", "could not read object")
			return
		}
	}

	h := w.Header()
	setObjectHeaders(h, etag)
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, size))
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if verifyFirst {
		s.copyVerified(w, r, f, addr, length, *buf)
		return
	}
	s.streamVerify(w, r, f, addr, size, *buf)
}

// setObjectHeaders sets the validators and caching headers of a stored
// blob: its content never changes, so it is cacheable forever.
func setObjectHeaders(h http.Header, etag string) {
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Content-Type-Options", "nosniff")
}

// verifyAll hashes the whole blob before anything is sent. On a mismatch
// the blob is quarantined and a 500 JSON error written; it returns whether
// the blob is good.
func (s *Server) verifyAll(w http.ResponseWriter, r *http.Request, f io.Reader, addr [32]byte, size int64, buf []byte) bool {
	h := blake3.New()
	n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf)
	if err != nil {
		s.log.Error("read object", "address", FormatAddress(addr), "error", err, "request_id", httpx.RequestIDFrom(r.Context()))
		httpx.Error(w, http.StatusInternalServerError, "internal", "could not read object")
		return false
	}
	var got [32]byte
	copy(got[:], h.Sum(nil))
	if n != size || got != addr {
		s.corrupt(r, addr, fmt.Sprintf("read %d of %d bytes, hash b3:%x", n, size, got))
		httpx.Errorf(w, http.StatusInternalServerError, "corrupt", "object %s failed verification and was quarantined", FormatAddress(addr))
		return false
	}
	return true
}

// copyVerified sends length bytes of an already verified blob from the
// current offset. A short read (the file changed under us) aborts the
// response rather than end it cleanly.
func (s *Server) copyVerified(w http.ResponseWriter, r *http.Request, f io.Reader, addr [32]byte, length int64, buf []byte) {
	for sent := int64(0); sent < length; {
		if r.Context().Err() != nil {
			panic(http.ErrAbortHandler)
		}
		n, err := io.ReadFull(f, buf[:min(int64(len(buf)), length-sent)])
		if err != nil {
			s.log.Error("read object", "address", FormatAddress(addr), "error", err)
			panic(http.ErrAbortHandler)
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return // client gone
		}
		sent += int64(n)
		s.m.getBytes.Add(float64(n))
	}
}

// streamVerify sends a large blob chunk by chunk while hashing it. The last
// chunk is held back until the hash is known: if it does not match the
// address, the blob is quarantined and the response aborted (the client sees
// a broken transfer short of Content-Length, never a clean end).
func (s *Server) streamVerify(w http.ResponseWriter, r *http.Request, f io.Reader, addr [32]byte, size int64, buf []byte) {
	h := blake3.New()
	for sent := int64(0); sent < size; {
		if r.Context().Err() != nil {
			panic(http.ErrAbortHandler)
		}
		n, err := io.ReadFull(f, buf[:min(int64(len(buf)), size-sent)])
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			s.corrupt(r, addr, fmt.Sprintf("truncated at %d of %d bytes", sent+int64(n), size))
			panic(http.ErrAbortHandler)
		}
		if err != nil {
			s.log.Error("read object", "address", FormatAddress(addr), "error", err)
			panic(http.ErrAbortHandler)
		}
		_, _ = h.Write(buf[:n])
		if sent+int64(n) == size {
			var got [32]byte
			copy(got[:], h.Sum(nil))
			if got != addr {
				s.corrupt(r, addr, fmt.Sprintf("hash b3:%x", got))
				panic(http.ErrAbortHandler)
			}
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return // client gone
		}
		sent += int64(n)
		s.m.getBytes.Add(float64(n))
	}
}

// corrupt quarantines a blob that failed verification and counts it.
func (s *Server) corrupt(r *http.Request, addr [32]byte, detail string) {
	err := s.store.Quarantine(addr)
	switch {
	case err == nil:
		s.m.verifyFail.Inc()
		s.log.Error("object failed verification, quarantined", "address", FormatAddress(addr), "detail", detail,
			"request_id", httpx.RequestIDFrom(r.Context()))
	case errors.Is(err, ErrNotFound):
		// Another request quarantined it first and counted it.
	default:
		s.log.Error("object failed verification, quarantine failed", "address", FormatAddress(addr), "detail", detail, "error", err)
	}
}

// etagMatches implements the weak comparison If-None-Match uses: "*" or any
// listed tag equal to etag, ignoring a W/ prefix.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// ifRangeAllows reports whether a Range header may be honoured given
// If-Range: absent, or strongly equal to our ETag. A date (we send no
// Last-Modified) or another tag means "send the whole object".
func ifRangeAllows(ifRange, etag string) bool {
	return ifRange == "" || strings.TrimSpace(ifRange) == etag
}

var (
	errRangeInvalid       = errors.New("malformed range")
	errRangeUnsatisfiable = errors.New("range not satisfiable")
)

// parseRange parses a single byte range ("bytes=a-b", "bytes=a-",
// "bytes=-n") against an object of size bytes. ok is false when the header
// is to be ignored (another unit, or several ranges, which we answer with
// the whole object as RFC 9110 allows). err is set for a malformed or
// unsatisfiable range (answered 416, as net/http does).
func parseRange(h string, size int64) (start, length int64, ok bool, err error) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found {
		return 0, 0, false, nil
	}
	if strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, errRangeInvalid
	}
	if first == "" { // suffix: the last n bytes
		n, perr := parseDigits(last)
		if perr != nil {
			return 0, 0, false, perr
		}
		if n == 0 || size == 0 {
			return 0, 0, false, errRangeUnsatisfiable
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	a, perr := parseDigits(first)
	if perr != nil {
		return 0, 0, false, perr
	}
	end := size - 1
	if last != "" {
		b, perr := parseDigits(last)
		if perr != nil {
			return 0, 0, false, perr
		}
		if b < a {
			return 0, 0, false, errRangeInvalid
		}
		end = min(b, size-1)
	}
	if a >= size {
		return 0, 0, false, errRangeUnsatisfiable
	}
	return a, end - a + 1, true, nil
}

// parseDigits parses a non-empty run of ASCII digits (no sign, no spaces).
func parseDigits(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, errRangeInvalid
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errRangeInvalid
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errRangeInvalid
	}
	return n, nil
}
