package e2e

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestGatewayInternalsOffThePublicPort: the gateway's public listener serves
// the plane API, /healthz and /readyz, but not /metrics or /version (git sha,
// versions, internals); those are on the loopback --internal-listen address
// the parent picked for it.
func TestGatewayInternalsOffThePublicPort(t *testing.T) {
	n := startNode(t, nodeOpts{services: "storage,gateway"})
	for path, want := range map[string]int{
		"/metrics": 404, "/version": 404, "/healthz": 200, "/readyz": 200, "/ingress/ping": 200,
	} {
		code, err := tryJSON("GET", n.gw(path), nil, nil)
		if err != nil || code != want {
			t.Errorf("gateway public GET %s: %d %v, want %d", path, code, err, want)
		}
	}
	// The gateway binds --internal-listen 127.0.0.1:0 and names the port
	// in its ready message; status shows it as the gateway's metrics_addr.
	if arg := internalListenOf(t, childPID(t, n, "gateway")); arg != "127.0.0.1:0" {
		t.Errorf("--internal-listen %q, want 127.0.0.1:0 (the kernel picks the port)", arg)
	}
	var st struct {
		Services map[string]struct {
			MetricsAddr string `json:"metrics_addr"`
		} `json:"services"`
	}
	if code := getJSON(t, n.url("/api/v1/status"), &st); code != 200 {
		t.Fatalf("status %d", code)
	}
	internal := st.Services["gateway"].MetricsAddr
	if !strings.HasPrefix(internal, "127.0.0.1:") || internal == "127.0.0.1:0" {
		t.Fatalf("gateway metrics_addr %q is not a bound loopback address", internal)
	}
	if m := scrape(t, "http://"+internal+"/metrics"); !strings.Contains(m, "macronode_gateway_http_requests_total") {
		t.Errorf("the internal /metrics lacks the gateway's series")
	}
	var v map[string]any
	if code := getJSON(t, "http://"+internal+"/version", &v); code != 200 || v["service"] != "svc-gateway" {
		t.Errorf("internal /version: %d %v", code, v)
	}
	// The parent scrapes the internal address: the gateway's series are on
	// the node's /metrics with a service label.
	eventually(t, 10*time.Second, func() (bool, string) {
		m := scrape(t, n.url("/metrics"))
		ok, _ := metricValue(m, "macronode_child_scrape_success", map[string]string{"service": "gateway"})
		return ok == 1 && strings.Contains(m, "macronode_gateway_http_requests_total{"),
			fmt.Sprintf("parent /metrics: gateway scrape_success %v", ok)
	})
}

// internalListenOf reads the --internal-listen argument of process pid.
func internalListenOf(t *testing.T, pid int) string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Skipf("cannot read the gateway's command line: %v", err)
	}
	args := strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--internal-listen" {
			return args[i+1]
		}
	}
	t.Fatalf("svc-gateway runs without --internal-listen: %q", args)
	return ""
}
