package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func completionScript(t *testing.T, shell string) string {
	t.Helper()
	r := run(t, nil, "completion", shell)
	if r.code != ExitOK || r.stderr != "" {
		t.Fatalf("completion %s: exit %d, %s", shell, r.code, r.stderr)
	}
	return r.stdout
}

// shellOrSkip returns the path of shell, or skips (fails under CI=true).
func shellOrSkip(t *testing.T, shell string) string {
	t.Helper()
	p, err := exec.LookPath(shell)
	if err != nil {
		if os.Getenv("CI") == "true" && shell == "bash" {
			t.Fatalf("%s is needed: %v", shell, err)
		}
		t.Skipf("%s not installed: %v", shell, err)
	}
	return p
}

// The bash script parses, and completing real command lines offers what
// the command table says.
func TestCompletionBash(t *testing.T) {
	t.Parallel()
	bash := shellOrSkip(t, "bash")
	script := filepath.Join(t.TempDir(), "macronode.bash")
	if err := os.WriteFile(script, []byte(completionScript(t, "bash")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	tests := []struct {
		line string // the command line; the last word is being completed
		want string // COMPREPLY, space-separated, in order
	}{
		{"macronode sta", "status start"},
		{"macronode stauts", ""},
		{"macronode restart sto", "storage"},
		{"macronode restart storage ga", "gateway"},
		{"macronode stop a", "all"},
		{"macronode logs --lines 50 gat", "gateway"},
		{"macronode --config /x.yaml res", "restart"},
		{"macronode restart --no", "--no-block"},
		{"macronode status -o", "-o"},
		{"macronode config p", "print"},
		{"macronode config print --log-l", "--log-level"},
		{"macronode completion ", "bash zsh fish --help -h"},
		{"macronode help chao", "chaos"},
		{"macronode --vers", "--version"},
		{"macronode rel", "reload"},
	}
	for _, tc := range tests {
		words := strings.Split(tc.line, " ")
		var arr strings.Builder
		for _, w := range words {
			arr.WriteString(" '" + w + "'")
		}
		prog := "source " + script + "\nCOMP_WORDS=(" + arr.String() + ")\nCOMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "\n_macronode\necho \"${COMPREPLY[*]}\"\n"
		out, err := exec.Command(bash, "--norc", "--noprofile", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tc.line, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("%q completes to %q, want %q", tc.line, got, tc.want)
		}
	}
	// --config completes file names.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "node.yaml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	prog := "source " + script + "\nCOMP_WORDS=(macronode status --config '" + dir + "/no')\nCOMP_CWORD=3\n_macronode\necho \"${COMPREPLY[*]}\"\n"
	out, err := exec.Command(bash, "--norc", "--noprofile", "-c", prog).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != dir+"/node.yaml" {
		t.Errorf("--config completion: %v %q", err, out)
	}
}

// zsh and fish may be absent here: check their scripts' structure, and
// parse them when the shell is installed.
func TestCompletionZshFish(t *testing.T) {
	t.Parallel()
	zsh := completionScript(t, "zsh")
	if !strings.HasPrefix(zsh, "#compdef macronode\n") || strings.Count(zsh, "case ") != strings.Count(zsh, "esac") {
		t.Errorf("zsh script structure:\n%s", zsh)
	}
	fish := completionScript(t, "fish")
	for i, l := range strings.Split(strings.TrimSpace(fish), "\n") {
		if !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "complete -c macronode ") {
			t.Errorf("fish line %d is not a complete command: %q", i+1, l)
		}
	}
	for _, want := range []string{"status", "restart", "reload", "completion", "no-block", "timeout", "storage index mailbox overlay dht gateway all", "print", "validate"} {
		if !strings.Contains(zsh, want) || !strings.Contains(fish, want) {
			t.Errorf("a script lacks %q", want)
		}
	}
	if !strings.Contains(zsh, " --no-block ") || !strings.Contains(fish, "-l no-block") {
		t.Error("the --no-block flag is not offered as a flag")
	}
	for shell, script := range map[string]string{"zsh": zsh, "fish": fish} {
		p, err := exec.LookPath(shell)
		if err != nil {
			continue
		}
		f := filepath.Join(t.TempDir(), "c."+shell)
		if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
			t.Fatal(err)
		}
		check := []string{"-n", f}
		if shell == "fish" {
			check = []string{"--no-execute", f}
		}
		if out, err := exec.Command(p, check...).CombinedOutput(); err != nil {
			t.Errorf("%s does not parse its script: %v\n%s", shell, err, out)
		}
	}
	if r := run(t, nil, "completion", "bsh"); r.code != ExitUsage || !strings.Contains(r.stderr, `did you mean "bash" or "zsh"?`) {
		t.Errorf("completion bsh: exit %d, %q", r.code, r.stderr)
	}
	if r := run(t, nil, "completion"); r.code != ExitUsage {
		t.Errorf("completion: exit %d", r.code)
	}
}
