package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// hostRequest sends one request with an explicit Host header (the client
// takes it from req.Host) and returns the status and body.
func hostRequest(t *testing.T, method, url, host string, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestAdminSafeFromBrowsers (#9 §2): with the default loopback admin and no
// token, a web page on attacker.example can neither restart a service
// (cross-site POST, DNS rebinding) nor read status; probes with a pod IP as
// Host and `macronode restart storage` keep working.
func TestAdminSafeFromBrowsers(t *testing.T) {
	n := startNode(t, nodeOpts{services: "storage"})
	before := n.mustStatus().Services["storage"]
	restart := n.url("/api/v1/services/storage/restart")
	_, port, err := net.SplitHostPort(n.admin)
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name, method, url, host string
		hdr                     map[string]string
	}{
		{"rebinding POST", "POST", restart, "attacker.example", map[string]string{"Origin": "http://attacker.example", "Content-Type": "text/plain"}},
		{"cross-site text/plain POST", "POST", restart, "", map[string]string{"Origin": "http://attacker.example", "Content-Type": "text/plain"}},
		{"rebinding status", "GET", n.url("/api/v1/status"), "attacker.example:" + port, nil},
	}
	for _, tc := range refused {
		code, body := hostRequest(t, tc.method, tc.url, tc.host, tc.hdr)
		var e errBody
		if code != http.StatusForbidden || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s: %d %s, want 403 JSON", tc.name, code, trunc(body))
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/version", "/metrics"} {
		if code, body := hostRequest(t, "GET", n.url(p), "10.1.2.3:8080", nil); code != http.StatusOK {
			t.Errorf("GET %s with Host 10.1.2.3:8080: %d %s", p, code, trunc(body))
		}
	}

	// The CLI waits for the restart it asks for. Had an attacker's POST been
	// accepted, its restart would have run first: storage would show two
	// exits since the start, not one.
	res := runCLI(t, []string{"RON_HTTP_ADDR=" + n.admin}, "macronode", "restart", "storage")
	if res.code != 0 {
		t.Fatalf("macronode restart storage: exit %d:\n%s", res.code, res.out)
	}
	eventually(t, restartTimeout, func() (bool, string) {
		st, err := n.status()
		if err != nil {
			return false, err.Error()
		}
		s := st.Services["storage"]
		return s.State == "running" && s.PID != before.PID, fmt.Sprintf("storage %+v", s)
	})
	after := n.mustStatus().Services["storage"]
	if got, want := len(after.Exits), len(before.Exits)+1; got != want {
		t.Errorf("storage has %d exits since the start, want %d (one per accepted restart): %+v", got, want, after.Exits)
	}
	for _, e := range after.Exits[len(before.Exits):] {
		if e.PID != before.PID {
			t.Errorf("an exit of pid %d, want only the first child's (%d): %+v", e.PID, before.PID, after.Exits)
		}
	}
}
