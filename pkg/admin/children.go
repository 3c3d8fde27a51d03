package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/macronode/macronode/pkg/supervisor"
)

// Limits of one child scrape.
const (
	childScrapeParallel = 4
	childScrapeMaxBytes = 8 << 20
)

const (
	scrapeSuccessName = "macronode_child_scrape_success"
	scrapeSuccessHelp = "Whether the parent's last scrape of the child's own /metrics succeeded (1) or not (0)."
)

// childScraper gathers, at each scrape of the parent, /metrics from every
// running child with a listen address (in parallel, bounded, each with a
// timeout and a body cap) and returns the families with a `service` label,
// renamed by childFamilyName so they never clash with the parent's. Its
// gather method is the parent's second prometheus.Gatherer.
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
	tr, client := localClient(timeout)
	ctx, cancel := context.WithCancel(context.Background())
	return &childScraper{
		services:  services,
		timeout:   timeout,
		log:       log,
		transport: tr,
		client:    client,
		ctx:       ctx,
		cancel:    cancel,
	}
}

// localClient is an HTTP client for the children's loopback APIs: never
// through a proxy, no redirects, dial and response headers bounded by
// timeout.
func localClient(timeout time.Duration) (*http.Transport, *http.Client) {
	tr := &http.Transport{
		Proxy:                 nil, // children are local: never through a proxy
		DialContext:           (&net.Dialer{Timeout: timeout}).DialContext,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return tr, &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("child API: redirects are not followed")
		},
	}
}

// close aborts in-flight scrapes and drops idle connections.
func (c *childScraper) close() {
	c.cancel()
	c.transport.CloseIdleConnections()
}

type scrapeResult struct {
	fams map[string]*dto.MetricFamily
	err  error
}

// gather scrapes the running children and returns their merged families
// plus macronode_child_scrape_success. A child's failure only sets its
// scrape_success to 0: gather itself never fails.
func (c *childScraper) gather() ([]*dto.MetricFamily, error) {
	var targets []supervisor.Status
	for _, st := range c.services() {
		if st.State == supervisor.StateRunning && st.Listen != "" {
			targets = append(targets, st)
		}
	}
	if len(targets) == 0 {
		return nil, nil
	}
	results := make([]scrapeResult, len(targets))
	sem := make(chan struct{}, childScrapeParallel)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			fams, err := c.scrape(metricsAddr(t))
			results[i] = scrapeResult{fams: fams, err: err}
		})
	}
	wg.Wait()

	m := newChildMerger()
	success := &dto.MetricFamily{Name: ptr(scrapeSuccessName), Help: ptr(scrapeSuccessHelp), Type: dto.MetricType_GAUGE.Enum()}
	for i, t := range targets {
		res := results[i]
		success.Metric = append(success.Metric, &dto.Metric{
			Label: []*dto.LabelPair{{Name: ptr("service"), Value: ptr(t.Name)}},
			Gauge: &dto.Gauge{Value: ptr(b2f(res.err == nil))},
		})
		if res.err != nil {
			c.log.Debug("child metrics scrape failed", "service", t.Name, "addr", metricsAddr(t), "error", res.err)
			continue
		}
		m.add(t.Name, res.fams)
	}
	return append(m.families(), success), nil
}

// scrape fetches and parses one child's /metrics.
func (c *childScraper) scrape(listen string) (map[string]*dto.MetricFamily, error) {
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
	// One byte over the cap tells an oversized body from one exactly at it.
	body := &io.LimitedReader{R: resp.Body, N: childScrapeMaxBytes + 1}
	fams, err := parseChild(body)
	if body.N <= 0 {
		return nil, fmt.Errorf("child metrics %s: body larger than %d bytes", addr, childScrapeMaxBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("child metrics %s: %w", addr, err)
	}
	return fams, nil
}

// parseChild parses a text exposition (format 0.0.4, legacy names) strictly:
// a malformed line fails the whole scrape rather than exposing half a child.
func parseChild(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse text exposition: %w", err)
	}
	return fams, nil
}

// scrapeAddr turns a child's listen address into one to dial: a wildcard
// host (":9100", "0.0.0.0", "::") is reached on loopback.
func scrapeAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("child listen address %q: %w", listen, err)
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

// childMerger merges the families of every child of one scrape, keeping each
// exposed name to one type and help text (the first child's) and dropping
// duplicate series, so the parent's Gatherers never sees an inconsistent
// family.
type childMerger struct {
	fams   map[string]*dto.MetricFamily // by exposed name
	series map[string]bool              // exposed name + label signature
}

func newChildMerger() *childMerger {
	return &childMerger{fams: map[string]*dto.MetricFamily{}, series: map[string]bool{}}
}

// add merges one child's parsed families (which it takes ownership of).
func (m *childMerger) add(service string, fams map[string]*dto.MetricFamily) {
	for _, orig := range slices.Sorted(maps.Keys(fams)) {
		f := fams[orig]
		switch f.GetType() {
		case dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_UNTYPED,
			dto.MetricType_SUMMARY, dto.MetricType_HISTOGRAM:
		default:
			continue // e.g. gauge_histogram: not expressible in the text format
		}
		name := childFamilyName(orig)
		out := m.fams[name]
		if out == nil {
			help := f.GetHelp()
			if help == "" {
				help = "Metric " + orig + " of a macronode child (the child gave no help text)."
			}
			out = &dto.MetricFamily{Name: ptr(name), Help: ptr(help), Type: f.GetType().Enum()}
			m.fams[name] = out
		} else if out.GetType() != f.GetType() {
			continue // another child exposes this name with another type
		}
		for _, metric := range f.Metric {
			labels, ok := m.relabel(name, metric.Label, service)
			if !ok {
				continue
			}
			metric.Label, metric.TimestampMs = labels, nil
			out.Metric = append(out.Metric, metric)
		}
	}
}

// families returns the merged, non-empty families sorted by name.
func (m *childMerger) families() []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, name := range slices.Sorted(maps.Keys(m.fams)) {
		if f := m.fams[name]; len(f.Metric) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// relabel rewrites one series' labels for exposure: the child's own `service`
// label becomes `exported_service` and `service` names the child. ok is false
// for a series already emitted, or one whose labels clash after renaming.
func (m *childMerger) relabel(name string, ls []*dto.LabelPair, service string) ([]*dto.LabelPair, bool) {
	out := make([]*dto.LabelPair, 0, len(ls)+1)
	for _, l := range ls {
		n := l.GetName()
		if n == "service" {
			n = "exported_service"
		}
		out = append(out, &dto.LabelPair{Name: ptr(n), Value: ptr(l.GetValue())})
	}
	out = append(out, &dto.LabelPair{Name: ptr("service"), Value: ptr(service)})
	slices.SortFunc(out, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	var sig strings.Builder
	sig.WriteString(name)
	for i, l := range out {
		if i > 0 && out[i-1].GetName() == l.GetName() {
			return nil, false // the child had both service and exported_service
		}
		sig.WriteByte(0xff)
		sig.WriteString(l.GetName())
		sig.WriteByte(0xfe)
		sig.WriteString(l.GetValue())
	}
	if m.series[sig.String()] {
		return nil, false
	}
	m.series[sig.String()] = true
	return out, true
}

func ptr[T any](v T) *T { return &v }

// metricsAddr is where a child serves /metrics: its MetricsAddr when it has
// one (the gateway's internal listener), else its listen address.
func metricsAddr(st supervisor.Status) string {
	if st.MetricsAddr != "" {
		return st.MetricsAddr
	}
	return st.Listen
}
