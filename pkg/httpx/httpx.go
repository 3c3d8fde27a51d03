// Package httpx holds the HTTP pieces that the admin plane and every service
// plane share: typed JSON errors, request ids, body caps, a JSON-speaking
// ServeMux, panic recovery, per-client rate limiting and per-route request
// metrics. Besides the standard library it imports only golang.org/x/time/rate
// and prometheus/client_golang, so any plane can use it.
package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// HeaderRequestID is the header that carries a request's id end to end.
const HeaderRequestID = "X-Request-Id"

// ErrorBody is the JSON shape of every HTTP error in macronode (SPEC §9).
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// JSON writes v as a JSON response with the given status.
func JSON(w http.ResponseWriter, status int, v any) {
	buf, err := json.Marshal(v)
	if err != nil {
		Error(w, http.StatusInternalServerError, "internal", "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(buf, '\n'))
}

// Error writes the JSON error body {"error":msg,"code":code} with status.
// When code is empty a code is derived from the status.
func Error(w http.ResponseWriter, status int, code, msg string) {
	if code == "" {
		code = CodeFor(status)
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	buf, _ := json.Marshal(ErrorBody{Error: msg, Code: code})
	w.WriteHeader(status)
	_, _ = w.Write(append(buf, '\n'))
}

// Errorf is Error with a formatted message.
func Errorf(w http.ResponseWriter, status int, code, format string, args ...any) {
	Error(w, status, code, fmt.Sprintf(format, args...))
}

// CodeFor maps an HTTP status to the stable machine-readable error code used
// when a handler does not choose a more specific one.
func CodeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestTimeout:
		return "request_timeout"
	case http.StatusConflict:
		return "conflict"
	case http.StatusPreconditionFailed:
		return "precondition_failed"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusRequestedRangeNotSatisfiable:
		return "range_not_satisfiable"
	case http.StatusUnprocessableEntity:
		return "invalid"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusGatewayTimeout:
		return "timeout"
	case http.StatusInsufficientStorage:
		return "storage_full"
	case http.StatusBadGateway:
		return "bad_gateway"
	default:
		if status >= 500 {
			return "internal"
		}
		return "error"
	}
}

// IsTooLarge reports whether err came from a body cap (http.MaxBytesReader).
func IsTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

type ctxKey int

const requestIDKey ctxKey = 0

// NewRequestID returns a fresh random 128-bit id in hex.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RequestIDFrom returns the request id stored by the RequestID middleware.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// validRequestID accepts ids that are safe to echo into logs and headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// RequestID echoes a valid incoming X-Request-Id or generates one, sets it on
// the response and the request (so proxies forward it) and in the context.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = NewRequestID()
			r.Header.Set(HeaderRequestID, id)
		}
		w.Header().Set(HeaderRequestID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// MaxBody caps every request body at n bytes; reading past it fails with an
// error for which IsTooLarge is true.
func MaxBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if CapBody(w, r, n) {
			next.ServeHTTP(w, r)
		}
	})
}

// Timeout gives each request a context deadline of d. Handlers that block
// must honour r.Context(); unlike http.TimeoutHandler nothing is buffered, so
// streaming responses keep streaming.
func Timeout(d time.Duration, next http.Handler) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Recover turns a handler panic into a 500 JSON error instead of a dropped
// connection. http.ErrAbortHandler is re-raised, as net/http expects.
func Recover(onPanic func(r *http.Request, v any), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel compared by identity as net/http does
				panic(v)
			}
			if onPanic != nil {
				onPanic(r, v)
			}
			Error(w, http.StatusInternalServerError, "internal", "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}
