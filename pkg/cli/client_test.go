package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/admin"
)

// fakeNode imitates the admin API of a running node.
type fakeNode struct {
	mu       sync.Mutex
	token    string // required bearer token, if set
	actions  []string
	logLines []admin.LogLine
	services map[string]any // GET /api/v1/status services; nil: a fixed set of three
	ready    bool           // GET /api/v1/status "ready"
	logPolls int            // GET .../logs answered
	follow   followState    // GET .../logs?follow=1 (logsfollow_test.go)
	srv      *httptest.Server
}

func newFakeNode(t *testing.T, token string) *fakeNode {
	f := &fakeNode{token: token}
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token", "code": "unauthorized"})
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"service": "macronode", "version": "0.1.0", "api": map[string]string{"http": "v1"}})
	})
	mux.HandleFunc("GET /api/v1/status", auth(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		services, ready := f.services, f.ready
		f.mu.Unlock()
		if services == nil {
			services = map[string]any{
				"gateway": map[string]any{"state": "running", "pid": 103, "restarts": 0, "uptime_seconds": 70.2, "ready": true, "listen": "127.0.0.1:8090"},
				"storage": map[string]any{"state": "backoff", "pid": 0, "restarts": 3, "ready": false, "listen": "127.0.0.1:9300", "last_exit": "signal: killed", "last_error": "heartbeat timeout"},
				"overlay": map[string]any{"state": "running", "pid": 101, "restarts": 1, "uptime_seconds": 3723, "ready": true, "last_exit": "exit status 1"},
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"uptime_seconds": 75.4, "ready": ready, "profile": "macronode",
			"http_addr": strings.TrimPrefix(f.srv.URL, "http://"), "services": services,
		})
	}))
	mux.HandleFunc("POST /api/v1/services/{name}/{verb}", auth(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if name == "nosuch" || name == "dht" { // dht: a plane this node does not run
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown service \"nosuch\"", "code": "not_found"})
			return
		}
		f.mu.Lock()
		f.actions = append(f.actions, r.PathValue("verb")+" "+name)
		f.mu.Unlock()
		writeJSON(w, http.StatusAccepted, map[string]string{"status": r.PathValue("verb") + " scheduled", "service": name})
	}))
	mux.HandleFunc("GET /api/v1/services/{name}/logs", auth(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("lines"))
		if err != nil || n < 1 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad lines", "code": "bad_request"})
			return
		}
		if n := r.PathValue("name"); n == "nosuch" || n == "dht" {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown service \"nosuch\"", "code": "unknown_service"})
			return
		}
		if r.URL.Query().Get("follow") == "1" {
			f.serveFollow(w, r, n)
			return
		}
		f.mu.Lock()
		f.logPolls++
		lines := f.logLines
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		lines = append([]admin.LogLine(nil), lines...)
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"service": r.PathValue("name"), "lines": lines})
	}))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNode) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeNode) addLine(text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logLines = append(f.logLines, admin.LogLine{
		Time:   time.Date(2025, 1, 2, 3, 4, 5, len(f.logLines), time.UTC),
		Stream: "stderr",
		Text:   text,
	})
	f.wakeFollowersLocked()
}

func TestStatus(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t, "tok")
	r := run(t, []string{"RON_HTTP_ADDR=" + f.addr(), "RON_ADMIN_TOKEN=tok"}, "status")
	if r.code != ExitNotReady { // storage is in backoff
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 {
		t.Fatalf("want header, 3 rows and a summary:\n%s", r.stdout)
	}
	for i, want := range [][]string{
		{"NAME", "STATE", "PID", "UPTIME", "RESTARTS", "READY", "LAST", "EXIT"},
		{"storage", "backoff", "-", "-", "3", "no", "signal: killed (heartbeat timeout)"}, // start order
		{"overlay", "running", "101", "1h2m3s", "1", "yes", "exit status 1"},
		{"gateway", "running", "103", "1m10s", "0", "yes", "-"},
		{"node not ready, up 1m15s"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
}

func TestStatusErrors(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t, "tok")
	r := run(t, []string{"RON_HTTP_ADDR=" + f.addr(), "RON_ADMIN_TOKEN=wrong"}, "status")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "missing or wrong bearer token (unauthorized, HTTP 401)") {
		t.Errorf("wrong token: exit %d, %q", r.code, r.stderr)
	}

	// A port nobody listens on: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r = run(t, []string{"RON_HTTP_ADDR=" + addr}, "status")
	want := fmt.Sprintf("no node running at http://%s (is `macronode run` up?)", addr)
	if r.code != ExitFailure || !strings.Contains(r.stderr, want) {
		t.Errorf("refused: exit %d, %q", r.code, r.stderr)
	}
}

