package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/macronode/macronode/pkg/config"
)

// closest returns the valid names that name is probably a typo of: those
// that start with it (`rest` -> restart), else those within a small
// Damerau-Levenshtein distance (one edit for short names, two from six
// letters on). The best matches come first; ties keep valid's order.
func closest(name string, valid []string) []string {
	name = strings.ToLower(name)
	if name == "" {
		return nil
	}
	var prefixed []string
	for _, v := range valid {
		if strings.HasPrefix(v, name) {
			prefixed = append(prefixed, v)
		}
	}
	if len(prefixed) > 0 {
		return prefixed
	}
	limit := 1
	if len(name) >= 6 {
		limit = 2
	}
	best, out := limit+1, []string(nil)
	for _, v := range valid {
		d := editDistance(name, v)
		switch {
		case d < best:
			best, out = d, []string{v}
		case d == best:
			out = append(out, v)
		}
	}
	return out
}

// editDistance is the optimal-string-alignment Damerau-Levenshtein distance
// of a and b: insertions, deletions, substitutions and transpositions of
// two adjacent letters each cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance of ra[:i] and rb[:j]; three rows suffice.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// didYouMean is the end of an "unknown X" message: the likely intended
// names, if any, then every valid one.
func didYouMean(name, kind string, valid []string) string {
	var b strings.Builder
	if m := closest(name, valid); len(m) > 0 {
		fmt.Fprintf(&b, "; did you mean %s?", quoteOr(m))
	}
	fmt.Fprintf(&b, " (%ss: %s)", kind, strings.Join(valid, ", "))
	return b.String()
}

// quoteOr renders names as `"a"`, `"a" or "b"`, `"a", "b" or "c"`.
func quoteOr(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// unknownCommand is the usage error for a command name that is not one of
// cmds (visible names only); path is the parent command, e.g. "macronode".
func unknownCommand(path, name string, cmds []*ucli.Command) error {
	var valid []string
	for _, c := range cmds {
		if !c.Hidden {
			valid = append(valid, c.Name)
		}
	}
	return usageErr("unknown command %q%s; see '%s --help'", name, didYouMean(name, "command", valid), path)
}

// checkServices refuses (usage error) any name that is not a plane, with a
// suggestion. "all" passes when allowAll is set.
func checkServices(names []string, allowAll bool) error {
	for _, n := range names {
		if allowAll && n == "all" {
			continue
		}
		if !isPlane(n) {
			valid := config.Planes
			if allowAll {
				valid = append(append([]string(nil), config.Planes...), "all")
			}
			return usageErr("unknown service %q%s", n, didYouMean(n, "service", valid))
		}
	}
	return nil
}

func isPlane(name string) bool {
	for _, p := range config.Planes {
		if p == name {
			return true
		}
	}
	return false
}
