package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/zeebo/blake3"

	"github.com/macronode/macronode/pkg/address"
	"github.com/macronode/macronode/pkg/httpx"
)

// putResponse is the body of a successful POST /o.
type putResponse struct {
	Address string `json:"address"`
	Size    int64  `json:"size"`
}

// handlePut serves POST /o: the body is the blob; each read of it must make
// progress within --io-idle-timeout (httpx.Progress). It answers 201 Created
// with {"address":"b3:<hex>","size":n} when the blob is new, and 200 OK with
// the same body when the content was already stored (a dedup hit: nothing is
// written twice, macronode_storage_dedup_hits_total counts it). 413 when the
// body exceeds --max-object-bytes, 507 when the disk (or the amnesia cap) is
// full, 408 when the client's body stalls, 400 when it breaks off; in every
// error case nothing is left behind.
func (s *Server) handlePut(w http.ResponseWriter, r *http.Request) {
	s.upload(w, r, nil)
}

// handlePutAt serves PUT /o/{addr}: POST /o for a body whose address the
// caller already knows (the gateway spooling a blob fetched from a peer).
// The answers are POST's, plus 422 "hash_mismatch" when the body does not
// hash to {addr}: then nothing is kept.
func (s *Server) handlePutAt(w http.ResponseWriter, r *http.Request) {
	want, err := address.Parse(r.PathValue("addr"))
	if err != nil {
		httpx.Error(w, http.StatusBadRequest, "bad_address", err.Error())
		return
	}
	s.upload(w, r, &want)
}

// upload streams one upload into the store; want, when set, is the address
// the body must hash to.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, want *[32]byte) {
	max := s.cfg.MaxObjectBytes
	prog := httpx.NewProgress(w, s.cfg.IOIdleTimeout)
	defer prog.Finish(r)
	w = prog.Writer(w)
	r.Body = prog.Body(r.Body)
	if !httpx.CapBody(w, r, max) {
		s.m.putFail.WithLabelValues("too_large").Inc()
		return
	}
	var (
		addr  [32]byte
		size  int64
		dedup bool
		err   error
	)
	if want != nil {
		addr = *want
		size, dedup, err = s.store.PutAt(r.Context(), addr, r.Body, max)
	} else {
		addr, size, dedup, err = s.store.Put(r.Context(), r.Body, max)
	}
	if err != nil {
		s.putError(w, r, err)
		return
	}
	s.m.puts.Inc()
	s.m.putBytes.Add(float64(size))
	resp := putResponse{Address: address.Format(addr), Size: size}
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
	case errors.Is(err, ErrMismatch):
		s.m.putFail.WithLabelValues("mismatch").Inc()
		httpx.Errorf(w, http.StatusUnprocessableEntity, "hash_mismatch", "%v", err)
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
	case httpx.IsIdle(err):
		s.m.putFail.WithLabelValues("client").Inc()
		httpx.IdleError(w, err)
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
// verification rules. Each write must make progress within --io-idle-timeout
// (httpx.Progress), so a slow download is cut only when it stalls.
func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	addr, err := address.Parse(r.PathValue("addr"))
	if err != nil {
		httpx.Error(w, http.StatusBadRequest, "bad_address", err.Error())
		return
	}
	f, v, err := s.store.Open(addr)
	switch {
	case errors.Is(err, ErrNotFound):
		httpx.Errorf(w, http.StatusNotFound, "not_found", "no object %s", address.Format(addr))
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
	size := v.Size
	prog := httpx.NewProgress(w, s.cfg.IOIdleTimeout)
	defer prog.Finish(r)
	w = prog.Writer(w)

	etag := `"` + address.Format(addr) + `"`
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
		if s.verified.verified(addr, v) {
			s.m.verifyCacheHits.Inc()
		} else if !s.verifyAll(w, r, f, addr, v, *buf) {
			return
		}
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			s.log.Error("seek object", "address", address.Format(addr), "error", err)
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
	s.streamVerify(w, r, f, addr, v, *buf)
}

// setObjectHeaders sets the validators and caching headers of a stored
// blob: its content never changes, so it is cacheable forever.
func setObjectHeaders(h http.Header, etag string) {
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Content-Type-Options", "nosniff")
}