func TestFlagBeatsEnvForClients(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t, "")
	// RON_HTTP_ADDR points nowhere useful; --http-addr wins.
	r := run(t, []string{"RON_HTTP_ADDR=127.0.0.1:1"}, "status", "--http-addr", f.addr())
	if r.code != ExitNotReady || !strings.Contains(r.stdout, "storage") { // it answered: storage is in backoff
		t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// --config supplies the address too.
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("http_addr: "+f.addr()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, "status", "--config", cfg)
	if r.code != ExitNotReady {
		t.Errorf("--config: exit %d: %s", r.code, r.stderr)
	}
}

func TestActions(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t, "tok")
	env := []string{"RON_HTTP_ADDR=" + f.addr(), "RON_ADMIN_TOKEN=tok"}
	for _, verb := range []string{"restart", "stop", "start"} {
		r := run(t, env, verb, "storage", "--no-block")
		if r.code != ExitOK || r.stdout != "storage: "+verb+" scheduled\n" {
			t.Errorf("%s: exit %d, %q %q", verb, r.code, r.stdout, r.stderr)
		}
	}
	f.mu.Lock()
	got := strings.Join(f.actions, ",")
	f.mu.Unlock()
	if got != "restart storage,stop storage,start storage" {
		t.Errorf("actions = %q", got)
	}
	r := run(t, env, "restart", "dht", "--no-block") // a plane this node does not run
	if r.code != ExitFailure || !strings.Contains(r.stderr, `restart dht: unknown service "nosuch" (not_found, HTTP 404)`) {
		t.Errorf("unknown: exit %d, %q", r.code, r.stderr)
	}
	r = run(t, []string{"RON_HTTP_ADDR=" + f.addr()}, "stop", "storage", "--no-block")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "HTTP 401") {
		t.Errorf("no token: exit %d, %q", r.code, r.stderr)
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t, "")
	for i := range 5 {
		f.addLine(fmt.Sprintf("line %d", i))
	}
	// Not a terminal: the lines as the child wrote them, with or without --json.
	for _, args := range [][]string{{"logs", "storage", "-n", "2"}, {"logs", "storage", "-n", "2", "--json"}} {
		r := run(t, []string{"RON_HTTP_ADDR=" + f.addr()}, args...)
		if want := "line 3\nline 4\n"; r.code != ExitOK || r.stdout != want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

func TestDoctor(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	runDir, err := os.MkdirTemp("", "mn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	base := []string{"RON_SERVICES=none", "RON_DATA_DIR=" + dataDir, "RON_RUN_DIR=" + runDir}

	r := run(t, append(base, "RON_HTTP_ADDR="+freeAddr), "doctor")
	if r.code != ExitOK {
		t.Fatalf("healthy host: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"ok    port admin      " + freeAddr + " is free", "ok    data_dir        " + dataDir + " is writable", "control socket  " + runDir + "/control.sock", "open files"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.stdout)
		}
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("services:\n  storage:\n    binary: /nonexistent/svc-storage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(append([]string(nil), base...), "RON_HTTP_ADDR="+busy.Addr().String(), "RON_SERVICES=storage", "RON_STORAGE_ADDR="+freeAddr)
	r = run(t, env, "doctor", "--config", cfg)
	if r.code != ExitFailure {
		t.Fatalf("want exit 1, got %d\n%s", r.code, r.stdout)
	}
	for _, want := range []string{"fail  port admin", "is in use", "fail  binary storage", "/nonexistent/svc-storage"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "doctor: 2 check(s) failed") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestStatusExitCodeAndJSON(t *testing.T) {
	t.Parallel()
	up := map[string]any{"state": "running", "pid": 7, "ready": true}
	tests := []struct {
		name     string
		ready    bool
		services map[string]any
		code     int
	}{
		{"all up", true, map[string]any{"storage": up, "gateway": up}, ExitOK},
		{"one failed", true, map[string]any{"storage": map[string]any{"state": "failed"}, "gateway": up}, ExitNotReady},
		{"running not ready", true, map[string]any{"storage": map[string]any{"state": "running", "pid": 7}}, ExitNotReady},
		{"stopped", true, map[string]any{"storage": map[string]any{"state": "stopped"}}, ExitNotReady},
		{"node not ready", false, map[string]any{"storage": up}, ExitNotReady},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeNode(t, "")
			f.services, f.ready = tc.services, tc.ready
			env := []string{"RON_HTTP_ADDR=" + f.addr()}
			if r := run(t, env, "status"); r.code != tc.code {
				t.Errorf("status: exit %d, want %d: %s", r.code, tc.code, r.stderr)
			}
			r := run(t, env, "status", "-o", "json")
			if r.code != tc.code {
				t.Errorf("status -o json: exit %d, want %d: %s", r.code, tc.code, r.stderr)
			}
			// The admin API's own document, byte for byte.
			resp, err := http.Get(f.srv.URL + "/api/v1/status")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			served, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if r.stdout != string(served) {
				t.Errorf("-o json printed %q, the API serves %q", r.stdout, served)
			}
		})
	}
	f := newFakeNode(t, "")
	if r := run(t, []string{"RON_HTTP_ADDR=" + f.addr()}, "status", "-o", "yaml"); r.code != ExitUsage {
		t.Errorf("-o yaml: exit %d", r.code)
	}
}
