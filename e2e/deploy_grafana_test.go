package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// dashboardPanel is what this test reads of a Grafana panel.
type dashboardPanel struct {
	ID      int              `json:"id"`
	Type    string           `json:"type"`
	Title   string           `json:"title"`
	Panels  []dashboardPanel `json:"panels"` // a collapsed row's panels
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// dashboardExprs loads deploy/grafana/macronode.json and returns each
// panel's expressions by panel title, checking the panel ids are unique.
func dashboardExprs(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "macronode.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string           `json:"uid"`
		Title  string           `json:"title"`
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q", d.UID, d.Title)
	}
	out := map[string][]string{}
	ids := map[int]bool{}
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d twice", p.ID)
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				out[p.Title] = append(out[p.Title], tg.Expr)
			}
		}
	}
	walk(d.Panels)
	return out
}

var metricName = regexp.MustCompile(`\bmacronode_[a-zA-Z0-9_]+`)

// TestGrafanaDashboard (#12 §7): the dashboard has the panels the issue
// lists, every expression parses as PromQL (promtool check rules), and
// every metric it uses has a series in a live node's /metrics once the node
// has stored a blob, sent, received and acked a message, looked up a
// provider and had a child killed.
func TestGrafanaDashboard(t *testing.T) {
	exprs := dashboardExprs(t)
	for _, want := range []string{"Services up and ready", "Restarts", "Uptime", "Services not running", "Exits by cause", "Log lines and drops",
		"Storage throughput", "Storage bytes and objects", "Mailbox depth", "Mailbox throughput", "Overlay peers and DHT routing table", "DHT lookups"} {
		if _, ok := exprs[want]; !ok {
			t.Errorf("no panel %q", want)
		}
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		rules := "groups:\n  - name: dashboard\n    rules:\n"
		i := 0
		for _, es := range exprs {
			for _, e := range es {
				i++
				q, _ := json.Marshal(e) // a JSON string is a YAML string
				rules += fmt.Sprintf("      - record: dashboard:expr_%d\n        expr: %s\n", i, q)
			}
		}
		p := filepath.Join(t.TempDir(), "dashboard.rules.yml")
		if err := os.WriteFile(p, []byte(rules), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(promtool, "check", "rules", p).CombinedOutput(); err != nil {
			t.Errorf("promtool check rules on the dashboard's expressions: %v\n%s", err, out)
		}
	} else if os.Getenv("CI") == "true" {
		t.Error("promtool not on PATH (apt-get install prometheus)")
	} else {
		t.Log("promtool not on PATH: the expressions' syntax is not checked")
	}

	n := startNode(t, nodeOpts{})
	// A blob put and read back, and a miss that asks the dht for providers.
	resp, b, err := request("POST", n.gw("/o"), []byte("grafana dashboard blob"), nil)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("POST /o: %v %v %s", resp, err, trunc(b))
	}
	var put struct{ Address string }
	if err := json.Unmarshal(b, &put); err != nil {
		t.Fatal(err)
	}
	if resp, b, err := request("GET", n.gw("/o/"+put.Address), nil, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET the blob: %v %v %s", resp, err, trunc(b))
	}
	if resp, b, err := request("GET", n.gw("/o/b3:"+strings.Repeat("ab", 32)), nil, nil); err != nil || resp.StatusCode < 400 {
		t.Fatalf("GET a missing blob: %v %v %s", resp, err, trunc(b))
	}
	// A message sent, received and acked.
	if _, _, err := mbSend(client, n.gw(""), "grafana", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	msgs, err := mbReceive(client, n.gw(""), "grafana", 1, "30s", "5s")
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %v %v", msgs, err)
	}
	if _, err := mbAck(client, n.gw(""), "grafana", msgs[0].Receipt); err != nil {
		t.Fatal(err)
	}
	// A child killed, restarted and ready again.
	if err := syscall.Kill(childPID(t, n, "storage"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, restartTimeout, func() (bool, string) {
		st, err := n.status()
		if err != nil {
			return false, err.Error()
		}
		s := st.Services["storage"]
		return s.Restarts >= 1 && s.Ready, fmt.Sprintf("storage %+v", s)
	})

	text := scrape(t, n.url("/metrics"))
	if v, ok := metricValue(text, "macronode_service_exits_total", map[string]string{"service": "storage", "cause": "signal"}); !ok || v < 1 {
		t.Errorf("macronode_service_exits_total{service=storage,cause=signal} = %v (present %v) after kill -9, want >= 1", v, ok)
	}
	var missing []string
	for title, es := range exprs {
		for _, e := range es {
			for _, name := range metricName.FindAllString(e, -1) {
				if !hasMetric(text, name) && !slices.Contains(missing, name) {
					missing = append(missing, name)
					t.Errorf("panel %q uses %s, which has no series in the node's /metrics", title, name)
				}
			}
		}
	}
}
