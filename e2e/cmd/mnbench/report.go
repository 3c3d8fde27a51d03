package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// row is one printed figure: the median of runs samples, or a skip.
type row struct {
	section string
	name    string
	median  float64
	unit    string
	runs    int
	min     float64
	max     float64
	note    string
	skipped bool
}

// table collects the rows of one section and prints them.
type table struct {
	section string
	title   string
	rows    []row
	o       *opts
}

func newTable(o *opts, section, title string) *table {
	fmt.Printf("\n== %s: %s ==\n", section, title)
	return &table{section: section, title: title, o: o}
}

// add records the median of samples under name, prints a machine-readable
// line at once (so that partial results survive a timeout) and appends it
// to -results.
func (t *table) add(name, unit string, samples []float64, note string) row {
	r := row{section: t.section, name: name, unit: unit, runs: len(samples), note: note}
	if len(samples) == 0 {
		r.skipped, r.note = true, "skipped: no samples"
		if note != "" {
			r.note += " (" + note + ")"
		}
	} else {
		r.median = median(samples)
		r.min, r.max = minMax(samples)
	}
	t.push(r)
	return r
}

// ratio records a derived figure (a / b); it is skipped when either side is.
func (t *table) ratio(name string, a, b row, note string) row {
	if a.skipped || b.skipped || b.median == 0 {
		return t.skip(name, "an operand was skipped")
	}
	v := a.median / b.median
	r := row{section: t.section, name: name, median: v, unit: "x", runs: min(a.runs, b.runs),
		min: math.NaN(), max: math.NaN(), note: joinNotes("ratio of medians", note)}
	t.push(r)
	return r
}

// skip records a figure that could not be measured, with the reason.
func (t *table) skip(name, why string) row {
	r := row{section: t.section, name: name, skipped: true, note: "skipped: " + why}
	t.push(r)
	return r
}

func (t *table) push(r row) {
	t.rows = append(t.rows, r)
	fmt.Println("RESULT\t" + r.tsv())
	if t.o != nil && t.o.results != "" {
		if err := appendLine(t.o.results, r.tsv()); err != nil {
			fmt.Fprintf(os.Stderr, "mnbench: write results: %v\n", err)
		}
	}
}

// print writes the human table.
func (t *table) print() {
	fmt.Printf("\n-- %s: %s --\n", t.section, t.title)
	printRows(os.Stdout, t.rows, false)
}

func (r row) tsv() string {
	if r.skipped {
		return strings.Join([]string{r.section, r.name, "-", "-", "0", "-", "-", r.note}, "\t")
	}
	return strings.Join([]string{r.section, r.name, fmtNum(r.median), r.unit, strconv.Itoa(r.runs),
		fmtNum(r.min), fmtNum(r.max), r.note}, "\t")
}

func parseRow(line string) (row, bool) {
	f := strings.Split(line, "\t")
	if len(f) < 8 {
		return row{}, false
	}
	r := row{section: f[0], name: f[1], unit: f[3], note: f[7]}
	if f[2] == "-" {
		r.skipped = true
		return r, true
	}
	var err error
	if r.median, err = strconv.ParseFloat(f[2], 64); err != nil {
		return row{}, false
	}
	r.runs, _ = strconv.Atoi(f[4])
	if r.min, err = strconv.ParseFloat(f[5], 64); err != nil {
		r.min = math.NaN()
	}
	if r.max, err = strconv.ParseFloat(f[6], 64); err != nil {
		r.max = math.NaN()
	}
	return r, true
}

