package admin

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// This file parses the Prometheus text exposition format, version 0.0.4 (what
// a child's promhttp handler serves), into families of raw samples. The
// module graph does not let this package import prometheus/common/expfmt
// directly (it is only an indirect dependency), so the subset needed to
// re-expose child metrics is parsed here, strictly: a malformed line fails the
// whole scrape rather than exposing half a child.

// Metric types of the text format.
const (
	typeCounter   = "counter"
	typeGauge     = "gauge"
	typeHistogram = "histogram"
	typeSummary   = "summary"
	typeUntyped   = "untyped"
)

// textFamily is one metric family of a text exposition.
type textFamily struct {
	Name    string
	Help    string
	Type    string
	Samples []textSample

	helpSet, typeSet bool
}

// textSample is one sample line; Name carries the _bucket/_sum/_count suffix.
type textSample struct {
	Name   string
	Labels []labelPair
	Value  float64
}

type labelPair struct{ Name, Value string }

// errExposition wraps every parse error.
var errExposition = errors.New("invalid text exposition")

type textParser struct {
	fams   []*textFamily
	byName map[string]*textFamily
}

// parseText parses a text exposition; lines longer than maxLine bytes are
// an error.
func parseText(r io.Reader, maxLine int) ([]*textFamily, error) {
	p := &textParser{byName: map[string]*textFamily{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(4096, maxLine)), maxLine)
	for n := 1; sc.Scan(); n++ {
		if err := p.line(strings.TrimSuffix(sc.Text(), "\r")); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", errExposition, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", errExposition, err)
	}
	return p.fams, nil
}

func (p *textParser) line(l string) error {
	l = strings.TrimLeft(l, " \t")
	if l == "" {
		return nil
	}
	if l[0] == '#' {
		return p.comment(strings.TrimLeft(l[1:], " \t"))
	}
	return p.sample(l)
}

func (p *textParser) family(name string) *textFamily {
	f := p.byName[name]
	if f == nil {
		f = &textFamily{Name: name, Type: typeUntyped}
		p.byName[name] = f
		p.fams = append(p.fams, f)
	}
	return f
}

func (p *textParser) comment(c string) error {
	kw, rest, _ := strings.Cut(c, " ")
	if kw != "HELP" && kw != "TYPE" {
		return nil // a plain comment
	}
	rest = strings.TrimLeft(rest, " \t")
	name, arg, _ := strings.Cut(rest, " ")
	name = strings.TrimRight(name, "\t")
	if !validMetricName(name) {
		return fmt.Errorf("%s: invalid metric name %q", kw, name)
	}
	f := p.family(name)
	if kw == "HELP" {
		if f.helpSet {
			return fmt.Errorf("second HELP line for %s", name)
		}
		f.Help, f.helpSet = unescapeHelp(arg), true
		return nil
	}
	if f.typeSet {
		return fmt.Errorf("second TYPE line for %s", name)
	}
	if len(f.Samples) > 0 {
		return fmt.Errorf("TYPE line for %s after its samples", name)
	}
	switch t := strings.TrimSpace(arg); t {
	case typeCounter, typeGauge, typeHistogram, typeSummary, typeUntyped:
		f.Type, f.typeSet = t, true
		return nil
	default:
		return fmt.Errorf("unknown type %q for %s", t, name)
	}
}

// familyFor finds the family a sample name belongs to: a histogram's
// _bucket/_sum/_count or a summary's _sum/_count belong to their base.
func (p *textParser) familyFor(name string) *textFamily {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if f := p.byName[base]; f != nil && (f.Type == typeHistogram || (f.Type == typeSummary && suf != "_bucket")) {
				return f
			}
		}
	}
	return p.family(name)
}

func (p *textParser) sample(l string) error {
	i := 0
	for i < len(l) && isNameChar(l[i], i == 0, true) {
		i++
	}
	name := l[:i]
	if name == "" {
		return fmt.Errorf("expected a metric name, got %q", truncate(l))
	}
	rest := strings.TrimLeft(l[i:], " \t")
	var labels []labelPair
	if strings.HasPrefix(rest, "{") {
		var err error
		labels, rest, err = parseLabels(rest[1:])
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return fmt.Errorf("%s: expected a value and an optional timestamp, got %q", name, truncate(rest))
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return fmt.Errorf("%s: invalid value %q", name, fields[0])
	}
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return fmt.Errorf("%s: invalid timestamp %q", name, fields[1])
		}
	}
	f := p.familyFor(name)
	f.Samples = append(f.Samples, textSample{Name: name, Labels: labels, Value: v})
	return nil
}

// parseLabels parses `a="x",b="y"}` (the opening brace consumed) and returns
// the labels and what follows the closing brace.
func parseLabels(s string) ([]labelPair, string, error) {
	var out []labelPair
	seen := map[string]bool{}
	for {
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, "}") {
			return out, s[1:], nil
		}
		i := 0
		for i < len(s) && isNameChar(s[i], i == 0, false) {
			i++
		}
		name := s[:i]
		if name == "" {
			return nil, "", fmt.Errorf("expected a label name at %q", truncate(s))
		}
		if seen[name] {
			return nil, "", fmt.Errorf("duplicate label %q", name)
		}
		seen[name] = true
		s = strings.TrimLeft(s[i:], " \t")
		if !strings.HasPrefix(s, "=") {
			return nil, "", fmt.Errorf("label %s: expected '='", name)
		}
		s = strings.TrimLeft(s[1:], " \t")
		if !strings.HasPrefix(s, `"`) {
			return nil, "", fmt.Errorf("label %s: expected a quoted value", name)
		}
		val, rest, err := unquoteLabel(s[1:])
		if err != nil {
			return nil, "", fmt.Errorf("label %s: %w", name, err)
		}
		out = append(out, labelPair{Name: name, Value: val})
		s = strings.TrimLeft(rest, " \t")
		switch {
		case strings.HasPrefix(s, ","):
			s = s[1:]
		case strings.HasPrefix(s, "}"):
		default:
			return nil, "", fmt.Errorf("label %s: expected ',' or '}'", name)
		}
	}
}

// unquoteLabel reads a label value up to its closing quote, resolving the
// escapes \\, \" and \n.
func unquoteLabel(s string) (string, string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			i++
			if i == len(s) {
				return "", "", errors.New("unterminated escape")
			}
			switch s[i] {
			case '\\':
				b.WriteByte('\\')
			case '"':
				b.WriteByte('"')
			case 'n':
				b.WriteByte('\n')
			default:
				return "", "", fmt.Errorf("invalid escape \\%c", s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("unterminated label value")
}

// unescapeHelp resolves the escapes \\ and \n of a HELP text; any other
// backslash stays literal, as in the format's reference parser.
func unescapeHelp(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '\\':
				b.WriteByte('\\')
				i++
				continue
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isNameChar reports whether c may appear in a metric name (colons allowed)
// or a label name, first being whether it is the first character.
func isNameChar(c byte, first, colon bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		return true
	case c == ':':
		return colon
	case c >= '0' && c <= '9':
		return !first
	}
	return false
}

func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameChar(s[i], i == 0, true) {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
