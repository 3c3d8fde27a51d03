package e2e

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unitPath is the shipped systemd unit.
var unitPath = filepath.Join("..", "deploy", "systemd", "macronode.service")

// nobody is the uid and gid the installed node runs as when the test runs as
// root, standing in for the unit's DynamicUser.
const nobody = 65534

// installBlock returns the shell lines between "# BEGIN INSTALL" and
// "# END INSTALL" in the unit's comment, with the comment marks removed.
func installBlock(t *testing.T, unit string) string {
	t.Helper()
	var lines []string
	in := false
	for _, l := range strings.Split(unit, "\n") {
		switch strings.TrimSpace(l) {
		case "# BEGIN INSTALL":
			in = true
			continue
		case "# END INSTALL":
			if len(lines) == 0 {
				t.Fatal("the unit's install block is empty")
			}
			return strings.Join(lines, "\n") + "\n"
		}
		if in {
			lines = append(lines, strings.TrimSpace(strings.TrimPrefix(l, "#")))
		}
	}
	t.Fatal("the unit's comment has no # BEGIN INSTALL ... # END INSTALL block")
	return ""
}

// unitValues returns every value of key (e.g. "ExecStart") in the unit.
func unitValues(unit, key string) []string {
	var out []string
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), key+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

// install runs the unit's install block, literally, with DESTDIR set to a
// fresh root, from a directory laid out like the source tree after `make
// build` (bin/ holds the binaries this run built). It returns the root,
// traversable by the unit's user.
func install(t *testing.T, unit string) string {
	t.Helper()
	root, err := os.MkdirTemp("", "mnroot")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"bin": binDir, "deploy": filepath.Join(repo, "deploy"), "README.md": filepath.Join(repo, "README.md")} {
		if err := os.Symlink(target, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("sh", "-eux")
	cmd.Stdin = strings.NewReader(installBlock(t, unit))
	cmd.Dir = src
	cmd.Env = append(baseEnv(), "DESTDIR="+root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the unit's install steps: %v\n%s", err, out)
	}
	return root
}

// rooted rewrites the unit's absolute install paths to live under root.
func rooted(unit, root string) string {
	for _, p := range []string{"/usr/local/bin/", "/etc/macronode/", "/usr/local/share/doc/macronode/"} {
		unit = strings.ReplaceAll(unit, "="+p, "="+root+p)
		unit = strings.ReplaceAll(unit, "=-"+p, "=-"+root+p)
		unit = strings.ReplaceAll(unit, ":"+p, ":"+root+p)
		unit = strings.ReplaceAll(unit, " "+p, " "+root+p)
	}
	return unit
}

func readUnit(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSystemdUnit (#12 §4): the unit's settings, systemd-analyze verify with
// its paths pointed at an install of this run's binaries, and an exposure
// level of at most 2.0 from systemd-analyze security.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze not on PATH (apt-get install systemd)")
		}
		t.Skip("systemd-analyze not on PATH (apt-get install systemd)")
	}
	unit := readUnit(t)
	for _, want := range []string{
		"Type=notify", "KillMode=mixed", "TimeoutStopSec=", "WatchdogSec=", "RuntimeDirectory=", "StateDirectory=",
		"DynamicUser=yes", "NoNewPrivileges=yes",
		"LoadCredential=admin_token:/etc/macronode/admin_token",
		"EnvironmentFile=-/etc/macronode/env",
		"ExecReload=/usr/local/bin/macronode reload --config /etc/macronode/macronode.yaml",
		"install -m 0644 deploy/macronode.example.yaml",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	root := install(t, unit)
	// Documentation= names files the install put in place.
	for _, doc := range unitValues(unit, "Documentation") {
		for _, u := range strings.Fields(doc) {
			p, ok := strings.CutPrefix(u, "file://")
			if !ok {
				t.Errorf("Documentation=%s: want a file:// URL of an installed file", u)
				continue
			}
			if !fileExists(filepath.Join(root, p)) {
				t.Errorf("Documentation=%s: the install steps did not put %s in place", u, p)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "macronode.service")
	if err := os.WriteFile(path, []byte(rooted(unit, root)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Logf("systemd-analyze verify says:\n%s", s)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for macronode\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in systemd-analyze security output:\n%s", out)
	}
	level, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil || level > 2.0 {
		t.Errorf("exposure level %s (%v), want at most 2.0:\n%s", m[1], err, out)
	}
	t.Logf("systemd-analyze security: exposure %.1f", level)
}

// TestSystemdInstallStarts (#12 §4): the unit's install steps, done
// literally into a temp root, then `macronode run` started as the unit
// starts it: its ExecStart, the EnvironmentFile, StateDirectory,
// RuntimeDirectory and the LoadCredential'd token in $CREDENTIALS_DIRECTORY,
// as uid 65534 when the test runs as root, with NOTIFY_SOCKET. It must say
// READY=1, answer /readyz, take the token from the credential, and exit 0
// on SIGTERM.
func TestSystemdInstallStarts(t *testing.T) {
	unit := readUnit(t)
	root := install(t, unit)
	asRoot := os.Geteuid() == 0
	owned := func(p string, mode os.FileMode) {
		t.Helper()
		if asRoot {
			if err := os.Chown(p, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	// What systemd prepares: StateDirectory= and RuntimeDirectory= owned by
	// the unit's user (mode 0700 as the unit says), and the credential.
	stateDir := filepath.Join(root, "var", "lib", "macronode")
	runDir := filepath.Join(root, "run", "macronode")
	credDir := filepath.Join(root, "run", "credentials", "macronode.service")
	for _, d := range []string{stateDir, runDir, credDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	owned(stateDir, 0o700)
	owned(runDir, 0o700)
	cred := credentialSource(t, unit, root)
	token, err := os.ReadFile(cred)
	if err != nil {
		t.Fatalf("the install made no admin token: %v", err)
	}
	if fi, err := os.Stat(cred); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("installed token %s: mode %v (%v), want readable by root only", cred, fi.Mode(), err)
	}
	if err := os.WriteFile(filepath.Join(credDir, "admin_token"), token, 0o400); err != nil {
		t.Fatal(err)
	}
	owned(filepath.Join(credDir, "admin_token"), 0o400)
	owned(credDir, 0o500)
	cfgFile := filepath.Join(root, "etc", "macronode", "macronode.yaml")
	if fi, err := os.Stat(cfgFile); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("installed config: %v %v, want mode 0644", fi, err)
	}

	// The operator's overrides go in the EnvironmentFile: here, free
	// loopback ports instead of the defaults.
	admin := freeAddr(t)
	envFile := strings.TrimPrefix(onlyValue(t, unit, "EnvironmentFile"), "-")
	lines := []string{"RON_HTTP_ADDR=" + admin, "RON_OVERLAY_P2P_ADDR=" + loopbackP2P, "RON_DHT_P2P_ADDR=" + loopbackP2P, "RON_GRACEFUL_TIMEOUT=" + childGrace}
	for _, p := range planes {
		lines = append(lines, "RON_"+strings.ToUpper(p)+"_ADDR="+freeAddr(t))
	}
	if err := os.WriteFile(filepath.Join(root, envFile), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(baseEnv(), readEnvFile(t, filepath.Join(root, envFile))...)
	notify := listenNotify(t, root)
	env = append(env, "STATE_DIRECTORY="+stateDir, "RUNTIME_DIRECTORY="+runDir, "CREDENTIALS_DIRECTORY="+credDir,
		"NOTIFY_SOCKET="+notify.LocalAddr().String())

	argv := strings.Fields(strings.TrimPrefix(rooted("ExecStart="+onlyValue(t, unit, "ExecStart"), root), "ExecStart="))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = "/"
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if asRoot {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: nobody, Gid: nobody}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	done := make(chan struct{}) // closed once Wait returned waitErr
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	binDirInstalled := filepath.Join(root, "usr", "local", "bin")
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		assertNoLeftovers(t, binDirInstalled)
	})

	waitNotify(t, notify, "READY=1", &stderr)
	eventually(t, readyTimeout, func() (bool, string) {
		resp, b, err := request("GET", "http://"+admin+"/readyz", nil, nil)
		if err != nil {
			return false, err.Error()
		}
		return resp.StatusCode == 200, string(b)
	})
	resp, b, err := request("GET", "http://"+admin+"/api/v1/status", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertJSONError(t, "GET /api/v1/status without the token", resp, b, 401)
	bearer := http.Header{"Authorization": {"Bearer " + strings.TrimSpace(string(token))}}
	if resp, b, err := request("GET", "http://"+admin+"/api/v1/status", nil, bearer); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/status with the installed token: %v %v %s", resp, err, trunc(b))
	}
	if !fileExists(filepath.Join(stateDir, "storage")) {
		t.Errorf("no storage data under $STATE_DIRECTORY %s", stateDir)
	}
	checkExecReload(t, unit, root, cfgFile, env, asRoot)

	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		if waitErr != nil {
			t.Fatalf("macronode exited with %v after SIGTERM, want 0\n%s", waitErr, tail(stderr.String(), 20))
		}
	case <-time.After(shutdownTimeout):
		t.Fatalf("macronode still running %v after SIGTERM", shutdownTimeout)
	}
}

// checkExecReload runs the unit's ExecReload= as systemd would (same user
// and environment): it succeeds on a good config and fails on an invalid
// one (refused by `macronode reload` itself or by the node's 422; either
// way systemctl reload must not report success). It is skipped while the
// build has no reload command.
func checkExecReload(t *testing.T, unit, root, cfgFile string, env []string, asRoot bool) {
	t.Helper()
	argv := strings.Fields(strings.TrimPrefix(rooted("ExecReload="+onlyValue(t, unit, "ExecReload"), root), "ExecReload="))
	if exec.Command(argv[0], "reload", "--help").Run() != nil {
		t.Logf("this build has no `macronode reload` command: ExecReload= checked as text only")
		return
	}
	reload := func() (int, string) {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env, cmd.Dir = env, "/"
		if asRoot {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		}
		out, err := cmd.CombinedOutput()
		if err != nil && cmd.ProcessState == nil {
			t.Fatalf("run %v: %v", argv, err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := reload(); code != 0 {
		t.Errorf("ExecReload on the installed config: exit %d\n%s", code, out)
	}
	good, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(good), "log_level: info", "log_level: verbose", 1)
	if bad == string(good) {
		t.Fatal("the installed config sets no log_level: info to break")
	}
	if err := os.WriteFile(cfgFile, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.WriteFile(cfgFile, good, 0o644) }()
	if code, out := reload(); code == 0 {
		t.Errorf("ExecReload on a refused config exited 0, so systemctl reload would report success\n%s", out)
	}
}

// onlyValue is the single value of key in the unit.
func onlyValue(t *testing.T, unit, key string) string {
	t.Helper()
	v := unitValues(unit, key)
	if len(v) != 1 {
		t.Fatalf("unit has %d %s= lines, want 1", len(v), key)
	}
	return v[0]
}

// credentialSource is the installed file LoadCredential=admin_token:PATH names.
func credentialSource(t *testing.T, unit, root string) string {
	t.Helper()
	name, path, ok := strings.Cut(onlyValue(t, unit, "LoadCredential"), ":")
	if !ok || name != "admin_token" {
		t.Fatalf("LoadCredential=%s:%s, want admin_token:PATH", name, path)
	}
	return filepath.Join(root, path)
}

// readEnvFile reads KEY=value lines as systemd's EnvironmentFile= does
// (blank lines and # comments skipped).
func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if !strings.Contains(l, "=") {
			t.Fatalf("%s: %q is not KEY=value", path, l)
		}
		out = append(out, l)
	}
	return out
}

// listenNotify is a NOTIFY_SOCKET under root that the unit's user can send to.
func listenNotify(t *testing.T, root string) *net.UnixConn {
	t.Helper()
	p := filepath.Join(root, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := os.Chmod(p, 0o777); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitNotify reads sd_notify datagrams until one carries want.
func waitNotify(t *testing.T, c *net.UnixConn, want string, log *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	if err := c.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var seen []string
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no %s on NOTIFY_SOCKET (got %q): %v\n%s", want, seen, err, tail(log.String(), 20))
		}
		msg := string(buf[:n])
		seen = append(seen, msg)
		for _, l := range strings.Split(msg, "\n") {
			if l == want {
				return
			}
		}
	}
}
