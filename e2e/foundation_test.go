package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 2: the parent's CLI, configuration layers and admin plane.

func TestVersionCommand(t *testing.T) {
	r := runCLI(t, nil, "macronode", "version")
	if r.code != 0 {
		t.Fatalf("macronode version exited %d, want 0; output:\n%s", r.code, r.out)
	}
	if strings.TrimSpace(r.out) == "" {
		t.Fatalf("macronode version printed nothing")
	}
	assertNoLeftovers(t, binDir)
}

// TestAdminPlane runs one full node and checks every admin route's contract.
func TestAdminPlane(t *testing.T) {
	n := startNode(t, nodeOpts{config: "log_level: info\n"})

	t.Run("version", func(t *testing.T) {
		var v map[string]any
		if code := getJSON(t, n.url("/version"), &v); code != 200 {
			t.Fatalf("/version status %d", code)
		}
		if v["service"] != "macronode" {
			t.Errorf("/version service = %v, want macronode", v["service"])
		}
		for _, k := range []string{"version", "git_sha", "build_ts", "go"} {
			if s, ok := v[k].(string); !ok || s == "" {
				t.Errorf("/version %s = %#v, want a non-empty string", k, v[k])
			}
		}
		if g, _ := v["go"].(string); !strings.HasPrefix(g, "go") {
			t.Errorf("/version go = %q, want go1.x", g)
		}
		api, _ := v["api"].(map[string]any)
		if api["http"] != "v1" {
			t.Errorf("/version api = %#v, want {\"http\":\"v1\"}", v["api"])
		}
		ver, _ := v["version"].(string)
		r := runCLI(t, nil, "macronode", "version")
		if r.code != 0 || !strings.Contains(r.out, ver) {
			t.Errorf("macronode version exit %d output %q, want exit 0 mentioning %q", r.code, r.out, ver)
		}
	})

	t.Run("healthz", func(t *testing.T) {
		var h struct {
			OK     bool              `json:"ok"`
			Checks map[string]string `json:"checks"`
		}
		if code := getJSON(t, n.url("/healthz"), &h); code != 200 {
			t.Fatalf("/healthz status %d", code)
		}
		if !h.OK {
			t.Errorf("/healthz ok = false")
		}
		for _, k := range []string{"event_loop", "clock", "supervisor"} {
			if h.Checks[k] != "ok" {
				t.Errorf("/healthz checks.%s = %q, want ok (checks %v)", k, h.Checks[k], h.Checks)
			}
		}
	})

	t.Run("readyz", func(t *testing.T) {
		resp, b, err := request("GET", n.url("/readyz"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("/readyz status %d: %s", resp.StatusCode, b)
		}
		var r readyz
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("/readyz body %q: %v", b, err)
		}
		if !r.Ready || r.Mode != "truthful" {
			t.Errorf("/readyz ready=%v mode=%q, want true, truthful", r.Ready, r.Mode)
		}
		if r.Deps["config"] != "loaded" || r.Deps["network"] != "ok" {
			t.Errorf("/readyz deps config=%q network=%q, want loaded, ok", r.Deps["config"], r.Deps["network"])
		}
		for _, p := range planes {
			if r.Deps[p] != "ok" {
				t.Errorf("/readyz deps.%s = %q, want ok (deps %v)", p, r.Deps[p], r.Deps)
			}
		}
	})

	t.Run("status", func(t *testing.T) {
		var raw map[string]any
		if code := getJSON(t, n.url("/api/v1/status"), &raw); code != 200 {
			t.Fatalf("/api/v1/status status %d", code)
		}
		for _, k := range []string{"uptime_seconds", "profile", "http_addr", "metrics_addr", "log_level", "ready", "services"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("/api/v1/status lacks %q: %v", k, raw)
			}
		}
		st := n.mustStatus()
		if st.Profile != "macronode" || !st.Ready || st.HTTPAddr != n.admin || st.LogLevel != "info" {
			t.Errorf("status profile=%q ready=%v http_addr=%q log_level=%q, want macronode true %s info",
				st.Profile, st.Ready, st.HTTPAddr, st.LogLevel, n.admin)
		}
		svcs, _ := raw["services"].(map[string]any)
		for _, p := range planes {
			s, ok := st.Services[p]
			if !ok {
				t.Errorf("status lacks service %q", p)
				continue
			}
			if s.State != "running" || !s.Ready || s.PID <= 0 || s.Restarts != 0 || s.Listen != n.addrs[p] {
				t.Errorf("status.%s = %+v, want running, ready, a pid, 0 restarts, listen %s", p, s, n.addrs[p])
			}
			ownChild(t, s.PID, "svc-"+p)
			one, _ := svcs[p].(map[string]any)
			for _, k := range []string{"state", "pid", "restarts", "uptime_seconds", "ready", "listen", "last_exit", "last_error"} {
				if _, ok := one[k]; !ok {
					t.Errorf("status.services.%s lacks %q", p, k)
				}
			}
		}
	})

	t.Run("json 404 and 405", func(t *testing.T) {
		for _, tc := range []struct {
			method, path string
			want         int
		}{
			{"GET", "/definitely/not/here", 404},
			{"GET", "/api/v1/nope", 404},
			{"DELETE", "/healthz", 405},
			{"POST", "/readyz", 405},
		} {
			resp, b, err := request(tc.method, n.url(tc.path), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			assertJSONError(t, tc.method+" "+tc.path, resp, b, tc.want)
		}
	})

	t.Run("request id", func(t *testing.T) {
		resp, _, err := request("GET", n.url("/healthz"), nil, http.Header{"X-Request-Id": {"e2e-req-42"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("X-Request-Id"); got != "e2e-req-42" {
			t.Errorf("X-Request-Id echoed as %q, want e2e-req-42", got)
		}
		r1, _, err1 := request("GET", n.url("/healthz"), nil, nil)
		r2, _, err2 := request("GET", n.url("/nope"), nil, nil)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		id1, id2 := r1.Header.Get("X-Request-Id"), r2.Header.Get("X-Request-Id")
		if id1 == "" || id2 == "" || id1 == id2 {
			t.Errorf("generated request ids %q, %q: want two distinct non-empty ids (also on errors)", id1, id2)
		}
	})

	t.Run("body cap 413", func(t *testing.T) {
		big := bytes.Repeat([]byte{' '}, 2<<20) // 2 MiB of JSON whitespace > 1 MiB default
		resp, b, err := request("POST", n.url("/api/v1/reload"), big, nil)
		if err != nil {
			t.Fatalf("oversized POST: %v", err)
		}
		assertJSONError(t, "POST /api/v1/reload (2 MiB)", resp, b, 413)
	})

	t.Run("metrics", func(t *testing.T) {
		m := scrape(t, n.url("/metrics"))
		for _, p := range planes {
			if v, ok := metricValue(m, "macronode_service_up", map[string]string{"service": p}); !ok || v != 1 {
				t.Errorf("macronode_service_up{service=%q} = %v (present %v), want 1", p, v, ok)
			}
		}
		if v, ok := metricValue(m, "macronode_ready", nil); !ok || v != 1 {
			t.Errorf("macronode_ready = %v (present %v), want 1", v, ok)
		}
		for _, name := range []string{"macronode_http_requests_total", "macronode_service_restarts_total", "macronode_service_ready"} {
			if !hasMetric(m, name) {
				t.Errorf("/metrics lacks %s", name)
			}
		}
	})

	t.Run("reload without token on loopback", func(t *testing.T) {
		var out map[string]any
		if code := postJSON(t, n.url("/api/v1/reload"), nil, &out); code != 200 {
			t.Fatalf("POST /api/v1/reload = %d %v, want 200 (no token, loopback bind)", code, out)
		}
		n.waitReady(readyTimeout)
	})
}

// assertJSONError checks status and the {"error","code"} JSON shape.
func assertJSONError(t testing.TB, what string, resp *http.Response, b []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Errorf("%s: status %d, want %d (%s)", what, resp.StatusCode, want, trunc(b))
		return
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var e errBody
	if err := json.Unmarshal(b, &e); err != nil || e.Error == "" || e.Code == "" {
		t.Errorf("%s: body %q, want {\"error\":...,\"code\":...} (%v)", what, trunc(b), err)
	}
}

// TestFlagBeatsEnv: RON_HTTP_ADDR=A plus --http-addr B listens on B only.
func TestFlagBeatsEnv(t *testing.T) {
	n := startNode(t, nodeOpts{services: "none", adminViaFlag: true})
	if _, _, err := request("GET", "http://"+n.decoyAdmin+"/healthz", nil, nil); err == nil {
		t.Errorf("the RON_HTTP_ADDR address %s answers although --http-addr %s was given", n.decoyAdmin, n.admin)
	}
	if st := n.mustStatus(); st.HTTPAddr != n.admin {
		t.Errorf("status http_addr = %q, want %q", st.HTTPAddr, n.admin)
	}
}

// TestEnvBeatsFile: a file sets http_addr and log_level; RON_HTTP_ADDR wins
// over the file, the file's log_level wins over the default, and RON_LOG
// (shown with `config print`) wins over the file.
func TestEnvBeatsFile(t *testing.T) {
	decoy := freeAddr(t)
	cfg := "http_addr: " + decoy + "\nlog_level: warn\n"
	n := startNode(t, nodeOpts{services: "none", config: cfg})
	if _, _, err := request("GET", "http://"+decoy+"/healthz", nil, nil); err == nil {
		t.Errorf("the file's http_addr %s answers although RON_HTTP_ADDR=%s", decoy, n.admin)
	}
	if st := n.mustStatus(); st.LogLevel != "warn" {
		t.Errorf("status log_level = %q, want warn (from the file)", st.LogLevel)
	}
	r := runCLI(t, []string{"RON_LOG=debug"}, "macronode", "config", "print", "--config", n.configPath)
	if r.code != 0 || !strings.Contains(r.out, "debug") || !strings.Contains(r.out, "RON_LOG") {
		t.Errorf("RON_LOG=debug config print --config (log_level: warn): exit %d, want 0 with debug from RON_LOG:\n%s", r.code, r.out)
	}
}

func TestConfigPrintNamesSource(t *testing.T) {
	r := runCLI(t, []string{"RON_LOG=debug"}, "macronode", "config", "print")
	if r.code != 0 {
		t.Fatalf("config print exited %d:\n%s", r.code, r.out)
	}
	if !strings.Contains(r.out, "RON_LOG") {
		t.Errorf("RON_LOG=debug macronode config print does not name RON_LOG as a source:\n%s", r.out)
	}
	assertNoLeftovers(t, binDir)
}

// TestBadConfig: `check` and `run` exit 2 naming the field, and run touches nothing.
func TestBadConfig(t *testing.T) {
	cases := []struct {
		name, ext, body, field string
		fileInMsg              bool // the message must name the file too
		addrAtStake            bool // do not override http_addr from env
	}{
		{"unknown key", ".yaml", "htp_addr: 127.0.0.1:1\n", "htp_addr", true, false},
		{"unknown key json", ".json", `{"htp_addr": "127.0.0.1:1"}`, "htp_addr", true, false},
		{"bad duration", ".yaml", "read_timeout: 5 parsecs\n", "read_timeout", false, false},
		{"port out of range", ".yaml", "http_addr: 127.0.0.1:70000\n", "http_addr", false, true},
		{"address without port", ".yaml", "http_addr: 127.0.0.1\n", "http_addr", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "bad"+tc.ext)
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			check := func(cmd string, r cliResult) {
				t.Helper()
				if r.code != 2 {
					t.Errorf("macronode %s --config %s (%s): exit %d, want 2; output:\n%s", cmd, tc.ext, tc.name, r.code, r.out)
				}
				if !strings.Contains(r.out, tc.field) {
					t.Errorf("macronode %s (%s): message does not name %q:\n%s", cmd, tc.name, tc.field, r.out)
				}
				if tc.fileInMsg && !strings.Contains(r.out, filepath.Base(path)) {
					t.Errorf("macronode %s (%s): message does not name the file %s:\n%s", cmd, tc.name, path, r.out)
				}
			}
			check("check", runCLI(t, nil, "macronode", "check", "--config", path))

			runDir := filepath.Join(dir, "run")
			dataDir := filepath.Join(dir, "data")
			env := []string{"RON_RUN_DIR=" + runDir, "RON_DATA_DIR=" + dataDir, "RON_SERVICES=none", "RON_LOG_FORMAT=json"}
			if !tc.addrAtStake {
				env = append(env, "RON_HTTP_ADDR="+freeAddr(t))
			}
			check("run", runCLI(t, env, "macronode", "run", "--config", path))
			for _, d := range []string{runDir, dataDir} {
				if fileExists(d) {
					t.Errorf("macronode run with a bad config created %s", d)
				}
			}
			assertNoLeftovers(t, binDir)
		})
	}
}

// TestAdminAuth: with a token, POSTs need the bearer; shutdown drains and exits 0.
func TestAdminAuth(t *testing.T) {
	n := startNode(t, nodeOpts{env: []string{"RON_ADMIN_TOKEN=s3cret"}})
	for _, hdr := range []http.Header{nil, {"Authorization": {"Bearer wrong"}}, {"Authorization": {"s3cret"}}} {
		for _, path := range []string{"/api/v1/shutdown", "/api/v1/reload"} {
			resp, b, err := request("POST", n.url(path), nil, hdr)
			if err != nil {
				t.Fatal(err)
			}
			assertJSONError(t, "POST "+path+" with "+hdr.Get("Authorization"), resp, b, 401)
		}
	}
	if code, r, err := n.readyz(); err != nil || code != 200 {
		t.Fatalf("after refused POSTs /readyz = %d %+v %v, want 200 (GETs need no token)", code, r, err)
	}
	var out map[string]any
	resp, b, err := request("POST", n.url("/api/v1/shutdown"), nil, http.Header{"Authorization": {"Bearer s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(b, &out)
	if resp.StatusCode != 202 || out["status"] != "shutdown scheduled" {
		t.Fatalf("POST /api/v1/shutdown with the bearer = %d %s, want 202 {\"status\":\"shutdown scheduled\"}", resp.StatusCode, b)
	}
	code, ok := n.wait(shutdownTimeout)
	if !ok {
		t.Fatalf("macronode still running %v after /api/v1/shutdown", shutdownTimeout)
	}
	if code != 0 {
		t.Fatalf("macronode exited %d after /api/v1/shutdown, want 0", code)
	}
	if left := liveOnly(leftoverProcs(binDir)); len(left) > 0 {
		t.Errorf("children alive after the parent exited: %v", left)
	}
}
