package httpx

import (
	"net/http"
)

// Mux is an http.ServeMux (Go 1.22 patterns) whose own 404 and 405 answers
// are JSON errors like every other error in macronode. The Allow header of a
// 405 is kept.
type Mux struct {
	*http.ServeMux
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{ServeMux: http.NewServeMux()} }

// ServeHTTP dispatches to the matching pattern; when none matches, the mux's
// plain-text error is replaced by a JSON one with the same status.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := m.ServeMux.Handler(r)
	if pattern != "" {
		m.ServeMux.ServeHTTP(w, r)
		return
	}
	sink := &statusSink{header: w.Header(), status: http.StatusNotFound}
	h.ServeHTTP(sink, r)
	switch sink.status {
	case http.StatusMethodNotAllowed:
		Errorf(w, sink.status, "", "method %s not allowed on %s", r.Method, r.URL.Path)
	case http.StatusNotFound:
		Errorf(w, sink.status, "", "no route for %s %s", r.Method, r.URL.Path)
	default:
		Errorf(w, sink.status, "", "%s", http.StatusText(sink.status))
	}
}

// statusSink records the status a ServeMux error handler would have written
// and discards its plain-text body. It shares the real header map so headers
// such as Allow survive.
type statusSink struct {
	header http.Header
	status int
}

func (s *statusSink) Header() http.Header         { return s.header }
func (s *statusSink) Write(p []byte) (int, error) { return len(p), nil }
func (s *statusSink) WriteHeader(code int)        { s.status = code }

// StatusRecorder wraps a ResponseWriter to remember the final status and the
// bytes written, for access logs and metrics. Informational (1xx) headers,
// such as 103 Early Hints forwarded by a proxy, and superfluous later
// WriteHeader calls do not change the recorded status: it is the one the
// client got. Unwrap lets http.ResponseController reach Flush and deadlines
// of the underlying writer.
type StatusRecorder struct {
	http.ResponseWriter
	Status int
	Bytes  int64
	final  bool // a non-1xx status has been written
}

// NewStatusRecorder wraps w; Status defaults to 200.
func NewStatusRecorder(w http.ResponseWriter) *StatusRecorder {
	return &StatusRecorder{ResponseWriter: w, Status: http.StatusOK}
}

// WriteHeader records the first final status.
func (s *StatusRecorder) WriteHeader(code int) {
	if !s.final && code >= 200 {
		s.Status, s.final = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes.
func (s *StatusRecorder) Write(p []byte) (int, error) {
	s.final = true // an implicit 200, or the status already recorded
	n, err := s.ResponseWriter.Write(p)
	s.Bytes += int64(n)
	return n, err
}

// Flush forwards to the underlying writer when it can flush.
func (s *StatusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap returns the underlying ResponseWriter.
func (s *StatusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
