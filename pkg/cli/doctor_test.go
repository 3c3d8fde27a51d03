package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDoctorRunningNode: ports a running macronode holds (per its status)
// are "ok, held by the running node"; a port someone else holds still fails.
func TestDoctorRunningNode(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t, "")
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln
	}
	storage, foreign := listen(), listen() // storage: the node's child; foreign: someone else
	f.mu.Lock()
	f.services = map[string]any{
		"storage": map[string]any{"state": "running", "pid": 4242, "listen": storage.Addr().String()},
		"index":   map[string]any{"state": "backoff", "pid": 0, "listen": "127.0.0.1:1"},
	}
	f.mu.Unlock()

	dir := t.TempDir()
	bin := filepath.Join(dir, "svc-fake")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("services:\n  storage: {binary: "+bin+"}\n  index: {binary: "+bin+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runDir, err := os.MkdirTemp("", "mn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	base := []string{"RON_HTTP_ADDR=" + f.addr(), "RON_DATA_DIR=" + dir, "RON_RUN_DIR=" + runDir, "RON_STORAGE_ADDR=" + storage.Addr().String()}

	r := run(t, append(base, "RON_SERVICES=storage"), "doctor", "--config", cfg)
	if r.code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"ok    running node    macronode 0.1.0 answers at " + f.srv.URL,
		"ok    port admin      " + f.addr() + " held by the running node (admin API, version 0.1.0)",
		"ok    port storage    " + storage.Addr().String() + " held by the running node (svc-storage pid 4242, version 0.1.0)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "\nfail ") || strings.HasPrefix(r.stdout, "fail ") {
		t.Errorf("no check should fail:\n%s", r.stdout)
	}

	r = run(t, append(base, "RON_SERVICES=storage,index", "RON_INDEX_ADDR="+foreign.Addr().String()), "doctor", "--config", cfg)
	if r.code != ExitFailure || !strings.Contains(r.stdout, "fail  port index      "+foreign.Addr().String()+" is in use") || !strings.Contains(r.stderr, "doctor: 1 check(s) failed") {
		t.Errorf("foreign holder: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestDoctorNotANode: something other than a macronode on http_addr is not
// trusted: its port is a failure.
func TestDoctorNotANode(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // accepts nothing: the probe times out or is refused quickly
	r := run(t, []string{"RON_SERVICES=none", "RON_AMNESIA=1", "RON_HTTP_ADDR=" + ln.Addr().String()}, "doctor")
	if r.code != ExitFailure || strings.Contains(r.stdout, "running node") || !strings.Contains(r.stdout, "fail  port admin") {
		t.Errorf("exit %d\n%s", r.code, r.stdout)
	}
}

// TestDoctorUnsetRunDir: an unset run_dir is reported as the private temp
// dir the node makes, with the longest socket path it can give.
func TestDoctorUnsetRunDir(t *testing.T) {
	t.Parallel()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	r := run(t, []string{"RON_SERVICES=none", "RON_AMNESIA=1", "RON_HTTP_ADDR=" + addr}, "doctor")
	if r.code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "  unset: a private temp dir is made at start under "+os.TempDir()+" (socket path length fine") ||
		strings.Contains(r.stdout, "macronode-") || strings.Contains(r.stdout, "control socket") {
		t.Errorf("run_dir line:\n%s", r.stdout)
	}

	tests := []struct {
		tmp, status, want string
	}{
		{t.TempDir(), checkOK, "socket path length fine: at most "},
		{"/" + strings.Repeat("t", 80), checkFail, "over the 107-byte limit; set run_dir (RON_RUN_DIR) to a short path"},
		{filepath.Join(t.TempDir(), "absent"), checkFail, "a private temp dir cannot be made under"},
	}
	for _, tc := range tests {
		got := checkTempRunDir(tc.tmp)
		if got.status != tc.status || !strings.Contains(got.detail, tc.want) {
			t.Errorf("%s: %s %s, want %s ... %s", tc.tmp, got.status, got.detail, tc.status, tc.want)
		}
	}
	// The bound is realistic: "/tmp" + "/macronode-" + 10 digits + "/control.sock".
	if got := checkTempRunDir("/tmp"); !strings.Contains(got.detail, "at most 38 of 107 bytes") {
		t.Errorf("/tmp: %s", got.detail)
	}
}
