package node

import (
	"slices"
	"strings"
	"testing"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/supervisor"
)

func load(t *testing.T, env ...string) *config.Config {
	t.Helper()
	cfg, _, err := config.Load(config.LoadOptions{Environ: env})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	return cfg
}

func argValue(args []string, flag string) (string, bool) {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1], true
		}
	}
	return "", false
}

func TestSpecsHandChildrenTheirFlags(t *testing.T) {
	cfg := load(t, "RON_DATA_DIR=/srv/mn", "RON_STORAGE_ADDR=127.0.0.1:19300", "RON_MAX_OBJECT_BYTES=2MiB")
	specs := Specs(cfg)
	var names []string
	byName := map[string]supervisor.Spec{}
	for _, s := range specs {
		names = append(names, s.Name)
		byName[s.Name] = s
	}
	// Start order: dependencies first, gateway after storage, index, mailbox.
	if got, want := names, []string{"storage", "index", "mailbox", "overlay", "dht", "gateway"}; !slices.Equal(got, want) {
		t.Fatalf("start order %v, want %v", got, want)
	}
	st := byName["storage"]
	cases := []struct {
		spec       supervisor.Spec
		flag, want string
	}{
		{st, "--listen", "127.0.0.1:19300"},
		{st, "--data-dir", "/srv/mn/storage"},
		{st, "--max-object-bytes", "2097152"},
		{st, "--chunk-bytes", "65536"},
		{st, "--log-format", "json"},
		{byName["gateway"], "--storage-addr", "127.0.0.1:19300"},
		{byName["gateway"], "--index-addr", "127.0.0.1:9400"},
		{byName["gateway"], "--mailbox-addr", "127.0.0.1:9500"},
		{byName["gateway"], "--dht-url", "http://127.0.0.1:9200"},
		{byName["gateway"], "--overlay-url", "http://127.0.0.1:9100"},
		{byName["index"], "--data-dir", "/srv/mn/index"},
	}
	for _, c := range cases {
		got, ok := argValue(c.spec.Args, c.flag)
		if !ok || got != c.want {
			t.Errorf("%s %s = %q (present %v), want %q; args %v", c.spec.Name, c.flag, got, ok, c.want, c.spec.Args)
		}
	}
	if !slices.Equal(byName["gateway"].DependsOn, []string{"storage", "index", "mailbox"}) {
		t.Errorf("gateway depends_on %v", byName["gateway"].DependsOn)
	}
	if st.Policy.MaxRestarts != 10 || st.HeartbeatTimeout.String() != "3s" || st.ShutdownTimeout.String() != "15s" {
		t.Errorf("storage policy not from config: %+v hb=%v grace=%v", st.Policy, st.HeartbeatTimeout, st.ShutdownTimeout)
	}
	if !strings.HasSuffix(st.Binary, "svc-storage") {
		t.Errorf("storage binary %q", st.Binary)
	}
}

func TestSpecsGatewayTLS(t *testing.T) {
	cfg := load(t, "RON_GATEWAY_TLS_CERT=/etc/mn/gw.crt", "RON_GATEWAY_TLS_KEY=/etc/mn/gw.key", "RON_PQ_MODE=off")
	for _, s := range Specs(cfg) {
		cert, ok := argValue(s.Args, "--tls-cert")
		if s.Name != "gateway" {
			if ok {
				t.Errorf("%s got TLS flags: %v", s.Name, s.Args)
			}
			continue
		}
		key, _ := argValue(s.Args, "--tls-key")
		pq, _ := argValue(s.Args, "--pq-mode")
		if cert != "/etc/mn/gw.crt" || key != "/etc/mn/gw.key" || pq != "off" {
			t.Errorf("gateway TLS args: %v", s.Args)
		}
	}
}

func TestSpecsDropDisabledDependencies(t *testing.T) {
	cfg := load(t, "RON_SERVICES=gateway,storage", "RON_AMNESIA=1")
	specs := Specs(cfg)
	if len(specs) != 2 || specs[0].Name != "storage" || specs[1].Name != "gateway" {
		t.Fatalf("specs %+v", specs)
	}
	gw := specs[1]
	if !slices.Equal(gw.DependsOn, []string{"storage"}) {
		t.Errorf("gateway depends_on %v, want [storage]", gw.DependsOn)
	}
	if _, ok := argValue(gw.Args, "--index-addr"); ok {
		t.Errorf("gateway told about a disabled index: %v", gw.Args)
	}
	if !slices.Contains(specs[0].Args, "--amnesia") {
		t.Errorf("amnesia not passed: %v", specs[0].Args)
	}
}

func TestDiffNamesChangedFields(t *testing.T) {
	a := load(t)
	b := load(t, "RON_LOG=debug", "RON_STORAGE_ADDR=127.0.0.1:19301")
	got, err := diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"log_level", "services.storage.listen"}; !slices.Equal(got, want) {
		t.Fatalf("diff = %v, want %v", got, want)
	}
	same, err := diff(a, load(t))
	if err != nil || len(same) != 0 {
		t.Fatalf("diff of equal configs = %v, %v", same, err)
	}
}

func TestStatusLine(t *testing.T) {
	cases := []struct {
		snap []supervisor.Status
		want string
	}{
		{nil, "0/0 running"},
		{[]supervisor.Status{{Name: "storage", State: supervisor.StateRunning, Ready: true}}, "1/1 running"},
		{[]supervisor.Status{
			{Name: "storage", State: supervisor.StateBackoff},
			{Name: "index", State: supervisor.StateRunning, Ready: true},
			{Name: "gateway", State: supervisor.StateFailed},
		}, "1/3 running; storage backoff, gateway failed"},
	}
	for _, c := range cases {
		if got := statusLine(c.snap); got != c.want {
			t.Errorf("statusLine = %q, want %q", got, c.want)
		}
	}
}

func TestDiffSeesSecrets(t *testing.T) {
	got, err := diff(load(t, "RON_ADMIN_TOKEN=one"), load(t, "RON_ADMIN_TOKEN=two"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"admin_token"}) {
		t.Fatalf("diff = %v, want [admin_token]", got)
	}
}

func TestSettled(t *testing.T) {
	ok := supervisor.Status{Name: "storage", State: supervisor.StateRunning, Ready: true, Critical: true}
	cases := []struct {
		name string
		snap []supervisor.Status
		want bool
	}{
		{"all running", []supervisor.Status{ok}, true},
		{"critical failed counts as settled", []supervisor.Status{ok, {Name: "index", State: supervisor.StateFailed, Critical: true}}, true},
		{"critical in backoff", []supervisor.Status{ok, {Name: "index", State: supervisor.StateBackoff, Critical: true}}, false},
		{"critical starting", []supervisor.Status{{Name: "index", State: supervisor.StateStarting, Critical: true}}, false},
		{"running but not ready", []supervisor.Status{{Name: "index", State: supervisor.StateRunning, Critical: true}}, false},
		{"non-critical does not gate", []supervisor.Status{ok, {Name: "dht", State: supervisor.StateBackoff}}, true},
	}
	for _, c := range cases {
		if got := settled(c.snap); got != c.want {
			t.Errorf("%s: settled = %v, want %v", c.name, got, c.want)
		}
	}
}
