package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/macronode/macronode/pkg/supervisor"
)

// scrapeFamilies GETs path and parses the exposition.
func scrapeFamilies(t *testing.T, n *testNode, path string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	r := n.get(t, path)
	if r.code != 200 {
		t.Fatalf("GET %s: %d %s", path, r.code, r.body)
	}
	fams, err := parseChild(strings.NewReader(string(r.body)))
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return string(r.body), fams
}

// value finds the sample named name (with its _bucket/_sum/_count suffix)
// of family whose labels include want.
func value(fams map[string]*dto.MetricFamily, family, name string, want map[string]string) (float64, bool) {
	f := fams[family]
	if f == nil {
		return 0, false
	}
	samples, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{}, f)
	if err != nil {
		return 0, false
	}
next:
	for _, s := range samples {
		if string(s.Metric[model.MetricNameLabel]) != name {
			continue
		}
		for k, v := range want {
			if string(s.Metric[model.LabelName(k)]) != v {
				continue next
			}
		}
		return float64(s.Value), true
	}
	return 0, false
}

func lint(t *testing.T, body string) {
	t.Helper()
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// childServer serves a realistic child /metrics: Go and process collectors
// plus plane families, one of which clashes with a parent family name.
func childServer(t *testing.T) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	objects := prometheus.NewGauge(prometheus.GaugeOpts{Name: "macronode_storage_objects", Help: "Objects stored."})
	objects.Set(42)
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "macronode_http_requests_total", Help: "Child HTTP requests."},
		[]string{"route", "method", "code"})
	reqs.WithLabelValues("GET /o/{addr}", "GET", "200").Add(7)
	put := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "macronode_storage_put_duration_seconds", Help: "Put latency.",
		Buckets: []float64{0.1, 1}}, []string{"tier"})
	put.WithLabelValues("hot").Observe(0.05)
	put.WithLabelValues("hot").Observe(0.5)
	put.WithLabelValues("hot").Observe(5)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "macronode_build_info", Help: "Child build."},
		[]string{"service", "version"})
	info.WithLabelValues("storage", "0.1.0").Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		objects, reqs, put, info)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return srv
}

func TestMetricsPromlintClean(t *testing.T) {
	child := childServer(t)
	fs := &fakeServices{}
	snap := allRunning()
	snap[0].Listen = strings.TrimPrefix(child.URL, "http://")
	snap[1] = supervisor.Status{Name: "index", State: supervisor.StateFailed, Restarts: 11}
	fs.set(snap...)
	extra := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "macronode_child_log_lines_total",
		Help: "Log lines read from children."}, []string{"service", "stream"})
	extra.WithLabelValues("storage", "stderr").Add(3)
	n := start(t, Options{Services: fs, Collectors: []prometheus.Collector{extra},
		Reload: func(context.Context) (ReloadResult, error) { return ReloadResult{}, errors.New("nope") }})
	n.get(t, "/readyz")
	n.get(t, "/nope")
	n.post(t, "/api/v1/reload")
	body, fams := scrapeFamilies(t, n, "/metrics")
	lint(t, body)

	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "macronode_service_up", "macronode_service_ready",
		"macronode_service_restarts_total", "macronode_service_uptime_seconds", "macronode_service_state", "macronode_ready",
		"macronode_http_requests_total", "macronode_http_request_duration_seconds", "macronode_config_reloads_total",
		"macronode_build_info", "macronode_child_log_lines_total", "macronode_child_scrape_success"} {
		if fams[name] == nil {
			t.Errorf("family %s missing", name)
		}
	}
	checks := []struct {
		family, sample string
		labels         map[string]string
		want           float64
	}{
		{"macronode_service_up", "macronode_service_up", map[string]string{"service": "storage"}, 1},
		{"macronode_service_up", "macronode_service_up", map[string]string{"service": "index"}, 0},
		{"macronode_service_ready", "macronode_service_ready", map[string]string{"service": "index"}, 0},
		{"macronode_service_restarts_total", "macronode_service_restarts_total", map[string]string{"service": "index"}, 11},
		{"macronode_service_state", "macronode_service_state", map[string]string{"service": "index", "state": "failed"}, 1},
		{"macronode_service_state", "macronode_service_state", map[string]string{"service": "index", "state": "running"}, 0},
		{"macronode_service_state", "macronode_service_state", map[string]string{"service": "storage", "state": "running"}, 1},
		{"macronode_service_uptime_seconds", "macronode_service_uptime_seconds", map[string]string{"service": "storage"}, 12},
		{"macronode_ready", "macronode_ready", nil, 0},
		{"macronode_http_requests_total", "macronode_http_requests_total", map[string]string{"route": "GET /readyz", "method": "GET", "code": "503"}, 1},
		{"macronode_http_requests_total", "macronode_http_requests_total", map[string]string{"route": "unmatched", "method": "GET", "code": "404"}, 1},
		{"macronode_http_request_duration_seconds", "macronode_http_request_duration_seconds_count", map[string]string{"route": "GET /readyz"}, 1},
		{"macronode_config_reloads_total", "macronode_config_reloads_total", map[string]string{"result": "failure"}, 1},
		{"macronode_config_reloads_total", "macronode_config_reloads_total", map[string]string{"result": "success"}, 0},
		{"macronode_build_info", "macronode_build_info", map[string]string{"version": "0.1.0"}, 1},
		{"macronode_child_log_lines_total", "macronode_child_log_lines_total", map[string]string{"service": "storage", "stream": "stderr"}, 3},
	}
	for _, c := range checks {
		if got, ok := value(fams, c.family, c.sample, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.sample, c.labels, got, ok, c.want)
		}
	}
	// Every state is exported for every service.
	if got := len(fams["macronode_service_state"].GetMetric()); got != len(supervisor.States)*len(snap) {
		t.Errorf("service_state has %d series", got)
	}
}

