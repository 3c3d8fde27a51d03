package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/macronode/macronode/pkg/address"
	"github.com/macronode/macronode/pkg/planes/gateway/fetch"
)

// HeaderSource says where the bytes of a blob came from: "local", or
// "peer <node id>" on the answer that followed a fetch from that peer.
const HeaderSource = "X-Macronode-Source"

// maxPutAnswer bounds how much of storage's answer to POST /o is read to
// learn the address to announce ({"address":"b3:…","size":n} is ~90 bytes).
const maxPutAnswer = 4096

// remoteError is a failure of the remote path, answered with its own status
// and code by proxyError.
type remoteError struct {
	status int
	code   string
	err    error
}

func (e *remoteError) Error() string { return e.err.Error() }
func (e *remoteError) Unwrap() error { return e.err }

// noRemote reports whether the client asked to be answered from local
// storage only: Cache-Control: only-if-cached (RFC 9111 §5.2.1.7) or
// ?local=1.
func noRemote(r *http.Request) bool {
	if r.URL.Query().Get("local") == "1" {
		return true
	}
	for _, v := range r.Header.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "only-if-cached") {
				return true
			}
		}
	}
	return false
}

// storageResponse is the storage route's ModifyResponse. After a POST /o
// that stored (201) or found (200) a blob it queues the address for the
// DHT; on GET and HEAD /o/{addr} it labels a local answer with its source
// and turns a local miss into a remote fetch (GET) or size query (HEAD).
func (s *Server) storageResponse(res *http.Response, st *reqState) error {
	switch {
	case st.pattern == patternPost:
		if s.fetcher != nil && (res.StatusCode == http.StatusCreated || res.StatusCode == http.StatusOK) {
			s.announceFrom(res)
		}
	case st.pattern == patternGet:
		switch res.StatusCode {
		case http.StatusOK, http.StatusPartialContent, http.StatusNotModified:
			res.Header.Set(HeaderSource, "local")
		case http.StatusNotFound:
			return s.miss(res, st)
		}
	}
	return nil
}

// announceFrom reads the address out of storage's small JSON answer and
// hands it to the fetcher's announce queue, which never blocks. The bytes
// read are put back in front of the body, so the client gets them all.
func (s *Server) announceFrom(res *http.Response) {
	b, err := io.ReadAll(io.LimitReader(res.Body, maxPutAnswer))
	res.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), res.Body), res.Body}
	if err != nil {
		return // the client sees the same failure while the body is copied
	}
	var ans struct {
		Address string `json:"address"`
	}
	if json.Unmarshal(b, &ans) != nil || address.Validate(ans.Address) != nil {
		s.log.Warn("storage answered POST /o without an address; not announced", "status", res.StatusCode)
		return
	}
	s.fetcher.Announce(ans.Address)
}

// miss handles storage's 404 for GET or HEAD /o/{addr}. Without a fetcher
// the 404 stands. A client that asked for local bytes only gets 504. HEAD
// asks the providers for the size and never fetches; GET fetches the blob
// into local storage (verified there) and replaces the 404 by a fresh GET
// of the same request to storage.
func (s *Server) miss(res *http.Response, st *reqState) error {
	if s.fetcher == nil || address.Validate(st.addr) != nil {
		return nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxPutAnswer))
	res.Body.Close()
	if st.local {
		return &remoteError{http.StatusGatewayTimeout, "not_cached",
			fmt.Errorf("%s is not stored on this node and the request allows local bytes only", st.addr)}
	}
	ctx := res.Request.Context()
	if res.Request.Method == http.MethodHead {
		return s.remoteStat(ctx, res, st.addr)
	}
	id, err := s.fetcher.Ensure(ctx, st.addr)
	if err != nil {
		return fetchError(err, st.addr)
	}
	again, err := s.storage.transport.RoundTrip(res.Request.Clone(ctx))
	if err != nil {
		return fmt.Errorf("storage after fetching %s: %w", st.addr, err)
	}
	for _, h := range []string{"Connection", "Keep-Alive"} {
		again.Header.Del(h)
	}
	switch again.StatusCode {
	case http.StatusOK, http.StatusPartialContent, http.StatusNotModified:
		again.Header.Set(HeaderSource, "peer "+id)
	}
	*res = *again
	return nil
}

// remoteStat answers a HEAD that missed locally with the size a provider
// reports (200), or 404 when no provider has it.
func (s *Server) remoteStat(ctx context.Context, res *http.Response, addr string) error {
	n, id, err := s.fetcher.Stat(ctx, addr)
	switch {
	case errors.Is(err, fetch.ErrNoProvider), errors.Is(err, fetch.ErrNoDelivery):
		return &remoteError{http.StatusNotFound, "not_found", fmt.Errorf("no node holds %s: %w", addr, err)}
	case err != nil:
		return fetchError(err, addr)
	}
	res.StatusCode, res.Status = http.StatusOK, "200 OK"
	res.Header = http.Header{}
	res.Header.Set("Content-Type", "application/octet-stream")
	res.Header.Set("Content-Length", strconv.FormatInt(n, 10))
	res.Header.Set("ETag", `"`+addr+`"`)
	res.Header.Set(HeaderSource, "peer "+id)
	res.ContentLength = n
	res.Body = http.NoBody
	return nil
}

// fetchError maps an error of the fetcher to the answer: no provider 404,
// providers that did not deliver or a failed lookup 502. A caller whose
// context ended gets its error back unchanged (proxyError's client-gone
// path).
func fetchError(err error, addr string) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, fetch.ErrNoProvider):
		return &remoteError{http.StatusNotFound, "not_found", fmt.Errorf("no node holds %s: %w", addr, err)}
	case errors.Is(err, fetch.ErrLookup):
		return &remoteError{http.StatusBadGateway, "lookup_failed", fmt.Errorf("finding the providers of %s: %w", addr, err)}
	default:
		return &remoteError{http.StatusBadGateway, "fetch_failed", fmt.Errorf("fetching %s from its providers: %w", addr, err)}
	}
}
