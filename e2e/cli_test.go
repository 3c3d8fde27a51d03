package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// cliOut is one finished CLI run with stdout and stderr apart.
type cliOut struct {
	code           int
	stdout, stderr string
}

// runSplit runs a built binary like runCLI, keeping stdout and stderr apart.
func runSplit(t *testing.T, env []string, name string, args ...string) cliOut {
	t.Helper()
	var stdout, stderr syncBuffer
	code := runBinary(t, env, &stdout, &stderr, name, args...)
	return cliOut{code, stdout.String(), stderr.String()}
}

// TestCLIVersionAndTypos: what an operator types first, with no node up.
func TestCLIVersionAndTypos(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args   []string
		code   int
		stdout string // prefix
		stderr string // substring
	}{
		{[]string{"--version"}, 0, "macronode ", ""},
		{[]string{"-v"}, 0, "macronode ", ""},
		{[]string{"version"}, 0, "macronode ", ""},
		{[]string{"stauts"}, 2, "", `unknown command "stauts"; did you mean "status"? (commands: run, version,`},
		{[]string{"restart", "storag"}, 2, "", `unknown service "storag"; did you mean "storage"? (services: storage, index, mailbox, overlay, dht, gateway, all)`},
		{[]string{"config", "print", "--bogus"}, 2, "", "(see 'macronode config print --help')"},
		{[]string{"completion", "bash"}, 0, "# bash completion for macronode", ""},
	}
	for _, tc := range tests {
		r := runSplit(t, nil, "macronode", tc.args...)
		if r.code != tc.code || !strings.HasPrefix(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("macronode %s: exit %d (want %d)\nstdout %q\nstderr %q (want %q)", strings.Join(tc.args, " "), r.code, tc.code, r.stdout, r.stderr, tc.stderr)
		}
		if strings.Contains(r.stderr, "macronode macronode") {
			t.Errorf("macronode %s: doubled program name: %q", strings.Join(tc.args, " "), r.stderr)
		}
	}
	if r := runSplit(t, []string{"RON_HTTP_ADDR=" + freeAddr(t)}, "macronode", "status"); r.code != 1 || !strings.Contains(r.stderr, "no node running") {
		t.Errorf("status with no node: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, p := range planes {
		for _, flag := range []string{"--help", "--version"} {
			r := runSplit(t, nil, "svc-"+p, flag)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "svc-"+p+" ") || r.stderr != "" {
				t.Errorf("svc-%s %s: exit %d, stdout %q, stderr %q", p, flag, r.code, trunc([]byte(r.stdout)), r.stderr)
			}
		}
	}
}

