package e2e

import (
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// dfStage is one FROM ... stage of a Dockerfile.
type dfStage struct {
	image, alias string
	workdir      string
	instrs       []*parser.Node
}

// dfArgs are the words after an instruction.
func dfArgs(n *parser.Node) []string {
	var out []string
	for a := n.Next; a != nil; a = a.Next {
		out = append(out, a.Value)
	}
	return out
}

// dfFlag is the value of --name=value on an instruction, or "".
func dfFlag(n *parser.Node, name string) string {
	for _, f := range n.Flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// parseDockerfile parses with BuildKit's own parser and splits the stages;
// global ARGs (before the first FROM) are expanded in FROM lines.
func parseDockerfile(t *testing.T, p string) []*dfStage {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("parse %s: %v", p, err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s: parser warning: %s", p, w.Short)
	}
	globals := map[string]string{}
	var stages []*dfStage
	for _, n := range res.AST.Children {
		n.Value = strings.ToLower(n.Value) // the instruction, as written
		switch {
		case n.Value == "arg" && len(stages) == 0:
			for _, a := range dfArgs(n) {
				k, v, _ := strings.Cut(a, "=")
				globals[k] = v
			}
		case n.Value == "from":
			a := dfArgs(n)
			s := &dfStage{image: os.Expand(a[0], func(k string) string { return globals[k] })}
			if len(a) == 3 && strings.EqualFold(a[1], "as") {
				s.alias = a[2]
			}
			stages = append(stages, s)
		case len(stages) == 0:
			t.Fatalf("%s: line %d: %s before the first FROM", p, n.StartLine, n.Value)
		default:
			s := stages[len(stages)-1]
			if n.Value == "workdir" {
				s.workdir = path.Join(s.workdir, dfArgs(n)[0])
			}
			s.instrs = append(s.instrs, n)
		}
	}
	return stages
}

// envOf is what an ENV instruction sets (the parser gives key, value, "="
// triples).
func envOf(n *parser.Node) map[string]string {
	env := map[string]string{}
	a := dfArgs(n)
	for i := 0; i+1 < len(a); i += 3 {
		env[a[i]] = a[i+1]
	}
	return env
}

// imageEnv is the environment the Dockerfile's runtime stage sets.
func imageEnv(t *testing.T) map[string]string {
	t.Helper()
	stages := parseDockerfile(t, filepath.Join("..", "deploy", "docker", "Dockerfile"))
	env := map[string]string{}
	for _, n := range stages[len(stages)-1].instrs {
		if n.Value == "env" {
			maps.Copy(env, envOf(n))
		}
	}
	return env
}

// makeVar is the value of `NAME := value` in the Makefile.
func makeVar(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*(.*)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("the Makefile sets no %s", name)
	}
	return strings.Fields(string(m[1]))
}

// dockerignored reports whether a context path matches a .dockerignore
// pattern (plain names and globs; the file uses no ! exceptions).
func dockerignored(t *testing.T, src string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", ".dockerignore"))
	if err != nil {
		t.Fatalf("no .dockerignore beside the build context: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "!") {
			t.Fatalf(".dockerignore: %q: exceptions are not understood by this check", l)
		}
		for p := filepath.Clean(src); p != "." && p != "/"; p = filepath.Dir(p) {
			if ok, _ := filepath.Match(strings.TrimSuffix(l, "/"), p); ok {
				return true
			}
		}
	}
	return false
}

// TestDockerfile (#12 §5): docker cannot run here, so this checks what can
// be: BuildKit parses it; a build stage on the go.mod's Go release runs
// `make build` (the Makefile's ldflags) from context files that exist, are
// not .dockerignored and hold every package ./cmd/... needs; a minimal
// non-root runtime stage with a /data volume whose CMD is a binary the
// Makefile builds, copied from the build stage's bin/; and the image's
// environment passes `macronode check` once a token is given.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join("..", "deploy", "docker", "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVer == nil || !strings.HasPrefix(build.image, "golang:"+string(goVer[1])) {
		t.Errorf("build stage FROM %s, want golang:%s (go.mod)", build.image, goVer[1])
	}
	var copied []string
	var makeBuild bool
	for _, n := range build.instrs {
		switch n.Value {
		case "copy":
			if dfFlag(n, "from") != "" {
				continue
			}
			a := dfArgs(n)
			for _, src := range a[:len(a)-1] {
				copied = append(copied, filepath.Clean(src))
				if !fileExists(filepath.Join("..", src)) {
					t.Errorf("line %d: COPY %s: no such file in the context", n.StartLine, src)
				}
				if dockerignored(t, src) {
					t.Errorf("line %d: COPY %s: excluded by .dockerignore", n.StartLine, src)
				}
			}
		case "run":
			makeBuild = makeBuild || strings.Contains(strings.Join(dfArgs(n), " "), "make build")
		}
	}
	if !makeBuild {
		t.Errorf("the build stage never runs `make build` (the Makefile's ldflags)")
	}
	if !slices.Contains(copied, "Makefile") {
		t.Errorf("the build stage does not copy the Makefile")
	}
	// Every package `make build` compiles must come from a copied path.
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "../cmd/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	repo, _ := filepath.Abs("..")
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(repo, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a dependency from the module cache: go mod download
		}
		top := strings.Split(rel, string(filepath.Separator))[0]
		if !slices.Contains(copied, top) {
			t.Errorf("./cmd/... needs %s, which the build stage does not copy", rel)
		}
	}

	// A minimal image that has /bin/sh: the parent starts every plane
	// through a /bin/sh exec shim that sets LISTEN_PID (pkg/supervisor), so
	// a shell-less distroless image would fail every spawn.
	if !strings.HasPrefix(final.image, "debian:") || !strings.HasSuffix(final.image, "-slim") {
		t.Errorf("runtime FROM %s, want a debian slim image (minimal, with the /bin/sh the spawn shim needs)", final.image)
	}
	var user string
	var volumes, cmd, binDest []string
	env := map[string]string{}
	for _, n := range final.instrs {
		a := dfArgs(n)
		switch n.Value {
		case "user":
			user = a[0]
		case "volume":
			volumes = append(volumes, a...)
		case "cmd":
			if !n.Attributes["json"] {
				t.Errorf("line %d: CMD in shell form; it must exec macronode directly so SIGTERM reaches it", n.StartLine)
			}
			cmd = a
		case "env":
			maps.Copy(env, envOf(n))
		case "copy":
			if from := dfFlag(n, "from"); from == build.alias && path.Clean(a[0]) == path.Join(build.workdir, "bin") {
				binDest = append(binDest, path.Clean(a[len(a)-1]))
			}
		}
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("runtime USER %q, want a non-root user", user)
	}
	if !slices.Contains(volumes, "/data") || env["RON_DATA_DIR"] != "/data" {
		t.Errorf("VOLUME %v, RON_DATA_DIR %q: want /data as the data volume", volumes, env["RON_DATA_DIR"])
	}
	if len(cmd) == 0 || !slices.Contains(makeVar(t, "BINARIES"), path.Base(cmd[0])) {
		t.Fatalf("CMD %v does not run a binary of the Makefile's BINARIES", cmd)
	}
	if !slices.Contains(binDest, path.Dir(cmd[0])) {
		t.Errorf("CMD runs %s, but the build stage's bin/ is copied to %v", cmd[0], binDest)
	}

	// The image's environment: refused without a token (the admin plane is
	// on every interface), accepted with one.
	var imageEnv []string
	for k, v := range env {
		imageEnv = append(imageEnv, k+"="+v)
	}
	if r := runCLI(t, imageEnv, "macronode", "check"); r.code != 2 || !strings.Contains(r.out, "http_addr (env RON_HTTP_ADDR)") {
		t.Errorf("macronode check with the image's env and no token: exit %d, %q; want 2 naming http_addr", r.code, r.out)
	}
	token := filepath.Join(t.TempDir(), "admin_token")
	if err := os.WriteFile(token, []byte("t0ken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, append(imageEnv, "RON_ADMIN_TOKEN_FILE="+token), "macronode", "check"); r.code != 0 {
		t.Errorf("macronode check with the image's env and a token: exit %d, %q", r.code, r.out)
	}
}
