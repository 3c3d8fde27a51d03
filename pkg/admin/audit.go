package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/macronode/macronode/pkg/audit"
	"github.com/macronode/macronode/pkg/httpx"
)

// Limits of GET /api/v1/audit?limit=N.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 10000
)

// AuditResponse is the body of GET /api/v1/audit.
type AuditResponse struct {
	Records []audit.Record `json:"records"`
}

type auditKey struct{}

// auditRecord is the record of the admin POST being served, for its
// handler to enrich (kind, detail); nil without an audit log.
func auditRecord(ctx context.Context) *audit.Record {
	rec, _ := ctx.Value(auditKey{}).(*audit.Record)
	return rec
}

// who names the client of r: the fingerprint of the bearer token it
// presented, else its mTLS certificate's subject, else its address.
func who(r *http.Request) string {
	if tok, ok := bearer(r.Header.Get("Authorization")); ok {
		sum := sha256.Sum256([]byte(tok))
		return "token:" + hex.EncodeToString(sum[:6])
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return "mtls:" + r.TLS.PeerCertificates[0].Subject.String()
	}
	return "addr:" + httpx.ClientIP(r)
}

// audited records an admin POST (refusals included) in the audit log. The
// answer is buffered and sent only once the record is durable.
func (s *Server) audited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Audit == nil {
			next.ServeHTTP(w, r)
			return
		}
		rec := &audit.Record{Kind: audit.KindAdmin, Who: who(r), Peer: r.RemoteAddr, Action: r.Method + " " + r.URL.Path,
			Service: r.PathValue("name"), RequestID: httpx.RequestIDFrom(r.Context())}
		bw := &bufferedWriter{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(bw, r.WithContext(context.WithValue(r.Context(), auditKey{}, rec)))
		rec.Result = strconv.Itoa(bw.status)
		if err := s.opts.Audit.Append(*rec); err != nil {
			s.log.Error("audit record not written", "error", err, "action", rec.Action, "who", rec.Who)
		}
		for k, v := range bw.header {
			w.Header()[k] = v
		}
		w.WriteHeader(bw.status)
		_, _ = w.Write(bw.body.Bytes())
	})
}

// bufferedWriter holds an answer until its audit record is written.
type bufferedWriter struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) WriteHeader(code int) {
	if !b.wrote {
		b.status, b.wrote = code, true
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}

// Flush does nothing: the answer goes out after the audit record.
func (b *bufferedWriter) Flush() {}

// handleAudit answers GET /api/v1/audit?since=RFC3339&limit=N.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	if s.opts.Audit == nil {
		httpx.Error(w, http.StatusServiceUnavailable, "", "no audit log on this node")
		return
	}
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			httpx.Errorf(w, http.StatusBadRequest, "bad_request", "since must be an RFC 3339 time, got %q", v)
			return
		}
		since = t
	}
	limit := DefaultAuditLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			httpx.Errorf(w, http.StatusBadRequest, "bad_request", "limit must be an integer between 1 and %d, got %q", MaxAuditLimit, v)
			return
		}
		limit = min(n, MaxAuditLimit)
	}
	recs, err := s.opts.Audit.Read(since, limit)
	if err != nil {
		httpx.Error(w, http.StatusInternalServerError, "", err.Error())
		return
	}
	if recs == nil {
		recs = []audit.Record{}
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, AuditResponse{Records: recs})
}

// requireTokenIfSet guards a read route: with admin_token set it needs the
// bearer token (as a POST does); without one it is open, as status is.
func (s *Server) requireTokenIfSet(next http.Handler) http.Handler {
	guarded := s.requireAuth(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg := s.config(); cfg == nil || cfg.AdminToken == "" {
			next.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}