func TestChildMetricsMerged(t *testing.T) {
	child := childServer(t)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer broken.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte("macronode_mailbox_queues{ 1\n"))
	}))
	defer garbage.Close()

	fs := &fakeServices{}
	snap := allRunning()
	snap[0].Listen = strings.TrimPrefix(child.URL, "http://")   // storage: good
	snap[1].Listen = strings.TrimPrefix(broken.URL, "http://")  // index: 500
	snap[2].Listen = strings.TrimPrefix(garbage.URL, "http://") // mailbox: unparsable
	snap[3].Listen = strings.TrimPrefix(child.URL, "http://")   // overlay: stopped, not scraped
	snap[3].State = supervisor.StateBackoff
	fs.set(snap...)
	n := start(t, Options{Services: fs})
	n.get(t, "/healthz")
	body, fams := scrapeFamilies(t, n, "/metrics")
	lint(t, body)

	checks := []struct {
		family, sample string
		labels         map[string]string
		want           float64
	}{
		{"macronode_storage_objects", "macronode_storage_objects", map[string]string{"service": "storage"}, 42},
		{"macronode_child_http_requests_total", "macronode_child_http_requests_total",
			map[string]string{"service": "storage", "route": "GET /o/{addr}", "method": "GET", "code": "200"}, 7},
		{"macronode_storage_put_duration_seconds", "macronode_storage_put_duration_seconds_bucket",
			map[string]string{"service": "storage", "tier": "hot", "le": "0.1"}, 1},
		{"macronode_storage_put_duration_seconds", "macronode_storage_put_duration_seconds_bucket",
			map[string]string{"service": "storage", "tier": "hot", "le": "1"}, 2},
		{"macronode_storage_put_duration_seconds", "macronode_storage_put_duration_seconds_bucket",
			map[string]string{"service": "storage", "tier": "hot", "le": "+Inf"}, 3},
		{"macronode_storage_put_duration_seconds", "macronode_storage_put_duration_seconds_count",
			map[string]string{"service": "storage", "tier": "hot"}, 3},
		{"macronode_storage_put_duration_seconds", "macronode_storage_put_duration_seconds_sum",
			map[string]string{"service": "storage", "tier": "hot"}, 5.55},
		{"macronode_child_build_info", "macronode_child_build_info",
			map[string]string{"service": "storage", "exported_service": "storage", "version": "0.1.0"}, 1},
		{"macronode_child_scrape_success", "macronode_child_scrape_success", map[string]string{"service": "storage"}, 1},
		{"macronode_child_scrape_success", "macronode_child_scrape_success", map[string]string{"service": "index"}, 0},
		{"macronode_child_scrape_success", "macronode_child_scrape_success", map[string]string{"service": "mailbox"}, 0},
	}
	for _, c := range checks {
		if got, ok := value(fams, c.family, c.sample, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.sample, c.labels, got, ok, c.want)
		}
	}
	// The child's Go runtime families are renamed, summaries intact.
	for _, name := range []string{"macronode_child_go_goroutines", "macronode_child_go_gc_duration_seconds", "macronode_child_process_cpu_seconds_total"} {
		if _, ok := value(fams, name, name+map[bool]string{true: "_count", false: ""}[name == "macronode_child_go_gc_duration_seconds"],
			map[string]string{"service": "storage"}); !ok {
			t.Errorf("%s{service=storage} missing", name)
		}
	}
	if f := fams["macronode_child_go_gc_duration_seconds"]; f.GetType() != dto.MetricType_SUMMARY {
		t.Errorf("go_gc_duration_seconds not re-exposed as a summary: %+v", f)
	}
	// The parent's own families are untouched by the child's clashing names.
	if fams["macronode_http_requests_total"].GetHelp() != "Admin plane HTTP requests by matched route, method and status code." {
		t.Errorf("parent family help replaced: %q", fams["macronode_http_requests_total"].GetHelp())
	}
	if _, ok := value(fams, "macronode_http_requests_total", "macronode_http_requests_total", map[string]string{"service": "storage"}); ok {
		t.Error("child series leaked into the parent's macronode_http_requests_total")
	}
	// Nothing from the stopped overlay.
	if _, ok := value(fams, "macronode_storage_objects", "macronode_storage_objects", map[string]string{"service": "overlay"}); ok {
		t.Error("a child in backoff was scraped")
	}
	if _, ok := value(fams, "macronode_child_scrape_success", "macronode_child_scrape_success", map[string]string{"service": "overlay"}); ok {
		t.Error("a child in backoff has a scrape result")
	}
}

