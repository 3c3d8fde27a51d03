package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/audit"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/supervisor"
)

func TestParseFaultRequest(t *testing.T) {
	for _, tc := range []struct {
		body string
		kind supervisor.FaultKind
		d    time.Duration
		bad  string
	}{
		{body: `{"kind":"kill"}`, kind: supervisor.FaultKill},
		{body: `{"kind":"term"}`, kind: supervisor.FaultTerm},
		{body: `{"kind":"stop","duration":"2s"}`, kind: supervisor.FaultStop, d: 2 * time.Second},
		{body: `{"kind":"stop"}`, kind: supervisor.FaultStop, d: DefaultFaultStop},
		{body: ``, bad: "EOF"},
		{body: `{}`, bad: "unknown fault kind"},
		{body: `{"kind":"segv"}`, bad: "unknown fault kind"},
		{body: `{"kind":"kill","duration":"5s"}`, bad: "only to kind stop"},
		{body: `{"kind":"stop","duration":"5"}`, bad: "missing unit"},
		{body: `{"kind":"stop","duration":"-1s"}`, bad: "outside"},
		{body: `{"kind":"stop","duration":"11m"}`, bad: "outside"},
		{body: `{"kind":"kill","x":1}`, bad: "unknown field"},
		{body: `{"kind":"kill"} {}`, bad: "trailing"},
		{body: `[1]`, bad: "cannot unmarshal"},
	} {
		kind, d, err := ParseFaultRequest([]byte(tc.body))
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%s: err %v, want %q", tc.body, err, tc.bad)
			}
			continue
		}
		if err != nil || kind != tc.kind || d != tc.d {
			t.Errorf("%s: %q %v %v", tc.body, kind, d, err)
		}
	}
}

func FuzzParseFaultRequest(f *testing.F) {
	f.Add([]byte(`{"kind":"stop","duration":"5s"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		kind, d, err := ParseFaultRequest(body)
		if err != nil {
			return
		}
		if _, perr := supervisor.ParseFaultKind(string(kind)); perr != nil {
			t.Fatalf("accepted kind %q", kind)
		}
		if (kind == supervisor.FaultStop) != (d > 0) || d > MaxFaultStop {
			t.Fatalf("kind %s with duration %v", kind, d)
		}
	})
}

// faultServices is a fakeServices that records faults.
type faultServices struct {
	fakeServices
	fmu    sync.Mutex
	faults []string
	err    error
}

func (f *faultServices) Fault(name string, kind supervisor.FaultKind, d time.Duration) (int, error) {
	if !f.known(name) {
		return 0, fmt.Errorf("fault: %w", supervisor.ErrUnknownService)
	}
	f.fmu.Lock()
	defer f.fmu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	f.faults = append(f.faults, fmt.Sprintf("%s %s %v", name, kind, d))
	return 4242, nil
}

func auditNode(t *testing.T, token string) (*testNode, *faultServices, *audit.Log) {
	t.Helper()
	l, err := audit.Open(audit.Options{Dir: filepath.Join(t.TempDir(), "audit")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	svcs := &faultServices{}
	svcs.set(allRunning()...)
	cfg := testConfig()
	cfg.AdminToken = token
	return start(t, Options{Services: svcs, Audit: l, Config: func() *config.Config { return cfg }}), svcs, l
}

func TestFaultRoute(t *testing.T) {
	n, svcs, l := auditNode(t, "")
	r := n.do(t, "POST", "/api/v1/services/storage/fault", nil, `{"kind":"stop","duration":"1s"}`)
	var resp FaultResponse
	r.json(t, &resp)
	if r.code != http.StatusAccepted || resp.PID != 4242 || resp.Kind != "stop" || resp.DurationSeconds != 1 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{"/api/v1/services/nope/fault", `{"kind":"kill"}`, http.StatusNotFound},
		{"/api/v1/services/storage/fault", `{"kind":"boom"}`, http.StatusBadRequest},
		{"/api/v1/services/storage/fault", `not json`, http.StatusBadRequest},
	} {
		if r := n.do(t, "POST", tc.path, nil, tc.body); r.code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.path, tc.body, r.code, r.body, tc.code)
		}
	}
	svcs.err = fmt.Errorf("fault: %w", supervisor.ErrNotRunning)
	if r := n.do(t, "POST", "/api/v1/services/storage/fault", nil, `{"kind":"kill"}`); r.code != http.StatusConflict {
		t.Errorf("not running: %d %s", r.code, r.body)
	}
	if fmt.Sprint(svcs.faults) != "[storage stop 1s]" {
		t.Errorf("faults %v", svcs.faults)
	}
	recs, err := l.Read(time.Time{}, 0)
	if err != nil || len(recs) != 5 {
		t.Fatalf("audit %d records, %v", len(recs), err)
	}
	first := recs[0]
	if first.Kind != audit.KindFault || first.Result != "202" || first.Service != "storage" || !strings.HasPrefix(first.Who, "addr:127.0.0.1") ||
		first.Action != "POST /api/v1/services/storage/fault" || first.RequestID == "" {
		t.Errorf("first record %+v", first)
	}
	if b, _ := json.Marshal(first.Detail); !strings.Contains(string(b), `"pid":4242`) {
		t.Errorf("detail %s", b)
	}
	if recs[1].Result != "404" || recs[4].Result != "409" {
		t.Errorf("results %s %s", recs[1].Result, recs[4].Result)
	}
}

// Every admin POST is audited, refused ones included, with who asked: the
// token's fingerprint (never the token), and GET /api/v1/audit reads it back.
func TestAuditEveryPost(t *testing.T) {
	n, _, _ := auditNode(t, "sekrit")
	auth := map[string]string{"Authorization": "Bearer sekrit"}
	if r := n.do(t, "POST", "/api/v1/services/index/restart", auth, ""); r.code != http.StatusAccepted {
		t.Fatalf("restart: %d", r.code)
	}
	if r := n.do(t, "POST", "/api/v1/services/index/stop", map[string]string{"Authorization": "Bearer wrong"}, ""); r.code != http.StatusUnauthorized {
		t.Fatalf("bad token: %d", r.code)
	}
	if r := n.get(t, "/api/v1/audit"); r.code != http.StatusUnauthorized {
		t.Fatalf("audit without token: %d", r.code)
	}
	r := n.do(t, "GET", "/api/v1/audit?limit=10", auth, "")
	var doc AuditResponse
	r.json(t, &doc)
	if r.code != http.StatusOK || len(doc.Records) != 2 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	if strings.Contains(string(r.body), "sekrit") {
		t.Error("the audit log holds the token")
	}
	ok, bad := doc.Records[0], doc.Records[1]
	if ok.Result != "202" || ok.Kind != audit.KindAdmin || !strings.HasPrefix(ok.Who, "token:") || bad.Result != "401" || bad.Who == ok.Who {
		t.Errorf("records %+v", doc.Records)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?since=yesterday"} {
		if r := n.do(t, "GET", "/api/v1/audit"+q, auth, ""); r.code != http.StatusBadRequest {
			t.Errorf("%s: %d", q, r.code)
		}
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	r = n.do(t, "GET", "/api/v1/audit?since="+future, auth, "")
	if r.code != http.StatusOK || !strings.Contains(string(r.body), `"records":[]`) {
		t.Errorf("since future: %d %s", r.code, r.body)
	}
}
