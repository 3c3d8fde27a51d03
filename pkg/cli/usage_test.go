package cli

import (
	"reflect"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"

	"github.com/macronode/macronode/pkg/buildinfo"
)

// commandPaths lists every command and subcommand as typed, e.g. "config print".
func commandPaths(prefix string, cmds []*ucli.Command) []string {
	var out []string
	for _, c := range cmds {
		p := strings.TrimSpace(prefix + " " + c.Name)
		out = append(out, p)
		out = append(out, commandPaths(p, c.Subcommands)...)
	}
	return out
}

// Every command's flag error points at that command's own help, with the
// program name once.
func TestUsageErrorPointsAtOwnHelp(t *testing.T) {
	t.Parallel()
	paths := commandPaths("", newApp(Env{}).Commands)
	if len(paths) < 15 {
		t.Fatalf("only %d commands found: %v", len(paths), paths)
	}
	for _, p := range append(paths, "") {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			args := append(strings.Fields(p), "--bogus")
			r := run(t, nil, args...)
			want := "(see '" + strings.TrimSpace("macronode "+p) + " --help')"
			if r.code != ExitUsage || !strings.Contains(r.stderr, "flag provided but not defined: -bogus "+want) {
				t.Errorf("exit %d, stderr %q; want %q", r.code, r.stderr, want)
			}
			if strings.Contains(r.stderr, "macronode macronode") {
				t.Errorf("doubled program name: %q", r.stderr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	version := "macronode " + buildinfo.Version + "\n"
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"--version"}, ExitOK, version, ""},
		{[]string{"-v"}, ExitOK, version, ""},
		{[]string{"version", "extra"}, ExitUsage, "", "version takes no arguments"},
		{[]string{"config", "print", "--bogus"}, ExitUsage, "", "(see 'macronode config print --help')"},
		{[]string{"logs", "-n", "x", "storage"}, ExitUsage, "", `invalid value "x" for flag -n: parse error (see 'macronode logs --help')`},
		{[]string{"stauts"}, ExitUsage, "", `unknown command "stauts"; did you mean "status"? (commands: run, version, check, config, doctor, status,`},
		{[]string{"rest"}, ExitUsage, "", `did you mean "restart"?`},
		{[]string{"sta"}, ExitUsage, "", `did you mean "status" or "start"?`},
		{[]string{"help", "chaso"}, ExitUsage, "", `unknown command "chaso"; did you mean "chaos"?`},
		{[]string{"frobnicate"}, ExitUsage, "", `unknown command "frobnicate" (commands: run,`},
		{[]string{"config", "prnt"}, ExitUsage, "", `unknown command "prnt"; did you mean "print"? (commands: print, validate); see 'macronode config --help'`},
		{[]string{"logs", "storag"}, ExitUsage, "", `unknown service "storag"; did you mean "storage"? (services: storage, index, mailbox, overlay, dht, gateway)`},
		{[]string{"crashes", "gatway"}, ExitUsage, "", `did you mean "gateway"?`},
		{[]string{"chaos", "idnex"}, ExitUsage, "", `did you mean "index"?`},
		{[]string{"chaos", "zzz"}, ExitUsage, "", `unknown service "zzz" (services: storage,`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, tc.args...)
			if r.code != tc.code || !strings.HasPrefix(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exit %d (want %d)\nstdout %q (want prefix %q)\nstderr %q (want %q)", r.code, tc.code, r.stdout, tc.stdout, r.stderr, tc.stderr)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	t.Parallel()
	valid := []string{"status", "start", "stop", "restart", "storage", "logs"}
	tests := []struct {
		name string
		want []string
	}{
		{"stauts", []string{"status"}}, // transposition
		{"statsu", []string{"status"}},
		{"strat", []string{"start"}},
		{"stp", []string{"stop"}},         // deletion
		{"restartt", []string{"restart"}}, // insertion
		{"storag", []string{"storage"}},   // prefix
		{"st", []string{"status", "start", "stop", "storage"}},
		{"STATUS", []string{"status"}},
		{"lgos", []string{"logs"}},
		{"xyz", nil},
		{"", nil},
	}
	for _, tc := range tests {
		if got := closest(tc.name, valid); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("closest(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"status", "status", 0},
		{"stauts", "status", 1}, {"kitten", "sitting", 3}, {"ab", "ba", 1}, {"ca", "abc", 3},
	}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}
