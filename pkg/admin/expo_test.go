package admin

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestParseText(t *testing.T) {
	in := `# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# A normal comment.
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
# HELP help_escapes a\\b\nc \t
# TYPE help_escapes gauge
help_escapes{trailing="comma",} NaN
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
`
	fams, err := parseText(strings.NewReader(in), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*textFamily{}
	var names []string
	for _, f := range fams {
		byName[f.Name] = f
		names = append(names, f.Name)
	}
	want := "http_requests_total msdos_file_access_time_seconds metric_without_timestamp_and_labels something_weird help_escapes http_request_duration_seconds rpc_duration_seconds"
	if strings.Join(names, " ") != want {
		t.Fatalf("families = %v", names)
	}
	if f := byName["http_requests_total"]; f.Type != typeCounter || f.Help != "The total number of HTTP requests." || len(f.Samples) != 2 ||
		f.Samples[1].Value != 3 || f.Samples[1].Labels[1] != (labelPair{"code", "400"}) {
		t.Errorf("counter = %+v", f)
	}
	if s := byName["msdos_file_access_time_seconds"].Samples[0]; s.Labels[0].Value != `C:\DIR\FILE.TXT` ||
		s.Labels[1].Value != "Cannot find file:\n\"FILE.TXT\"" || byName["msdos_file_access_time_seconds"].Type != typeUntyped {
		t.Errorf("escapes = %+v", s)
	}
	if v := byName["something_weird"].Samples[0].Value; !math.IsInf(v, 1) {
		t.Errorf("+Inf = %v", v)
	}
	if f := byName["help_escapes"]; f.Help != "a\\b\nc \\t" || !math.IsNaN(f.Samples[0].Value) || len(f.Samples[0].Labels) != 1 {
		t.Errorf("help_escapes = %+v", f)
	}
	if f := byName["http_request_duration_seconds"]; f.Type != typeHistogram || len(f.Samples) != 4 {
		t.Errorf("histogram = %+v", f)
	}
	if f := byName["rpc_duration_seconds"]; f.Type != typeSummary || len(f.Samples) != 3 {
		t.Errorf("summary = %+v", f)
	}
}

func TestParseTextErrors(t *testing.T) {
	tests := map[string]string{
		"no value":           "foo\n",
		"bad value":          "foo bar\n",
		"bad timestamp":      "foo 1 x\n",
		"extra field":        "foo 1 2 3\n",
		"unterminated label": `foo{a="b} 1` + "\n",
		"bad escape":         `foo{a="\q"} 1` + "\n",
		"no equals":          `foo{a "b"} 1` + "\n",
		"unquoted":           `foo{a=b} 1` + "\n",
		"duplicate label":    `foo{a="1",a="2"} 1` + "\n",
		"bad label name":     `foo{1a="1"} 1` + "\n",
		"missing comma":      `foo{a="1" b="2"} 1` + "\n",
		"unknown type":       "# TYPE foo gaugez\n",
		"second TYPE":        "# TYPE foo gauge\n# TYPE foo gauge\n",
		"second HELP":        "# HELP foo a\n# HELP foo b\n",
		"TYPE after samples": "foo 1\n# TYPE foo gauge\n",
		"bad HELP name":      "# HELP 1foo x\n",
		"leading digit":      "1foo 1\n",
		"line too long":      "foo " + strings.Repeat("1", 200) + "\n",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if fams, err := parseText(strings.NewReader(in), 128); err == nil {
				t.Fatalf("parsed %q: %+v", in, fams)
			}
		})
	}
}

func TestChildFamilyName(t *testing.T) {
	tests := map[string]string{
		"go_goroutines":                          "macronode_child_go_goroutines",
		"process_cpu_seconds_total":              "macronode_child_process_cpu_seconds_total",
		"promhttp_metric_handler_requests_total": "macronode_child_promhttp_metric_handler_requests_total",
		"macronode_storage_objects":              "macronode_storage_objects",
		"macronode_overlay_sessions_total":       "macronode_overlay_sessions_total",
		"macronode_http_requests_total":          "macronode_child_http_requests_total",
		"macronode_service_up":                   "macronode_child_service_up",
		"macronode_config_reloads_total":         "macronode_child_config_reloads_total",
		"macronode_child_log_lines_total":        "macronode_child_child_log_lines_total",
		"macronode_ready":                        "macronode_child_ready",
		"macronode_build_info":                   "macronode_child_build_info",
		"macronode_readyz_x":                     "macronode_readyz_x",
	}
	for in, want := range tests {
		if got := childFamilyName(in); got != want {
			t.Errorf("childFamilyName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestScrapeAddr(t *testing.T) {
	tests := map[string]string{
		"127.0.0.1:9300": "127.0.0.1:9300",
		":9100":          "127.0.0.1:9100",
		"0.0.0.0:9100":   "127.0.0.1:9100",
		"[::]:9100":      "[::1]:9100",
		"[::1]:9100":     "[::1]:9100",
		"10.1.2.3:80":    "10.1.2.3:80",
	}
	for in, want := range tests {
		if got, err := scrapeAddr(in); err != nil || got != want {
			t.Errorf("scrapeAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := scrapeAddr("nope"); err == nil {
		t.Error("scrapeAddr(nope) succeeded")
	}
}

func FuzzParseText(f *testing.F) {
	for _, s := range []string{
		"# HELP a b\n# TYPE a counter\na{x=\"y\"} 1 2\n",
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
		"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 1\ns_count 1\n",
		"x{a=\"\\\\\\n\\\"\",} NaN\n",
		"",
		"#\n# \n#HELP\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		fams, err := parseText(strings.NewReader(in), 1<<16)
		if err != nil {
			return
		}
		// Whatever parses must convert without panicking.
		ch := make(chan prometheus.Metric, 1024)
		go func() {
			defer close(ch)
			m := newChildMerger()
			for _, fam := range fams {
				m.family(ch, fam, "svc")
			}
		}()
		for range ch {
		}
	})
}
