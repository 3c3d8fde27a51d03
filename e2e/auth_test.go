package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeCredential writes content as the admin_token credential in a fresh
// directory laid out as systemd's $CREDENTIALS_DIRECTORY, and returns it.
func writeCredential(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin_token"), []byte(content), 0o400); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestAuthOnReads (#12 §3): with a token (here from the systemd credential,
// trailing newline trimmed) every admin read needs it, except the probe
// routes; a missing token is a 401 JSON error.
func TestAuthOnReads(t *testing.T) {
	const token = "cred-s3cret"
	creds := writeCredential(t, token+"\n\n")
	n := startNode(t, nodeOpts{services: "storage", env: []string{"CREDENTIALS_DIRECTORY=" + creds}})
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	for _, path := range []string{"/api/v1/status", "/api/v1/services/storage/logs", "/api/v1/events", "/api/v1/audit", "/api/v1/peers"} {
		resp, b, err := request("GET", n.url(path), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		assertJSONError(t, "GET "+path+" without the token", resp, b, 401)
	}
	resp, b, err := request("GET", n.url("/api/v1/status"), nil, bearer)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/status with the trimmed credential as token = %v %v: %s", resp, err, trunc(b))
	}
	for _, path := range []string{"/readyz", "/healthz", "/version", "/metrics"} {
		resp, b, err := request("GET", n.url(path), nil, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s without a token = %v %v, want 200: %s", path, resp, err, trunc(b))
		}
	}
}

// TestMetricsNotPublic: metrics_public: false puts /metrics behind the token.
func TestMetricsNotPublic(t *testing.T) {
	n := startNode(t, nodeOpts{services: "none", config: "metrics_public: false\n", env: []string{"RON_ADMIN_TOKEN=m-s3cret"}})
	resp, b, err := request("GET", n.url("/metrics"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertJSONError(t, "GET /metrics without the token, metrics_public false", resp, b, 401)
	resp, b, err = request("GET", n.url("/metrics"), nil, http.Header{"Authorization": {"Bearer m-s3cret"}})
	if err != nil || resp.StatusCode != 200 || !strings.Contains(string(b), "macronode_ready") {
		t.Fatalf("GET /metrics with the token = %v %v: %s", resp, err, trunc(b))
	}
}

// TestAuthRefusals (#12 §3): `check` and `run` exit 2 naming the field for a
// blank token file or credential and for an exposed admin plane with no
// credential; a token file's trailing whitespace is trimmed.
func TestAuthRefusals(t *testing.T) {
	dir := t.TempDir()
	blankFile, goodFile := filepath.Join(dir, "blank"), filepath.Join(dir, "good")
	for p, content := range map[string]string{blankFile: " \n\t\n", goodFile: "s3cret \n"} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exposed := "RON_HTTP_ADDR=0.0.0.0:" + strings.Split(freeAddr(t), ":")[1]
	tests := []struct {
		name string
		env  []string
		code int
		want string
	}{
		{"blank token file", []string{"RON_ADMIN_TOKEN_FILE=" + blankFile}, 2, "admin_token_file (env RON_ADMIN_TOKEN_FILE): " + blankFile + " is blank"},
		{"blank credential", []string{"CREDENTIALS_DIRECTORY=" + writeCredential(t, "\n")}, 2, "admin_token_file (env CREDENTIALS_DIRECTORY): "},
		{"exposed admin", []string{exposed}, 2, "http_addr (env RON_HTTP_ADDR): 0.0.0.0:"},
		{"exposed admin, token file", []string{exposed, "RON_ADMIN_TOKEN_FILE=" + goodFile}, 0, "config ok"},
		{"exposed admin, credential", []string{exposed, "CREDENTIALS_DIRECTORY=" + writeCredential(t, "c\n")}, 0, "config ok"},
	}
	for _, tc := range tests {
		for _, cmd := range []string{"check", "run"} {
			if cmd == "run" && tc.code == 0 {
				continue // it would start a node on every interface
			}
			env := append([]string{"RON_RUN_DIR=" + t.TempDir(), "RON_DATA_DIR=" + t.TempDir(), "RON_SERVICES=none"}, tc.env...)
			res := runCLI(t, env, "macronode", cmd)
			if res.code != tc.code || !strings.Contains(res.out, tc.want) {
				t.Errorf("%s: macronode %s exit %d (want %d), output %q (want %q)", tc.name, cmd, res.code, tc.code, res.out, tc.want)
			}
		}
	}
}