// Two children exposing the same family merge into one family, one series
// per service.
func TestChildMetricsTwoChildren(t *testing.T) {
	a, b := childServer(t), childServer(t)
	fs := &fakeServices{}
	snap := allRunning()
	snap[0].Listen = strings.TrimPrefix(a.URL, "http://")
	snap[1].Listen = strings.TrimPrefix(b.URL, "http://")
	fs.set(snap...)
	n := start(t, Options{Services: fs})
	body, fams := scrapeFamilies(t, n, "/metrics")
	lint(t, body)
	for _, svc := range []string{"storage", "index"} {
		if v, ok := value(fams, "macronode_storage_objects", "macronode_storage_objects", map[string]string{"service": svc}); !ok || v != 42 {
			t.Errorf("objects{service=%s} = %v %v", svc, v, ok)
		}
	}
}

func TestMetricsHandler(t *testing.T) {
	n := start(t, Options{})
	srv := httptest.NewServer(n.MetricsHandler())
	defer srv.Close()
	resp, err := n.client.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics handler: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, err = n.client.Get(srv.URL + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("metrics handler serves status: %d", resp.StatusCode)
	}
}

func TestProcessAlive(t *testing.T) {
	tests := []struct {
		st   supervisor.Status
		want bool
	}{
		{supervisor.Status{State: supervisor.StateRunning, PID: 3}, true},
		{supervisor.Status{State: supervisor.StateStarting, PID: 3}, true},
		{supervisor.Status{State: supervisor.StateUnhealthy, PID: 3}, true},
		{supervisor.Status{State: supervisor.StateStopping, PID: 3}, true},
		{supervisor.Status{State: supervisor.StateStarting}, false},
		{supervisor.Status{State: supervisor.StateStopped, PID: 3}, false},
		{supervisor.Status{State: supervisor.StateBackoff, PID: 3}, false},
		{supervisor.Status{State: supervisor.StateFailed, PID: 3}, false},
	}
	for _, tc := range tests {
		if got := processAlive(tc.st); got != tc.want {
			t.Errorf("processAlive(%+v) = %v", tc.st, got)
		}
	}
}
