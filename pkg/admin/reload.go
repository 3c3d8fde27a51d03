package admin

import (
	"errors"
	"net/http"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/httpx"
)

// ErrInvalidConfig marks a reload error that is the operator's config's fault
// without being a *config.ValidationError (e.g. a YAML syntax error or an
// unknown key): the Reload func wraps it (fmt.Errorf("%w: %w",
// admin.ErrInvalidConfig, err)) to get a 422 instead of a 500.
var ErrInvalidConfig = errors.New("invalid configuration")

// ReloadError is the 422 body of POST /api/v1/reload.
type ReloadError struct {
	Error  string       `json:"error"`
	Code   string       `json:"code"`
	Errors []FieldError `json:"errors"`
}

// FieldError is one invalid config value in a ReloadError.
type FieldError struct {
	Field   string `json:"field"`
	Source  string `json:"source"`
	Message string `json:"message"`
}

// writeReloadError answers a failed reload: 422 naming every field error of a
// *config.ValidationError (or carrying the message of an ErrInvalidConfig),
// 500 for anything else. The old config stays in force either way.
func writeReloadError(w http.ResponseWriter, err error) {
	var ve *config.ValidationError
	switch {
	case errors.As(err, &ve):
		body := ReloadError{
			Error:  "config is invalid; the old config stays in force",
			Code:   "invalid",
			Errors: make([]FieldError, 0, len(ve.Errs)),
		}
		for _, fe := range ve.Errs {
			body.Errors = append(body.Errors, FieldError{Field: fe.Field, Source: fe.Source, Message: fe.Msg})
		}
		httpx.JSON(w, http.StatusUnprocessableEntity, body)
	case errors.Is(err, ErrInvalidConfig):
		httpx.JSON(w, http.StatusUnprocessableEntity, ReloadError{
			Error:  "reload: " + err.Error() + "; the old config stays in force",
			Code:   "invalid",
			Errors: []FieldError{},
		})
	default:
		httpx.Error(w, http.StatusInternalServerError, "", "reload: "+err.Error())
	}
}
