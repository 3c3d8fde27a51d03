package admin

import (
	"context"
	"errors"
	"io/fs"
	"net/http"

	"github.com/macronode/macronode/pkg/audit"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/events"
	"github.com/macronode/macronode/pkg/httpx"
)

// ErrInvalidConfig marks a reload error that is the operator's config's fault
// without being a *config.ValidationError (e.g. a YAML syntax error or an
// unknown key): the Reload func wraps it (fmt.Errorf("%w: %w",
// admin.ErrInvalidConfig, err)) to get a 422 instead of a 500.
var ErrInvalidConfig = errors.New("invalid configuration")

// ErrReloadUnavailable is returned by Server.Reload when Options.Reload is nil.
var ErrReloadUnavailable = errors.New("reload is not available on this node")

// Reload re-reads the configuration through Options.Reload, counts the
// outcome in macronode_config_reloads_total{result="success"|"failure"} and
// logs it. POST /api/v1/reload calls it, and the daemon must call it (not
// Options.Reload directly) on SIGHUP so that every reload is counted. The
// lists of a successful result are never nil. Without Options.Reload it
// returns ErrReloadUnavailable and counts nothing.
func (s *Server) Reload(ctx context.Context) (ReloadResult, error) {
	if s.opts.Reload == nil {
		return ReloadResult{}, ErrReloadUnavailable
	}
	res, err := s.opts.Reload(ctx)
	defer func() { s.recordReload(ctx, res, err) }()
	if err != nil {
		s.metrics.reloads.WithLabelValues("failure").Inc()
		s.log.Warn("config reload failed; the old config stays in force", "error", err)
		return res, err
	}
	s.metrics.reloads.WithLabelValues("success").Inc()
	s.log.Info("config reloaded", "changed", res.Changed, "applied", res.Applied, "restart_required", res.RestartRequired)
	for _, p := range []*[]string{&res.Changed, &res.Applied, &res.RestartRequired} {
		if *p == nil {
			*p = []string{}
		}
	}
	return res, nil
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	res, err := s.Reload(r.Context())
	if err != nil {
		writeReloadError(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, ReloadResponse{Status: "reloaded", ReloadResult: res})
}

// writeReloadError answers a failed reload: 422 naming every field error of a
// *config.ValidationError (plus, when it is joined with load problems, one
// entry per problem, source "load"), or one entry (source "file") carrying
// the message of an ErrInvalidConfig; 503 when reload is not wired; 500 for
// anything else. The old config stays in force either way.
func writeReloadError(w http.ResponseWriter, err error) {
	var ve *config.ValidationError
	switch {
	case errors.Is(err, ErrReloadUnavailable):
		httpx.Error(w, http.StatusServiceUnavailable, "", err.Error())
	case errors.As(err, &ve):
		httpx.JSON(w, http.StatusUnprocessableEntity, ReloadError{
			Error:  "config is invalid; the old config stays in force",
			Code:   "invalid",
			Errors: fieldErrors(err, nil),
		})
	case errors.Is(err, ErrInvalidConfig):
		// A file that does not parse names no field; the path is known
		// when the file could not be read at all.
		var field string
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			field = pe.Path
		}
		httpx.JSON(w, http.StatusUnprocessableEntity, ReloadError{
			Error:  "reload: " + err.Error() + "; the old config stays in force",
			Code:   "invalid",
			Errors: []FieldError{{Field: field, Source: "file", Message: err.Error()}},
		})
	default:
		httpx.Error(w, http.StatusInternalServerError, "", "reload: "+err.Error())
	}
}

// fieldErrors flattens a reload error into entries: each field error of a
// *config.ValidationError (also when wrapped), and each other problem of a
// joined error (config.Resolve joins load problems with validation) as its
// message, source "load".
func fieldErrors(err error, out []FieldError) []FieldError {
	var ve *config.ValidationError
	switch e := err.(type) {
	case *config.ValidationError:
		for _, fe := range e.Errs {
			out = append(out, FieldError{Field: fe.Field, Source: fe.Source, Message: fe.Msg})
		}
		return out
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			out = fieldErrors(inner, out)
		}
		return out
	case interface{ Unwrap() error }:
		if errors.As(err, &ve) {
			return fieldErrors(e.Unwrap(), out)
		}
	}
	return append(out, FieldError{Source: "load", Message: err.Error()})
}

// ReloadEvent is the body of a reload event and of its audit record.
type ReloadEvent struct {
	Result string `json:"result"` // "ok" or "error"
	Error  string `json:"error,omitempty"`
	ReloadResult
}

// recordReload publishes the reload event and audits it: the admin POST's
// own record becomes a reload record, and a reload not made over HTTP
// (SIGHUP) gets a record of its own, durable before Reload returns.
func (s *Server) recordReload(ctx context.Context, res ReloadResult, err error) {
	ev := ReloadEvent{Result: "ok", ReloadResult: res}
	if err != nil {
		ev.Result, ev.Error = "error", err.Error()
	}
	if s.opts.Events != nil {
		s.opts.Events.Publish(events.Reload, "", ev)
	}
	if rec := auditRecord(ctx); rec != nil {
		rec.Kind, rec.Detail = audit.KindReload, ev
		return
	}
	if s.opts.Audit == nil {
		return
	}
	rec := audit.Record{Kind: audit.KindReload, Who: "signal", Action: "reload", Result: ev.Result, Detail: ev}
	if aerr := s.opts.Audit.Append(rec); aerr != nil {
		s.log.Error("audit record not written", "error", aerr, "action", "reload")
	}
}
