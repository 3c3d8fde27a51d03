package e2e

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the freshly built macronode and svc-* binaries (TestMain).
var binDir string

// binaries are the seven executables the e2e suite drives.
var binaries = []string{"macronode", "svc-gateway", "svc-storage", "svc-index", "svc-mailbox", "svc-overlay", "svc-dht"}

// planes are the six service planes, in the parent's default start order.
var planes = []string{"storage", "index", "mailbox", "overlay", "dht", "gateway"}

// Deadlines. They are generous on purpose: e2e asserts behaviour, not speed
// (speed is measured in bench_test.go).
const (
	readyTimeout    = 30 * time.Second // node start to /readyz 200
	restartTimeout  = 10 * time.Second // a killed child back to ready
	shutdownTimeout = 30 * time.Second // SIGTERM to parent exit
	leftoverTimeout = 5 * time.Second  // parent gone to no svc-* left
	cliTimeout      = 30 * time.Second // one CLI invocation
	childGrace      = "5s"             // RON_GRACEFUL_TIMEOUT given to every node
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mnbin")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: make bin dir: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: %v\n", err)
		return 1
	}
	binDir = dir
	code := m.Run()
	// Last line of defence: nothing this suite started may outlive it.
	if left := leftoverProcs(binDir); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: processes left after the suite (killed now): %v\n", left)
		killProcs(left)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// buildBinaries runs `go build -o dir/ ./cmd/...` from the repository root
// (the parent of this module) and checks that all seven binaries came out.
func buildBinaries(dir string) error {
	root, err := filepath.Abs("..")
	if err != nil {
		return fmt.Errorf("find repo root: %w", err)
	}
	args := []string{"build"}
	if os.Getenv("MN_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "-o", dir+string(filepath.Separator), "./cmd/...")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), root, err, out)
	}
	var missing []string
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("go build ./cmd/... did not produce %v (is a cmd/ directory missing?)", missing)
	}
	fmt.Fprintf(os.Stderr, "e2e: built %d binaries in %s (%v)\n", len(binaries), dir, time.Since(start).Round(time.Millisecond))
	return nil
}

// bin is the path of one built binary.
func bin(name string) string { return filepath.Join(binDir, name) }

// nodeOpts describes how to start one node.
type nodeOpts struct {
	// services is RON_SERVICES; "" leaves it unset (all six planes).
	services string
	// config is YAML written to a file and passed as `--config FILE`.
	config string
	// env is extra KEY=VALUE pairs; they win over the harness's own.
	env []string
	// args are extra flags after `macronode run`.
	args []string
	// addrs overrides the listen address of some planes (the rest get free ports).
	addrs map[string]string
	// adminViaFlag passes the admin address as --http-addr and points
	// RON_HTTP_ADDR at a decoy port (flags must win over env).
	adminViaFlag bool
	// noWait returns as soon as the process started, without waiting for /readyz.
	noWait bool
	// dataDir is RON_DATA_DIR; "" gives the node a fresh temp dir.
	dataDir string
	// addrsInConfig keeps the plane addresses out of the environment: the
	// test's config names them, so a reload of a rewritten file can change them.
	addrsInConfig bool
	// stderr, if not nil, receives the parent's stderr instead of n.stderr.
	stderr *os.File
}

// loopbackP2P is RON_OVERLAY_P2P_ADDR and RON_DHT_P2P_ADDR of every test
// node: TCP and QUIC on 127.0.0.1, port 0.
const loopbackP2P = "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1"

// node is one running `macronode run` process.
type node struct {
	t          testing.TB
	cmd        *exec.Cmd
	admin      string            // admin host:port
	decoyAdmin string            // RON_HTTP_ADDR when adminViaFlag
	addrs      map[string]string // plane -> host:port
	runDir     string
	dataDir    string
	configPath string
	stdout     *syncBuffer
	stderr     *syncBuffer

	done    chan struct{} // closed once cmd.Wait returned
	waitErr error         // set before done is closed
}

