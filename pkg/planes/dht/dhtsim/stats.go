package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// quantile is the q-quantile (0..1) of xs by the nearest-rank method, NaN
// for no samples. xs is not modified.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// phaseStats sums up the lookups of one phase.
type phaseStats struct {
	lookups, found, hopsKnown, late int
	hops, queried, ms               []float64
}

func (p *phaseStats) add(r lookupResult) {
	p.lookups++
	p.ms = append(p.ms, float64(r.elapsed)/float64(time.Millisecond))
	if !r.ok {
		if r.late {
			p.late++
		}
		return
	}
	p.found++
	p.queried = append(p.queried, float64(r.queried))
	if r.hopsOK {
		p.hopsKnown++
		p.hops = append(p.hops, float64(r.hops))
	}
}

func (p *phaseStats) successPct() float64 {
	if p.lookups == 0 {
		return math.NaN()
	}
	return 100 * float64(p.found) / float64(p.lookups)
}

// reporter prints figures as a table line and as the tab-separated row
// mnbench uses (section, name, median, unit, runs, min, max, note), also
// appended to the -results file when one is given.
type reporter struct {
	results string
}

func (r reporter) figure(name string, value float64, unit string, runs int, lo, hi float64, note string) {
	fmt.Printf("  %-34s %12s %-6s %s\n", name, fmtNum(value), unit, note)
	line := strings.Join([]string{"dhtsim", name, fmtNum(value), unit, strconv.Itoa(runs),
		fmtNum(lo), fmtNum(hi), note}, "\t")
	fmt.Println("RESULT\t" + line)
	if r.results == "" {
		return
	}
	if err := appendLine(r.results, line); err != nil {
		fmt.Fprintf(os.Stderr, "dhtsim: write results: %v\n", err)
	}
}

// distribution prints the median and p99 of xs as two figures.
func (r reporter) distribution(name string, xs []float64, unit, note string) {
	lo, hi := math.NaN(), math.NaN()
	if len(xs) > 0 {
		lo, hi = slices.Min(xs), slices.Max(xs)
	}
	r.figure(name+" median", quantile(xs, 0.5), unit, len(xs), lo, hi, note)
	r.figure(name+" p99", quantile(xs, 0.99), unit, len(xs), lo, hi, note)
}

// phase prints the lookup figures of one phase.
func (r reporter) phase(label string, p *phaseStats) {
	r.figure(label+" lookup success", p.successPct(), "%", p.lookups, math.NaN(), math.NaN(),
		fmt.Sprintf("%d/%d lookups found the provider; of the others %d hit the lookup deadline", p.found, p.lookups, p.late))
	r.distribution(label+" hops", p.hops, "hops", fmt.Sprintf("%d of %d found lookups", p.hopsKnown, p.found))
	r.distribution(label+" peers queried", p.queried, "peers", "GET_PROVIDERS sent, found lookups")
	r.distribution(label+" lookup latency", p.ms, "ms", "all lookups")
}

func fmtNum(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		_ = f.Close()
		return fmt.Errorf("append to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// memory reads this process's resident set (VmRSS) and its peak (VmHWM)
// from /proc/self/status, in MiB.
func memory() (rss, peak float64, err error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, fmt.Errorf("read rss: %w", err)
	}
	defer func() { _ = f.Close() }()
	return parseStatus(bufio.NewScanner(f))
}

func parseStatus(sc *bufio.Scanner) (rss, peak float64, err error) {
	var haveRSS, havePeak bool
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("unexpected %s line %q", k, sc.Text())
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", k, err)
		}
		if k == "VmRSS" {
			rss, haveRSS = kb/1024, true
		} else {
			peak, havePeak = kb/1024, true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("read rss: %w", err)
	}
	if !haveRSS || !havePeak {
		return 0, 0, fmt.Errorf("no VmRSS/VmHWM in /proc/self/status")
	}
	return rss, peak, nil
}
