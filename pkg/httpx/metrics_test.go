package httpx

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

func TestMethodLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"GET", "GET"},
		{"HEAD", "HEAD"},
		{"POST", "POST"},
		{"PUT", "PUT"},
		{"PATCH", "PATCH"},
		{"DELETE", "DELETE"},
		{"OPTIONS", "OPTIONS"},
		{"CONNECT", "CONNECT"},
		{"TRACE", "TRACE"},
		{"get", MethodOther},
		{"BREW", MethodOther},
		{"PROPFIND", MethodOther},
		{"", MethodOther},
		{"GET ", MethodOther},
		{strings.Repeat("X", 1000), MethodOther},
	}
	for _, tc := range tests {
		if got := MethodLabel(tc.in); got != tc.want {
			t.Errorf("MethodLabel(%.20q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func newTestVecs() (*prometheus.CounterVec, *prometheus.HistogramVec) {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_requests_total", Help: "h"},
			[]string{"route", "method", "code"}),
		prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "t_duration_seconds", Help: "h"},
			[]string{"route"})
}

func TestInstrument(t *testing.T) {
	requests, duration := newTestVecs()
	mux := NewMux()
	mux.HandleFunc("GET /o/{addr}", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok")) // implicit 200
	})
	route := func(r *http.Request) string {
		if r.Pattern == "" {
			return "unmatched"
		}
		return r.Pattern
	}
	srv := httptest.NewServer(Instrument(mux, requests, duration, route))
	defer srv.Close()

	do := func(method, path string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		_ = resp.Body.Close()
	}
	do("GET", "/o/a1")
	do("GET", "/o/b2") // same route, distinct raw path
	do("GET", "/plain")
	do("BREW", "/plain")
	do("GET", "/nope")
	do("DELETE", "/o/a1") // 405 from the mux, no pattern matched

	counts := []struct {
		route, method, code string
		want                float64
	}{
		{"GET /o/{addr}", "GET", "201", 2},
		{"/plain", "GET", "200", 1},
		{"/plain", MethodOther, "200", 1},
		{"unmatched", "GET", "404", 1},
		{"unmatched", "DELETE", "405", 1},
	}
	for _, c := range counts {
		if got := testutil.ToFloat64(requests.WithLabelValues(c.route, c.method, c.code)); got != c.want {
			t.Errorf("requests{%s,%s,%s} = %v, want %v", c.route, c.method, c.code, got, c.want)
		}
	}
	if got := testutil.CollectAndCount(requests); got != len(counts) {
		t.Errorf("requests has %d series, want %d", got, len(counts))
	}
	if got := testutil.CollectAndCount(duration); got != 3 {
		t.Errorf("duration has %d series, want 3 (one per route)", got)
	}
	for route, want := range map[string]uint64{"GET /o/{addr}": 2, "/plain": 2, "unmatched": 2} {
		if got := sampleCount(t, duration, route); got != want {
			t.Errorf("duration{%s} count = %d, want %d", route, got, want)
		}
	}
}

func TestInstrumentPanicCounts500(t *testing.T) {
	requests, duration := newTestVecs()
	boom := errors.New("boom")
	h := Instrument(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted) // overridden: the handler did not finish
		panic(boom)
	}), requests, duration, func(*http.Request) string { return "/p" })

	func() {
		defer func() {
			if v := recover(); v != boom {
				t.Errorf("recovered %v, want the handler's panic re-raised", v)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/p", nil))
	}()
	if got := testutil.ToFloat64(requests.WithLabelValues("/p", "POST", "500")); got != 1 {
		t.Errorf("requests{/p,POST,500} = %v, want 1", got)
	}
	if got := sampleCount(t, duration, "/p"); got != 1 {
		t.Errorf("duration{/p} count = %d, want 1", got)
	}
}

// sampleCount returns the observation count of duration's series for route.
func sampleCount(t *testing.T, duration *prometheus.HistogramVec, route string) uint64 {
	t.Helper()
	h, ok := duration.WithLabelValues(route).(prometheus.Histogram)
	if !ok {
		t.Fatalf("duration{%s} is not a histogram", route)
	}
	ch := make(chan prometheus.Metric, 1)
	h.Collect(ch)
	var pb dto.Metric
	if err := (<-ch).Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetHistogram().GetSampleCount()
}
