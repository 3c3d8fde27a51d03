package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/macronode/macronode/pkg/supervisor"
)

// Limits of one child scrape.
const (
	childScrapeParallel = 4
	childScrapeMaxBytes = 8 << 20
)

var descScrapeSuccess = prometheus.NewDesc("macronode_child_scrape_success",
	"Whether the parent's last scrape of the child's own /metrics succeeded (1) or not (0).",
	[]string{"service"}, nil)

// childScraper is an unchecked prometheus.Collector: at each scrape it fetches
// /metrics from every running child with a listen address (in parallel,
// bounded, each with a timeout) and re-exposes the families with a `service`
// label, renamed by childFamilyName so they never clash with the parent's.
type childScraper struct {
	services func() []supervisor.Status
	timeout  time.Duration
	log      hclog.Logger

	transport *http.Transport
	client    *http.Client
	ctx       context.Context // canceled by close: aborts in-flight scrapes
	cancel    context.CancelFunc
}

func newChildScraper(services func() []supervisor.Status, timeout time.Duration, log hclog.Logger) *childScraper {
	tr := &http.Transport{
		Proxy:                 nil, // children are local: never through a proxy
		DialContext:           (&net.Dialer{Timeout: timeout}).DialContext,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &childScraper{
		services:  services,
		timeout:   timeout,
		log:       log,
		transport: tr,
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return errors.New("child metrics: redirects are not followed")
			},
		},
		ctx:    ctx,
		cancel: cancel,
	}
}

// close aborts in-flight scrapes and drops idle connections.
func (c *childScraper) close() {
	c.cancel()
	c.transport.CloseIdleConnections()
}

// Describe sends nothing: the child families are only known at scrape time.
func (c *childScraper) Describe(chan<- *prometheus.Desc) {}

type scrapeResult struct {
	fams []*textFamily
	err  error
}

// Collect scrapes the running children and emits their metrics.
func (c *childScraper) Collect(ch chan<- prometheus.Metric) {
	var targets []supervisor.Status
	for _, st := range c.services() {
		if st.State == supervisor.StateRunning && st.Listen != "" {
			targets = append(targets, st)
		}
	}
	if len(targets) == 0 {
		return
	}
	results := make([]scrapeResult, len(targets))
	sem := make(chan struct{}, childScrapeParallel)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			fams, err := c.scrape(t.Listen)
			results[i] = scrapeResult{fams: fams, err: err}
		}()
	}
	wg.Wait()

	m := newChildMerger()
	for i, t := range targets {
		res := results[i]
		emit(ch, descScrapeSuccess, prometheus.GaugeValue, b2f(res.err == nil), t.Name)
		if res.err != nil {
			c.log.Debug("child metrics scrape failed", "service", t.Name, "listen", t.Listen, "error", res.err)
			continue
		}
		for _, f := range res.fams {
			m.family(ch, f, t.Name)
		}
	}
}