// TestCLIStatusFailedThenRestart: status exits 3 while storage is failed;
// restart waits and prints the outcome; stop and start say what they did.
func TestCLIStatusFailedThenRestart(t *testing.T) {
	t.Parallel()
	// A file where storage's data dir should be: storage cannot open its
	// store and crash-loops into failed. (A busy port would fail the node's
	// start instead: the parent binds every plane's port before any child.)
	dataDir := t.TempDir()
	blocker := filepath.Join(dataDir, "storage")
	if err := os.WriteFile(blocker, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "services:\n  storage:\n    backoff:\n      initial: 20ms\n      max: 100ms\n    max_restarts: 2\n    restart_window: 60s\n    failed_retry: 5m\n"
	n := startNode(t, nodeOpts{services: "storage,index", config: cfg, noWait: true, dataDir: dataDir})
	env := []string{"RON_HTTP_ADDR=" + n.admin}
	eventually(t, 30*time.Second, func() (bool, string) {
		s, err := n.status()
		if err != nil {
			return false, err.Error()
		}
		return s.Services["storage"].State == "failed" && s.Services["index"].Ready, fmt.Sprintf("%+v", s.Services)
	})

	r := runSplit(t, env, "macronode", "status")
	if r.code != 3 || !regexp.MustCompile(`(?m)^storage\s+failed\s`).MatchString(r.stdout) {
		t.Errorf("status with storage failed: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runSplit(t, env, "macronode", "status", "-o", "json")
	var doc struct {
		Services map[string]struct {
			State string `json:"state"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); r.code != 3 || err != nil || doc.Services["storage"].State != "failed" {
		t.Errorf("status -o json: exit %d, %v\n%s", r.code, err, r.stdout)
	}

	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	running := regexp.MustCompile(`^storage: running \(pid (\d+), ready in (\d+) ms\)\n$`)
	r = runSplit(t, env, "macronode", "restart", "storage")
	m := running.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("restart storage: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	t.Logf("restart storage from failed: %s", strings.TrimSpace(r.stdout))
	if pid := fmt.Sprint(n.mustStatus().Services["storage"].PID); pid != m[1] {
		t.Errorf("restart printed pid %s, status says %s", m[1], pid)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		r := runSplit(t, env, "macronode", "status")
		return r.code == 0, r.stdout + r.stderr
	})

	steps := []struct {
		args []string
		want string // regexp of the whole stdout
	}{
		{[]string{"start", "storage"}, `^storage: already running \(pid \d+\)\n$`},
		{[]string{"stop", "all"}, `^(index|storage): stopped \(in \d+ ms\)\n(index|storage): stopped \(in \d+ ms\)\n$`},
		{[]string{"stop", "index"}, `^index: already stopped\n$`},
		{[]string{"start", "all"}, `^(storage|index): running \(pid \d+, ready in \d+ ms\)\n(storage|index): running \(pid \d+, ready in \d+ ms\)\n$`},
		{[]string{"restart", "index", "--no-block"}, `^index: restart scheduled\n$`},
	}
	for _, s := range steps {
		r := runSplit(t, env, "macronode", s.args...)
		if r.code != 0 || !regexp.MustCompile(s.want).MatchString(r.stdout) {
			t.Errorf("macronode %s: exit %d\nstdout %q (want %s)\nstderr %q", strings.Join(s.args, " "), r.code, r.stdout, s.want, r.stderr)
		}
	}
	r = runSplit(t, env, "macronode", "restart", "storage", "--timeout", "1ms")
	if r.code != 1 || !strings.Contains(r.stdout, "storage: not running and ready: no outcome after 1ms") {
		t.Errorf("restart with a 1ms timeout: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	n.waitReady(readyTimeout)
}

// routeLine is one "  PATTERN  doc" line of a svc-* --help route table.
var routeLine = regexp.MustCompile(`^  ((?:[A-Z]+ )?/\S*)\s{2,}\S`)

// helpRoutes reads the route tables of svc-<plane> --help: those on
// --listen and those on the ops listener.
func helpRoutes(t *testing.T, plane string) (listen, ops []string) {
	t.Helper()
	r := runSplit(t, nil, "svc-"+plane, "--help")
	if r.code != 0 {
		t.Fatalf("svc-%s --help: exit %d: %s", plane, r.code, r.stderr)
	}
	var into *[]string
	for _, l := range strings.Split(r.stdout, "\n") {
		switch {
		case strings.HasPrefix(l, "HTTP routes on --listen"):
			into = &listen
		case strings.HasPrefix(l, "HTTP routes on the ops listener"):
			into = &ops
		case l == "" || !strings.HasPrefix(l, "  "):
			into = nil
		case into != nil:
			if m := routeLine.FindStringSubmatch(l); m != nil {
				*into = append(*into, m[1])
			}
		}
	}
	if len(listen) == 0 {
		t.Fatalf("svc-%s --help lists no routes:\n%s", plane, r.stdout)
	}
	return listen, ops
}

// concrete turns a mux pattern's path into a path it matches.
func concrete(path string) string {
	path = regexp.MustCompile(`\{[^}]*\.\.\.\}`).ReplaceAllString(path, "probe/x")
	path = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(path, "probe")
	if strings.HasSuffix(path, "/") {
		path += "probe"
	}
	return path
}

// TestSvcHelpRoutesAreServed: every route a plane's --help lists is one
// its running binary serves, with exactly the methods listed for that path
// (the mux's 405 Allow header), so help cannot drift from the mux.
func TestSvcHelpRoutesAreServed(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{})
	var st struct {
		Services map[string]struct {
			Listen      string `json:"listen"`
			MetricsAddr string `json:"metrics_addr"`
		} `json:"services"`
	}
	if code := getJSON(t, n.url("/api/v1/status"), &st); code != 200 {
		t.Fatalf("status: %d", code)
	}
	for _, p := range planes {
		listen, ops := helpRoutes(t, p)
		addrs := map[string][]string{st.Services[p].Listen: listen}
		if len(ops) > 0 {
			addrs[st.Services[p].MetricsAddr] = ops
		}
		for addr, routes := range addrs {
			type listed struct {
				any     bool     // a pattern without a method covers the path
				methods []string // those listed for the path, and those of /path/{x...} (the mux redirects /path there)
			}
			paths := map[string]*listed{} // concrete path -> what help lists for it
			at := func(c string) *listed {
				if paths[c] == nil {
					paths[c] = &listed{}
				}
				return paths[c]
			}
			var redirects [][2]string // path without the trailing wildcard, method
			for _, r := range routes {
				method, path, ok := strings.Cut(r, " ")
				if !ok {
					method, path = "", r
				}
				c := concrete(path)
				if method == "" {
					at(c).any = true
					continue
				}
				at(c).methods = append(at(c).methods, method)
				if base, _, ok := strings.Cut(path, "/{"); ok && strings.HasSuffix(path, "...}") && !strings.Contains(path[len(base)+1:], "/") {
					redirects = append(redirects, [2]string{base, method})
				}
				checkServed(t, p, addr, method, c)
			}
			for _, rd := range redirects {
				if l := paths[rd[0]]; l != nil {
					l.methods = append(l.methods, rd[1])
				}
			}
			for c, l := range paths {
				if !l.any {
					checkAllow(t, p, addr, c, l.methods)
				}
			}
		}
	}
}

// checkServed fails when the plane's mux has no route for method path.
func checkServed(t *testing.T, plane, addr, method, path string) {
	t.Helper()
	var body []byte
	if method == http.MethodPost || method == http.MethodPut {
		body = []byte("{}")
	}
	resp, b, err := request(method, "http://"+addr+path, body, nil)
	if err != nil {
		t.Errorf("svc-%s %s %s: %v", plane, method, path, err)
		return
	}
	if bytes.Contains(b, []byte("no route for")) || (resp.StatusCode == http.StatusMethodNotAllowed && bytes.Contains(b, []byte("method "+method+" not allowed"))) {
		t.Errorf("svc-%s --help lists %s %s, but its mux answers %d %s", plane, method, path, resp.StatusCode, trunc(b))
	}
}

// checkAllow fails when the mux's methods for path are not those listed.
func checkAllow(t *testing.T, plane, addr, path string, listed []string) {
	t.Helper()
	resp, b, err := request("PATCH", "http://"+addr+path, nil, nil)
	if err != nil {
		t.Errorf("svc-%s PATCH %s: %v", plane, path, err)
		return
	}
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("svc-%s PATCH %s: %d %s, want 405 (PATCH is listed nowhere)", plane, path, resp.StatusCode, trunc(b))
		return
	}
	allow := map[string]bool{}
	for _, m := range strings.Split(resp.Header.Get("Allow"), ",") {
		if m = strings.TrimSpace(m); m != "" && m != http.MethodHead {
			allow[m] = true
		}
	}
	want := map[string]bool{}
	for _, m := range listed {
		want[m] = true
	}
	var got, exp []string
	for m := range allow {
		got = append(got, m)
	}
	for m := range want {
		exp = append(exp, m)
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		t.Errorf("svc-%s serves %s with %v; --help lists %v", plane, path, got, exp)
	}
}
