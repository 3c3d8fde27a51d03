package node

import (
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/identity"
	"github.com/macronode/macronode/pkg/supervisor"
)

func planNode(t *testing.T, base []string) (*node, *fakeSup) {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	sup := newFakeSup()
	n := &node{nodeKey: key, sup: sup, log: hclog.NewNullLogger(),
		pending: pendingRestarts{planes: map[string]bool{}}}
	n.cfg.Store(load(t, base...))
	return n, sup
}

func TestPlanRestarts(t *testing.T) {
	base := []string{"RON_DATA_DIR=/tmp/mn-plan"}
	tests := []struct {
		name      string
		env       []string // on top of base
		field     string
		wantApply string   // the field's apply hint (a prefix of it, when it names followers)
		updated   []string // planes whose new settings reach the supervisor
	}{
		{name: "storage address", env: []string{"RON_STORAGE_ADDR=127.0.0.1:9399"}, field: "services.storage.listen",
			wantApply: "macronode restart storage", updated: []string{"dht", "gateway", "overlay", "storage"}},
		{name: "index address", env: []string{"RON_INDEX_ADDR=127.0.0.1:9499"}, field: "services.index.listen",
			wantApply: "macronode restart index", updated: []string{"gateway", "index"}},
		{name: "admin address", env: []string{"RON_HTTP_ADDR=127.0.0.1:8099"}, field: "http_addr", wantApply: ApplyNodeRestart},
		{name: "storage flag", env: []string{"RON_MAX_OBJECT_BYTES=1048576"}, field: "max_object_bytes",
			wantApply: "macronode restart gateway storage", updated: []string{"gateway", "storage"}},
		{name: "gateway flag beside a storage move", env: []string{"RON_GATEWAY_RATE=10", "RON_STORAGE_ADDR=127.0.0.1:9399"},
			field: "gateway_rate", wantApply: "macronode restart gateway", updated: []string{"dht", "gateway", "overlay", "storage"}},
		{name: "admin-only field beside a plane change", env: []string{"RON_METRICS_PUBLIC=false", "RON_GATEWAY_RATE=10"},
			field: "metrics_public", wantApply: ApplyNodeRestart, updated: []string{"gateway"}},
		{name: "bootstrap peers", env: []string{"RON_BOOTSTRAP=/ip4/127.0.0.1/tcp/9101/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"},
			field: "network.bootstrap", wantApply: "macronode restart overlay", updated: []string{"overlay"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, sup := planNode(t, base)
			next := load(t, append(slices.Clone(base), tt.env...)...)
			changed, err := diff(n.config(), next)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(changed, tt.field) {
				t.Fatalf("changed = %v, want %s among them", changed, tt.field)
			}
			apply := n.planRestarts(n.config(), next, changed, func(c *config.Config) []supervisor.Spec {
				specs, err := n.specs(c)
				if err != nil {
					t.Fatal(err)
				}
				return specs
			})
			if got := apply[tt.field]; got != tt.wantApply && !strings.HasPrefix(got, tt.wantApply+" (restarts") {
				t.Errorf("apply[%s] = %q, want %q", tt.field, got, tt.wantApply)
			}
			var updated []string
			for _, sp := range sup.updates {
				updated = append(updated, sp.Name)
			}
			slices.Sort(updated)
			if !slices.Equal(updated, tt.updated) {
				t.Errorf("updated %v, want %v", updated, tt.updated)
			}
		})
	}
}

// A plane whose address changed is updated with the planes calling it;
// once the supervisor has applied its update (an operator restart), its
// settings are in force in the node's configuration; a reload back to the
// old value cancels what was pending.
func TestRestartAppliesPending(t *testing.T) {
	base := []string{"RON_DATA_DIR=/tmp/mn-plan", "RON_SERVICES=storage,gateway"}
	n, sup := planNode(t, base)
	next := load(t, append(slices.Clone(base), "RON_STORAGE_ADDR=127.0.0.1:9399")...)
	changed, _ := diff(n.config(), next)
	n.planRestarts(n.config(), next, changed, func(c *config.Config) []supervisor.Spec { s, _ := n.specs(c); return s })
	slices.Sort(sup.with)
	if want := []string{"gateway:", "storage:gateway"}; !slices.Equal(sup.with, want) {
		t.Errorf("updates %v, want %v", sup.with, want)
	}
	n.syncApplied([]supervisor.Status{{Name: "storage", UpdatePending: true}, {Name: "gateway", UpdatePending: true}})
	if got := n.config().Services["storage"].Listen; got == "127.0.0.1:9399" {
		t.Fatal("storage's new address in force before its restart")
	}
	n.syncApplied([]supervisor.Status{{Name: "storage"}, {Name: "gateway", UpdatePending: true}})
	if got := n.config().Services["storage"].Listen; got != "127.0.0.1:9399" {
		t.Errorf("storage listen in force %q after its restart", got)
	}

	// Reverting to the settings in force cancels what was pending.
	n2, sup2 := planNode(t, base)
	n2.planRestarts(n2.config(), next, changed, func(c *config.Config) []supervisor.Spec { s, _ := n2.specs(c); return s })
	back := load(t, base...)
	changed2, _ := diff(n2.config(), back)
	n2.planRestarts(n2.config(), back, changed2, func(c *config.Config) []supervisor.Spec { s, _ := n2.specs(c); return s })
	if !slices.Contains(sup2.cancels, "storage") || !slices.Contains(sup2.cancels, "gateway") {
		t.Errorf("cancels %v, want storage and gateway", sup2.cancels)
	}
}
