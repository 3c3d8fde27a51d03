package routes

import (
	"slices"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	if got := Names(); !slices.Equal(got, []string{"storage", "index", "mailbox"}) {
		t.Fatalf("Names() = %v", got)
	}
	seen := map[string]bool{}
	for _, r := range All {
		for _, k := range []string{"name " + r.Name, "prefix " + r.Prefix, "flag " + r.Flag} {
			if seen[k] {
				t.Errorf("%s appears twice", k)
			}
			seen[k] = true
		}
		if !strings.HasPrefix(r.Prefix, "/") || strings.HasSuffix(r.Prefix, "/") || strings.Count(r.Prefix, "/") != 1 {
			t.Errorf("%s: prefix %q is not one path segment", r.Name, r.Prefix)
		}
		if r.Flag != "--"+r.Name+"-addr" || r.FlagName() != r.Name+"-addr" {
			t.Errorf("%s: flag %q (%q)", r.Name, r.Flag, r.FlagName())
		}
		if r.Name == "dht" || r.Name == "overlay" {
			t.Errorf("internal plane %s is routed", r.Name)
		}
	}
}