// scrape fetches and parses one child's /metrics.
func (c *childScraper) scrape(listen string) ([]*textFamily, error) {
	addr, err := scrapeAddr(listen)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("child metrics %s: %w", addr, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("child metrics %s: %w", addr, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("child metrics %s: status %s", addr, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("child metrics %s: unsupported content type %q", addr, ct)
	}
	body := &capReader{r: resp.Body, left: childScrapeMaxBytes}
	fams, err := parseText(body, childScrapeMaxBytes)
	if body.over {
		return nil, fmt.Errorf("child metrics %s: body larger than %d bytes", addr, childScrapeMaxBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("child metrics %s: %w", addr, err)
	}
	return fams, nil
}

// capReader reads at most left bytes and records whether there was more.
type capReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		if n, _ := c.r.Read(one[:]); n > 0 {
			c.over = true
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// scrapeAddr turns a child's listen address into one to dial: a wildcard
// host (":9100", "0.0.0.0", "::") is reached on loopback.
func scrapeAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("child metrics: listen address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), nil
}

// childFamilyName maps a child's family name to the name the parent exposes:
//   - plane metrics ("macronode_<x>") keep their name, unless the parent owns
//     that name space (macronode_http_*, macronode_service_*,
//     macronode_config_*, macronode_child_*, macronode_ready,
//     macronode_build_info): those become "macronode_child_<x>";
//   - everything else (go_*, process_*, promhttp_*, ...) becomes
//     "macronode_child_<name>".
//
// The result never collides with a family of the parent.
func childFamilyName(name string) string {
	rest, ok := strings.CutPrefix(name, "macronode_")
	if !ok {
		return "macronode_child_" + name
	}
	if rest == "ready" || rest == "build_info" {
		return "macronode_child_" + rest
	}
	for _, p := range []string{"http_", "service_", "config_", "child_"} {
		if strings.HasPrefix(rest, p) {
			return "macronode_child_" + rest
		}
	}
	return name
}

// childMerger emits the families of every child of one scrape, keeping each
// exposed name to one type and help text (the first child's) and dropping
// duplicate series, so the registry never sees an inconsistent family.
type childMerger struct {
	meta   map[string][2]string // exposed name -> {type, help}
	series map[string]bool      // exposed name + label signature
}

func newChildMerger() *childMerger {
	return &childMerger{meta: map[string][2]string{}, series: map[string]bool{}}
}

func (m *childMerger) family(ch chan<- prometheus.Metric, f *textFamily, service string) {
	name := childFamilyName(f.Name)
	meta, ok := m.meta[name]
	if !ok {
		help := f.Help
		if help == "" {
			help = "Metric " + f.Name + " of a macronode child (the child gave no help text)."
		}
		meta = [2]string{f.Type, help}
		m.meta[name] = meta
	} else if meta[0] != f.Type {
		return // another child exposes this name with another type
	}
	help := meta[1]
	switch f.Type {
	case typeCounter, typeGauge, typeUntyped:
		vt := map[string]prometheus.ValueType{typeCounter: prometheus.CounterValue,
			typeGauge: prometheus.GaugeValue, typeUntyped: prometheus.UntypedValue}[f.Type]
		for _, s := range f.Samples {
			if s.Name != f.Name {
				continue
			}
			names, values, ok := m.labels(name, s.Labels, service)
			if !ok {
				continue
			}
			desc := prometheus.NewDesc(name, help, names, nil)
			emit(ch, desc, vt, s.Value, values...)
		}
	case typeHistogram, typeSummary:
		m.aggregate(ch, name, help, f, service)
	}
}

// labels relabels one series for exposure: the child's own `service` label
// becomes `exported_service` and `service` names the child. ok is false for a
// series already emitted.
func (m *childMerger) labels(name string, ls []labelPair, service string) ([]string, []string, bool) {
	sorted := append([]labelPair(nil), ls...)
	for i := range sorted {
		if sorted[i].Name == "service" {
			sorted[i].Name = "exported_service"
		}
	}
	sorted = append(sorted, labelPair{Name: "service", Value: service})
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	names := make([]string, len(sorted))
	values := make([]string, len(sorted))
	var sig strings.Builder
	sig.WriteString(name)
	for i, l := range sorted {
		names[i], values[i] = l.Name, l.Value
		sig.WriteByte(0xff)
		sig.WriteString(l.Name)
		sig.WriteByte(0xfe)
		sig.WriteString(l.Value)
	}
	if m.series[sig.String()] {
		return nil, nil, false
	}
	m.series[sig.String()] = true
	return names, values, true
}

// group is one histogram or summary series being assembled from its samples.
type group struct {
	labels    []labelPair
	count     uint64
	hasCount  bool
	sum       float64
	inf       uint64
	buckets   map[float64]uint64
	quantiles map[float64]float64
}

func (m *childMerger) aggregate(ch chan<- prometheus.Metric, name, help string, f *textFamily, service string) {
	special := "quantile"
	if f.Type == typeHistogram {
		special = "le"
	}
	var order []string
	groups := map[string]*group{}
	for _, s := range f.Samples {
		var rest []labelPair
		var key strings.Builder
		bound, hasBound := "", false
		for _, l := range s.Labels {
			if l.Name == special {
				bound, hasBound = l.Value, true
				continue
			}
			rest = append(rest, l)
		}
		sorted := append([]labelPair(nil), rest...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
		for _, l := range sorted {
			key.WriteString(l.Name + "\xfe" + l.Value + "\xff")
		}
		g := groups[key.String()]
		if g == nil {
			g = &group{labels: rest, buckets: map[float64]uint64{}, quantiles: map[float64]float64{}}
			groups[key.String()] = g
			order = append(order, key.String())
		}
		switch s.Name {
		case f.Name + "_sum":
			g.sum = s.Value
		case f.Name + "_count":
			g.count, g.hasCount = toCount(s.Value), true
		case f.Name + "_bucket", f.Name:
			if !hasBound || (f.Type == typeHistogram) != (s.Name == f.Name+"_bucket") {
				continue
			}
			b, err := strconv.ParseFloat(bound, 64)
			if err != nil {
				continue
			}
			switch {
			case f.Type == typeSummary:
				g.quantiles[b] = s.Value
			case math.IsInf(b, +1):
				g.inf = toCount(s.Value)
			default:
				g.buckets[b] = toCount(s.Value)
			}
		}
	}
	for _, k := range order {
		g := groups[k]
		names, values, ok := m.labels(name, g.labels, service)
		if !ok {
			continue
		}
		if !g.hasCount {
			g.count = g.inf
		}
		desc := prometheus.NewDesc(name, help, names, nil)
		var (
			metric prometheus.Metric
			err    error
		)
		if f.Type == typeHistogram {
			metric, err = prometheus.NewConstHistogram(desc, g.count, g.sum, g.buckets, values...)
		} else {
			metric, err = prometheus.NewConstSummary(desc, g.count, g.sum, g.quantiles, values...)
		}
		if err == nil {
			ch <- metric
		}
	}
}

// toCount converts a sample value to an observation count.
func toCount(v float64) uint64 {
	switch {
	case !(v >= 0):
		return 0
	case v >= math.MaxUint64:
		return math.MaxUint64
	}
	return uint64(v)
}