// printRows prints rows as an aligned table; withSection adds a column.
func printRows(w io.Writer, rows []row, withSection bool) {
	header := []string{"name", "median", "unit", "runs", "min", "max", "note"}
	if withSection {
		header = append([]string{"section"}, header...)
	}
	cells := [][]string{header}
	for _, r := range rows {
		c := []string{r.name, "-", "", "-", "-", "-", r.note}
		if !r.skipped {
			c = []string{r.name, fmtNum(r.median), r.unit, strconv.Itoa(r.runs), fmtNum(r.min), fmtNum(r.max), r.note}
		}
		if withSection {
			c = append([]string{r.section}, c...)
		}
		cells = append(cells, c)
	}
	widths := make([]int, len(header))
	for _, c := range cells {
		for i, s := range c[:len(c)-1] {
			widths[i] = max(widths[i], len(s))
		}
	}
	// median, runs, min and max are right-aligned.
	first := 1
	if withSection {
		first = 2
	}
	right := map[int]bool{first: true, first + 2: true, first + 3: true, first + 4: true}
	for _, c := range cells {
		var b strings.Builder
		for i, s := range c[:len(c)-1] {
			if right[i] {
				fmt.Fprintf(&b, "%*s  ", widths[i], s)
			} else {
				fmt.Fprintf(&b, "%-*s  ", widths[i], s)
			}
		}
		b.WriteString(c[len(c)-1])
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case a == 0:
		return "0"
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 0.01:
		return strconv.FormatFloat(v, 'f', 3, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func minMax(xs []float64) (float64, float64) {
	lo, hi := xs[0], xs[0]
	for _, x := range xs[1:] {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

var resultsMu sync.Mutex

func appendLine(path, line string) error {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// benchSummary prints every row of -results, grouped by section in file order.
func benchSummary(_ context.Context, o *opts) error {
	if o.results == "" {
		return fmt.Errorf("summary needs -results FILE")
	}
	f, err := os.Open(o.results)
	if err != nil {
		return fmt.Errorf("open results: %w", err)
	}
	defer f.Close()
	var rows []row
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if r, ok := parseRow(sc.Text()); ok {
			rows = append(rows, r)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	fmt.Printf("\n== Summary: every figure (median over runs) ==\n")
	printRows(os.Stdout, rows, true)
	return nil
}

// progress prints a timestamped line to stderr while a benchmark runs.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "  [%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// grid is an at-a-glance view of one section: a line per key (e.g. "4KiB
// c8"), a column per figure, cells holding medians.
type grid struct {
	title string
	cols  []string
	keys  []string
	cells map[string]map[string]string
}

func newGrid(title string, cols ...string) *grid {
	return &grid{title: title, cols: cols, cells: map[string]map[string]string{}}
}

// set fills one cell with r's median, and "(ratio x)" when ratio is given.
func (g *grid) set(key, col string, r row, ratio *row) {
	if _, ok := g.cells[key]; !ok {
		g.keys = append(g.keys, key)
		g.cells[key] = map[string]string{}
	}
	v := "-"
	if !r.skipped {
		v = fmtNum(r.median)
	}
	if ratio != nil && !ratio.skipped {
		v += " (" + fmtNum(ratio.median) + "x)"
	}
	g.cells[key][col] = v
}

func (g *grid) print() {
	if len(g.keys) == 0 {
		return
	}
	fmt.Printf("\n-- %s --\n", g.title)
	lines := [][]string{append([]string{""}, g.cols...)}
	for _, k := range g.keys {
		l := []string{k}
		for _, c := range g.cols {
			v, ok := g.cells[k][c]
			if !ok {
				v = "-"
			}
			l = append(l, v)
		}
		lines = append(lines, l)
	}
	widths := make([]int, len(lines[0]))
	for _, l := range lines {
		for i, s := range l {
			widths[i] = max(widths[i], len(s))
		}
	}
	for _, l := range lines {
		var b strings.Builder
		for i, s := range l {
			if i == 0 {
				fmt.Fprintf(&b, "%-*s  ", widths[i], s)
			} else {
				fmt.Fprintf(&b, "%*s  ", widths[i], s)
			}
		}
		fmt.Println(strings.TrimRight(b.String(), " "))
	}
}