// startNode starts a node and, unless opts.noWait, waits until /readyz is 200.
// Cleanup stops it (SIGTERM, then SIGKILL), asserts that no process from the
// bin dir is left and that a gracefully stopped node removed its socket.
func startNode(t testing.TB, opts nodeOpts) *node {
	t.Helper()
	runDir, err := os.MkdirTemp("", "mn")
	if err != nil {
		t.Fatalf("make run dir: %v", err)
	}
	n := &node{
		t:       t,
		runDir:  runDir,
		dataDir: opts.dataDir,
		addrs:   map[string]string{},
		stdout:  &syncBuffer{},
		stderr:  &syncBuffer{},
		done:    make(chan struct{}),
	}
	if n.dataDir == "" {
		n.dataDir = t.TempDir()
	}
	n.admin = freeAddr(t)
	env := []string{
		"RON_RUN_DIR=" + runDir,
		"RON_DATA_DIR=" + n.dataDir,
		"RON_LOG_FORMAT=json",
		"RON_GRACEFUL_TIMEOUT=" + childGrace,
		// libp2p listeners on loopback, on ports the kernel picks: nodes of
		// parallel tests never collide, and nothing listens beyond 127.0.0.1.
		"RON_OVERLAY_P2P_ADDR=" + loopbackP2P,
		"RON_DHT_P2P_ADDR=" + loopbackP2P,
	}
	args := []string{"run"}
	if opts.adminViaFlag {
		n.decoyAdmin = freeAddr(t)
		env = append(env, "RON_HTTP_ADDR="+n.decoyAdmin)
		args = append(args, "--http-addr", n.admin)
	} else {
		env = append(env, "RON_HTTP_ADDR="+n.admin)
	}
	for _, p := range planes {
		addr := opts.addrs[p]
		if addr == "" {
			addr = freeAddr(t)
		}
		n.addrs[p] = addr
		if !opts.addrsInConfig {
			env = append(env, "RON_"+strings.ToUpper(p)+"_ADDR="+addr)
		}
	}
	if opts.services != "" {
		env = append(env, "RON_SERVICES="+opts.services)
	}
	if opts.config != "" {
		n.configPath = writeConfig(t, opts.config)
		args = append(args, "--config", n.configPath)
	}
	args = append(args, opts.args...)
	env = append(env, opts.env...)

	cmd := exec.Command(bin("macronode"), args...)
	cmd.Env = append(baseEnv(), env...)
	cmd.Dir = n.dataDir
	cmd.Stdout = n.stdout
	cmd.Stderr = n.stderr
	if opts.stderr != nil {
		cmd.Stderr = opts.stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		os.RemoveAll(runDir)
		t.Fatalf("start macronode: %v", err)
	}
	n.cmd = cmd
	go func() {
		n.waitErr = cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(n.cleanup)
	t.Logf("node pid %d admin %s run dir %s", cmd.Process.Pid, n.admin, runDir)
	if !opts.noWait {
		n.waitReady(readyTimeout)
	}
	return n
}

// url is an admin-plane URL.
func (n *node) url(path string) string { return "http://" + n.admin + path }

// gw is a gateway URL.
func (n *node) gw(path string) string { return "http://" + n.addrs["gateway"] + path }

// pid is the parent's pid.
func (n *node) pid() int { return n.cmd.Process.Pid }

// exited reports whether the parent has exited.
func (n *node) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// waitReady polls /readyz until 200; it fails at once if the parent exits.
func (n *node) waitReady(timeout time.Duration) {
	n.t.Helper()
	eventually(n.t, timeout, func() (bool, string) {
		if n.exited() {
			n.t.Fatalf("macronode exited before it was ready: %v", n.waitErr)
		}
		var body readyz
		code, err := tryJSON("GET", n.url("/readyz"), nil, &body)
		if err != nil {
			return false, err.Error()
		}
		return code == 200, fmt.Sprintf("/readyz %d %+v", code, body)
	})
}

// wait waits up to timeout for the parent to exit and returns its exit code
// (-1 when killed by a signal); ok is false on timeout.
func (n *node) wait(timeout time.Duration) (code int, ok bool) {
	select {
	case <-n.done:
		return n.cmd.ProcessState.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// signal sends sig to the parent process only (not its group).
func (n *node) signal(sig syscall.Signal) {
	n.t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		n.t.Fatalf("signal %v to macronode: %v", sig, err)
	}
}

// stop sends SIGTERM and asserts a clean exit 0 within shutdownTimeout.
func (n *node) stop() {
	n.t.Helper()
	n.signal(syscall.SIGTERM)
	code, ok := n.wait(shutdownTimeout)
	if !ok {
		n.t.Fatalf("macronode did not exit within %v of SIGTERM", shutdownTimeout)
	}
	if code != 0 {
		n.t.Fatalf("macronode exited %d after SIGTERM, want 0 (%v)", code, n.waitErr)
	}
}

func (n *node) cleanup() {
	t := n.t
	graceful := true
	if !n.exited() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		code, ok := n.wait(shutdownTimeout)
		switch {
		case !ok:
			graceful = false
			t.Errorf("cleanup: macronode did not exit within %v of SIGTERM; killing its group", shutdownTimeout)
			_ = syscall.Kill(-n.pid(), syscall.SIGKILL)
			<-n.done
		case code != 0:
			t.Errorf("cleanup: macronode exited %d after SIGTERM, want 0 (%v)", code, n.waitErr)
		}
	} else if st := n.cmd.ProcessState; st != nil && !st.Exited() {
		graceful = false // killed by a signal: sockets may legitimately remain
	}
	assertNoLeftoversOfNode(t, binDir, n.pid(), n.dataDir)
	if graceful {
		if socks := socketsIn(n.runDir); len(socks) > 0 {
			t.Errorf("cleanup: sockets left in run dir after a clean exit: %v", socks)
		}
	}
	if t.Failed() {
		t.Logf("macronode stdout (tail):\n%s", tail(n.stdout.String(), 150))
		t.Logf("macronode stderr (tail):\n%s", tail(n.stderr.String(), 300))
	}
	_ = os.RemoveAll(n.runDir)
	if n.configPath != "" {
		_ = os.Remove(n.configPath)
	}
}

// baseEnv is the test's environment minus anything that configures macronode
// or systemd integration, so a developer's shell cannot leak into a test.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "RON_"), strings.HasPrefix(k, "MACRO_"), strings.HasPrefix(k, "MACRONODE_"),
			k == "NOTIFY_SOCKET", strings.HasPrefix(k, "WATCHDOG_"), strings.HasPrefix(k, "LISTEN_"),
			k == "RUNTIME_DIRECTORY", k == "STATE_DIRECTORY":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// handedOut remembers every port freeAddr returned: the kernel may hand a
// just-closed port out again, and two planes of one node (or a decoy and a
// plane) must never share one.
var (
	handedOutMu sync.Mutex
	handedOut   = map[string]bool{}
)

// freeAddr asks the kernel for a free loopback port not returned before.
func freeAddr(t testing.TB) string {
	t.Helper()
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		if !handedOut[addr] {
			handedOut[addr] = true
			return addr
		}
	}
	t.Fatalf("find a free port: the kernel keeps returning used ones")
	return ""
}

// writeConfig writes YAML to a temp file and returns its path.
func writeConfig(t testing.TB, yaml string) string {
	t.Helper()
	f, err := os.CreateTemp("", "mn-*.yaml")
	if err != nil {
		t.Fatalf("create config: %v", err)
	}
	if _, err := f.WriteString(yaml); err != nil {
		t.Fatalf("write config: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close config: %v", err)
	}
	return f.Name()
}

// socketsIn lists the Unix sockets below dir.
func socketsIn(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSocket != 0 {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// syncBuffer is a bytes.Buffer safe for a process writer and test readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
