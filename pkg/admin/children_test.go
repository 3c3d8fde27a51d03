package admin

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Garbage from a child fails its whole scrape: nothing half-parsed is exposed.
func TestParseChildRejectsGarbage(t *testing.T) {
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
		"utf8 name":          `{"foo.bar"} 1` + "\n",
		"invalid utf8 value": "foo{a=\"\xff\"} 1\n",
		"no final newline":   "foo 1",
		"binary":             "\x00\x01\x02\n",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if fams, err := parseChild(strings.NewReader(in)); err == nil {
				t.Fatalf("parsed %q: %v", in, fams)
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

// mergeText parses and merges child expositions (service -> text) and
// returns the merged families by name.
func mergeText(t *testing.T, children ...[2]string) map[string]*dto.MetricFamily {
	t.Helper()
	m := newChildMerger()
	for _, c := range children {
		fams, err := parseChild(strings.NewReader(c[1]))
		if err != nil {
			t.Fatalf("parse %s: %v", c[0], err)
		}
		m.add(c[0], fams)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range m.families() {
		out[f.GetName()] = f
	}
	return out
}

func TestChildMerger(t *testing.T) {
	a := `# HELP macronode_x_total First help.
# TYPE macronode_x_total counter
macronode_x_total{service="inner",k="v"} 1 1395066363000
macronode_x_total{k="w"} 2
# TYPE macronode_y gauge
macronode_y 3
macronode_z{service="a",exported_service="b"} 4
# TYPE macronode_gh gaugehistogram
macronode_gh_bucket{le="+Inf"} 1
`
	b := `# HELP macronode_x_total Other help.
# TYPE macronode_x_total counter
macronode_x_total{k="w"} 5
# TYPE macronode_y counter
macronode_y 6
`
	fams := mergeText(t, [2]string{"one", a}, [2]string{"two", b}, [2]string{"one", b})

	x := fams["macronode_x_total"]
	if x.GetHelp() != "First help." || x.GetType() != dto.MetricType_COUNTER {
		t.Errorf("x = %v", x)
	}
	// one: 2 series, two: 1 series, the second "one" duplicates only.
	if len(x.GetMetric()) != 3 {
		t.Fatalf("x has %d series: %v", len(x.GetMetric()), x)
	}
	var first *dto.Metric
	for _, m := range x.GetMetric() {
		if m.GetCounter().GetValue() == 1 {
			first = m
		}
	}
	want := map[string]string{"exported_service": "inner", "k": "v", "service": "one"}
	got := map[string]string{}
	for i, l := range first.GetLabel() {
		got[l.GetName()] = l.GetValue()
		if i > 0 && first.Label[i-1].GetName() >= l.GetName() {
			t.Errorf("labels not sorted: %v", first.GetLabel())
		}
	}
	if len(got) != len(want) || got["exported_service"] != "inner" || got["service"] != "one" || got["k"] != "v" {
		t.Errorf("labels = %v, want %v", got, want)
	}
	if first.TimestampMs != nil {
		t.Error("child timestamp kept")
	}
	// y: the second child's counter clashes with the first's gauge: dropped.
	if y := fams["macronode_y"]; y.GetType() != dto.MetricType_GAUGE || len(y.GetMetric()) != 1 {
		t.Errorf("y = %v", y)
	}
	// z: no help from the child, and its labels clash once renamed.
	if _, ok := fams["macronode_z"]; ok {
		t.Errorf("z exposed with clashing service labels: %v", fams["macronode_z"])
	}
	if _, ok := fams["macronode_gh"]; ok {
		t.Error("gauge histogram exposed")
	}
	u := mergeText(t, [2]string{"one", "go_thing 1\n"})["macronode_child_go_thing"]
	if u.GetType() != dto.MetricType_UNTYPED || !strings.Contains(u.GetHelp(), "go_thing") {
		t.Errorf("untyped without help = %v", u)
	}
}

// A child that hangs, or serves more than the body cap, or the wrong content
// type, only gets scrape_success 0; the parent's /metrics still serves.
func TestChildScrapeLimits(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer hang.Close()
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		line := []byte("# " + strings.Repeat("x", 1021) + "\n")
		for range childScrapeMaxBytes/len(line) + 1 {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	}))
	defer huge.Close()
	proto := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.google.protobuf")
		_, _ = w.Write([]byte("x"))
	}))
	defer proto.Close()

	fs := &fakeServices{}
	snap := allRunning()
	snap[0].Listen = strings.TrimPrefix(hang.URL, "http://")
	snap[1].Listen = strings.TrimPrefix(huge.URL, "http://")
	snap[2].Listen = strings.TrimPrefix(proto.URL, "http://")
	fs.set(snap...)
	n := start(t, Options{Services: fs, ChildScrapeTimeout: 200 * time.Millisecond})
	body, fams := scrapeFamilies(t, n, "/metrics")
	lint(t, body)
	for _, svc := range []string{snap[0].Name, snap[1].Name, snap[2].Name} {
		if v, ok := value(fams, scrapeSuccessName, scrapeSuccessName, map[string]string{"service": svc}); !ok || v != 0 {
			t.Errorf("scrape_success{service=%s} = %v %v", svc, v, ok)
		}
	}
}

// FuzzParseChild feeds arbitrary child output through the parse and merge
// path and the parent's Gatherers: whatever a child serves, the parent's
// exposition must still encode and parse back.
func FuzzParseChild(f *testing.F) {
	for _, s := range []string{
		"# HELP a b\n# TYPE a counter\na{x=\"y\"} 1 2\n",
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
		"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 1\ns_count 1\n",
		"x{a=\"\\\\\\n\\\"\",} NaN\n",
		"a_count 1\n# TYPE a summary\na_count 2\n",
		"macronode_ready 1\nmacronode_child_scrape_success 3\n",
		"",
		"#\n# \n#HELP\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		fams, err := parseChild(strings.NewReader(in))
		if err != nil {
			return
		}
		m := newChildMerger()
		m.add("svc", fams)
		merged := m.families()
		g := prometheus.Gatherers{prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return merged, nil })}
		out, _ := g.Gather() // inconsistent families are left out, with an error
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range out {
			if err := enc.Encode(mf); err != nil {
				t.Fatalf("encode %v: %v", mf, err)
			}
		}
		if _, err := parseChild(&buf); err != nil {
			t.Fatalf("parent output does not parse: %v\n%s", err, buf.String())
		}
	})
}
