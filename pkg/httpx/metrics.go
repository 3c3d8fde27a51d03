package httpx

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MethodOther is the method label of any non-standard request method.
const MethodOther = "other"

// MethodLabel bounds a method label's cardinality: the standard methods
// (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE) label as
// themselves, anything else (including lower-case spellings) as "other".
func MethodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	default:
		return MethodOther
	}
}

// Instrument counts and times every request next serves. After next returns
// it adds one to requests (labels route, method, code) and observes the
// elapsed seconds in duration (label route). route computes the route label
// at that point, so it may read r.Pattern when next is the ServeMux itself;
// it must be non-nil and should return a bounded set of values (the matched
// pattern, never the raw path). The method is bounded by MethodLabel. A
// request whose handler panics is recorded with code 500 and the panic is
// re-raised for an outer Recover.
func Instrument(next http.Handler, requests *prometheus.CounterVec, duration *prometheus.HistogramVec, route func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := NewStatusRecorder(w)
		defer func() {
			code := rec.Status
			v := recover()
			if v != nil {
				code = http.StatusInternalServerError
			}
			label := route(r)
			requests.WithLabelValues(label, MethodLabel(r.Method), strconv.Itoa(code)).Inc()
			duration.WithLabelValues(label).Observe(time.Since(start).Seconds())
			if v != nil {
				panic(v) // re-raised for Recover
			}
		}()
		next.ServeHTTP(rec, r)
	})
}