// verifyAll hashes the whole blob before anything is sent and remembers a
// good copy in the verified cache. On a mismatch the blob is quarantined and
// a 500 JSON error written; it returns whether the blob is good. It stops
// (aborting the response) as soon as the client goes away.
func (s *Server) verifyAll(w http.ResponseWriter, r *http.Request, f io.Reader, addr [32]byte, v Version, buf []byte) bool {
	h := blake3.New()
	var n int64
	for {
		if r.Context().Err() != nil {
			panic(http.ErrAbortHandler) // client gone: stop reading
		}
		if s.hookVerifyChunk != nil {
			s.hookVerifyChunk(r)
		}
		m, err := f.Read(buf)
		n += int64(m)
		_, _ = h.Write(buf[:m])
		if err == io.EOF {
			break
		}
		if err != nil {
			s.log.Error("read object", "address", address.Format(addr), "error", err, "request_id", httpx.RequestIDFrom(r.Context()))
			httpx.Error(w, http.StatusInternalServerError, "internal", "could not read object")
			return false
		}
	}
	var got [32]byte
	copy(got[:], h.Sum(nil))
	if n != v.Size || got != addr {
		s.corrupt(r, addr, v, fmt.Sprintf("read %d of %d bytes, hash b3:%x", n, v.Size, got))
		httpx.Errorf(w, http.StatusInternalServerError, "corrupt", "object %s failed verification and was quarantined", address.Format(addr))
		return false
	}
	s.verified.add(addr, v)
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
			s.log.Error("read object", "address", address.Format(addr), "error", err)
			panic(http.ErrAbortHandler)
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return // client gone or stalled past the idle timeout
		}
		sent += int64(n)
		s.m.getBytes.Add(float64(n))
	}
}

// streamVerify sends a large blob chunk by chunk while hashing it. The last
// chunk is held back until the hash is known: if it does not match the
// address, the blob is quarantined and the response aborted (the client sees
// a broken transfer short of Content-Length, never a clean end). A good copy
// is remembered in the verified cache, so later range reads skip hashing.
func (s *Server) streamVerify(w http.ResponseWriter, r *http.Request, f io.Reader, addr [32]byte, v Version, buf []byte) {
	h := blake3.New()
	size := v.Size
	for sent := int64(0); sent < size; {
		if r.Context().Err() != nil {
			panic(http.ErrAbortHandler)
		}
		n, err := io.ReadFull(f, buf[:min(int64(len(buf)), size-sent)])
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			s.corrupt(r, addr, v, fmt.Sprintf("truncated at %d of %d bytes", sent+int64(n), size))
			panic(http.ErrAbortHandler)
		}
		if err != nil {
			s.log.Error("read object", "address", address.Format(addr), "error", err)
			panic(http.ErrAbortHandler)
		}
		_, _ = h.Write(buf[:n])
		if sent+int64(n) == size {
			var got [32]byte
			copy(got[:], h.Sum(nil))
			if got != addr {
				s.corrupt(r, addr, v, fmt.Sprintf("hash b3:%x", got))
				panic(http.ErrAbortHandler)
			}
			s.verified.add(addr, v)
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return // client gone or stalled past the idle timeout
		}
		sent += int64(n)
		s.m.getBytes.Add(float64(n))
	}
}

// corrupt quarantines the copy v of a blob that failed verification and
// counts it. Only that copy is touched: if it was quarantined already or a
// good copy has been uploaded since, nothing happens.
func (s *Server) corrupt(r *http.Request, addr [32]byte, v Version, detail string) {
	s.verified.forget(addr)
	if s.hookBeforeQuarantine != nil {
		s.hookBeforeQuarantine()
	}
	err := s.store.Quarantine(addr, v)
	switch {
	case err == nil:
		s.m.verifyFail.Inc()
		s.log.Error("object failed verification, quarantined", "address", address.Format(addr), "detail", detail,
			"request_id", httpx.RequestIDFrom(r.Context()))
	case errors.Is(err, ErrNotFound):
		// Another request quarantined this copy first (and counted it), or
		// it has been replaced by a fresh upload, which must stay.
		s.log.Warn("object failed verification, already out of service", "address", address.Format(addr), "detail", detail,
			"request_id", httpx.RequestIDFrom(r.Context()))
	default:
		s.log.Error("object failed verification, quarantine failed", "address", address.Format(addr), "detail", detail, "error", err)
	}
}
