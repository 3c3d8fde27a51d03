package httpx

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func decodeError(t *testing.T, res *http.Response) ErrorBody {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var eb ErrorBody
	if err := json.NewDecoder(res.Body).Decode(&eb); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	return eb
}

func TestMuxJSONErrors(t *testing.T) {
	mux := NewMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		JSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	cases := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/things/7", 200, "", ""},
		{"GET", "/nothing", 404, "not_found", ""},
		{"DELETE", "/things/7", 405, "method_not_allowed", "GET, HEAD"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, res.StatusCode, c.status)
		}
		if c.code != "" {
			if eb := decodeError(t, res); eb.Code != c.code || eb.Error == "" {
				t.Errorf("%s %s: body %+v, want code %q", c.method, c.path, eb, c.code)
			}
		}
		if c.allow != "" && res.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, res.Header.Get("Allow"), c.allow)
		}
		res.Body.Close()
	}
}

func TestRequestID(t *testing.T) {
	var seen string
	h := RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = RequestIDFrom(r.Context())
		if r.Header.Get(HeaderRequestID) != seen {
			t.Errorf("request header %q != context %q", r.Header.Get(HeaderRequestID), seen)
		}
	}))
	cases := []struct {
		in   string
		echo bool
	}{
		{"abc-123", true},
		{"", false},
		{"has space", false},
		{strings.Repeat("x", 200), false},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		if c.in != "" {
			req.Header.Set(HeaderRequestID, c.in)
		}
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(HeaderRequestID)
		if got == "" || got != seen {
			t.Errorf("in %q: response id %q, handler saw %q", c.in, got, seen)
		}
		if c.echo != (got == c.in) {
			t.Errorf("in %q: echoed=%v, want %v (got %q)", c.in, got == c.in, c.echo, got)
		}
	}
}

func TestMaxBody(t *testing.T) {
	h := MaxBody(32, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			if IsTooLarge(err) {
				Error(w, http.StatusRequestEntityTooLarge, "", "too large")
				return
			}
			Error(w, http.StatusBadRequest, "", err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	cases := []struct {
		body   string
		length bool // declare Content-Length
		status int
	}{
		{"small", true, 204},
		{strings.Repeat("x", 64), true, 413},  // refused from Content-Length, unread
		{strings.Repeat("x", 64), false, 413}, // chunked: cut while reading
	}
	for _, c := range cases {
		req := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
		if !c.length {
			req.ContentLength = -1
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Errorf("%d bytes (length %v): status %d, want %d", len(c.body), c.length, rec.Code, c.status)
		}
	}
}

func TestRecover(t *testing.T) {
	var got any
	h := Recover(func(_ *http.Request, v any) { got = v }, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || got != "boom" {
		t.Fatalf("status %d, recovered %v", rec.Code, got)
	}
	res := rec.Result()
	if eb := decodeError(t, res); eb.Code != "internal" {
		t.Fatalf("code %q", eb.Code)
	}
}

func TestTimeoutSetsDeadline(t *testing.T) {
	h := Timeout(time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Context().Deadline(); !ok {
			t.Error("no deadline on request context")
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}

func TestIPLimiter(t *testing.T) {
	l := NewIPLimiter(1, 2)
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	codes := []int{}
	for i := 0; i < 3; i++ {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = "10.0.0.1:5555"
		h.ServeHTTP(rec, req)
		codes = append(codes, rec.Code)
		if rec.Code == 429 && rec.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("codes %v, want [200 200 429]", codes)
	}
	// Another client has its own bucket.
	if !l.Allow("10.0.0.2") {
		t.Fatal("second client limited by the first one's bucket")
	}
	if !NewIPLimiter(0, 0).Allow("x") {
		t.Fatal("rps 0 should disable the limit")
	}
}

func TestStatusRecorder(t *testing.T) {
	rec := httptest.NewRecorder()
	sr := NewStatusRecorder(rec)
	sr.WriteHeader(201)
	_, _ = io.WriteString(sr, "hello")
	sr.Flush()
	if sr.Status != 201 || sr.Bytes != 5 || !rec.Flushed {
		t.Fatalf("status %d bytes %d flushed %v", sr.Status, sr.Bytes, rec.Flushed)
	}
	if sr.Unwrap() != rec {
		t.Fatal("Unwrap")
	}
}

func TestStatusRecorderKeepsTheFinalStatus(t *testing.T) {
	cases := []struct {
		name  string
		write func(w http.ResponseWriter)
		want  int
	}{
		{"implicit 200", func(w http.ResponseWriter) { _, _ = io.WriteString(w, "x") }, 200},
		{"early hints then 201", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(201) }, 201},
		{"superfluous second header", func(w http.ResponseWriter) { w.WriteHeader(404); w.WriteHeader(500) }, 404},
		{"write then header", func(w http.ResponseWriter) { _, _ = io.WriteString(w, "x"); w.WriteHeader(500) }, 200},
	}
	for _, c := range cases {
		sr := NewStatusRecorder(httptest.NewRecorder())
		c.write(sr)
		if sr.Status != c.want {
			t.Errorf("%s: Status %d, want %d", c.name, sr.Status, c.want)
		}
	}
}

func TestCodeFor(t *testing.T) {
	for status, want := range map[int]string{400: "bad_request", 404: "not_found", 413: "too_large", 429: "rate_limited", 503: "unavailable", 507: "storage_full", 599: "internal", 418: "error"} {
		if got := CodeFor(status); got != want {
			t.Errorf("CodeFor(%d) = %q, want %q", status, got, want)
		}
	}
}
