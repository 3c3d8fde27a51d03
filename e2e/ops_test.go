package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPromtoolCheckMetrics runs Prometheus' own linter over the live
// /metrics of a node, children's metrics included. .ci/run installs
// promtool (Debian package prometheus); without it the test says so and skips.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (apt-get install prometheus): promlint in pkg/admin still checks the exposition")
	}
	n := startNode(t, nodeOpts{})
	text := scrape(t, n.url("/metrics"))
	if !strings.Contains(text, `macronode_storage_objects{service="storage"}`) {
		t.Errorf("children's metrics are not reachable through the parent's /metrics")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestExampleConfigChecks: the commented example config is valid as shipped.
func TestExampleConfigChecks(t *testing.T) {
	path, err := filepath.Abs(filepath.Join("..", "deploy", "macronode.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, nil, "macronode", "check", "--config", path)
	if res.code != 0 {
		t.Fatalf("macronode check on the example config: exit %d\n%s", res.code, res.out)
	}
}

// TestPrometheusRules: the shipped scrape config and alerting rules are
// valid, and the rules' unit tests (deploy/prometheus/alerts_test.yml) pass.
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (apt-get install prometheus)")
	}
	dir, err := filepath.Abs(filepath.Join("..", "deploy", "prometheus"))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
