package admin

import (
	"slices"
	"sort"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/supervisor"
)

// Dependency states reported by /readyz.
const (
	DepOK      = "ok"
	DepPending = "pending"
	DepDown    = "down"
	DepFailed  = "failed"
)

// Readiness modes reported by /readyz.
const (
	ModeTruthful  = "truthful"
	ModeDevForced = "dev-forced"
)

// ReadyResponse is the body of GET /readyz.
type ReadyResponse struct {
	Ready bool              `json:"ready"`
	Mode  string            `json:"mode"`
	Deps  map[string]string `json:"deps"`
}

// DepState maps one service's supervisor status to its readiness dependency
// state: running and ready is "ok"; failed (circuit open) is "failed";
// starting, or stopped and never started, is "pending"; anything else
// (backoff, unhealthy, stopping, stopped after having run, running but not
// yet ready) is "down".
func DepState(st supervisor.Status) string {
	switch {
	case st.IsReady():
		return DepOK
	case st.State == supervisor.StateFailed:
		return DepFailed
	case st.State == supervisor.StateStarting:
		return DepPending
	case st.State == supervisor.StateStopped && st.PID == 0 && len(st.Exits) == 0 && st.Restarts == 0:
		return DepPending
	default:
		return DepDown
	}
}

// enabledPlanes lists the enabled services of cfg: the known planes in
// config.Planes order first, then any other names sorted.
func enabledPlanes(cfg *config.Config) []string {
	if cfg == nil {
		return nil
	}
	var out, extra []string
	for _, p := range config.Planes {
		if svc := cfg.Services[p]; svc != nil && svc.Enabled {
			out = append(out, p)
		}
	}
	for name, svc := range cfg.Services {
		if svc != nil && svc.Enabled && !slices.Contains(config.Planes, name) {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}

// readinessOf computes truthful readiness from a config, the supervisor's
// snapshot (nil without a supervisor) and whether the network is up.
func readinessOf(cfg *config.Config, snap []supervisor.Status, network bool) ReadyResponse {
	r := ReadyResponse{Mode: ModeTruthful, Deps: map[string]string{}}
	ready := true
	if cfg == nil {
		r.Deps["config"] = "missing"
		ready = false
	} else {
		r.Deps["config"] = "loaded"
	}
	if network {
		r.Deps["network"] = DepOK
	} else {
		r.Deps["network"] = DepDown
		ready = false
	}
	byName := make(map[string]supervisor.Status, len(snap))
	for _, st := range snap {
		byName[st.Name] = st
	}
	for _, p := range enabledPlanes(cfg) {
		state := DepPending
		if st, ok := byName[p]; ok {
			state = DepState(st)
		}
		r.Deps[p] = state
		if cfg.Services[p].Critical && state != DepOK {
			ready = false
		}
	}
	r.Ready = ready
	return r
}

// network reports whether the admin listener is bound and not draining.
func (s *Server) network() bool { return s.bound.Load() && !s.draining.Load() }

// readiness is the truthful readiness of the node right now.
func (s *Server) readiness() ReadyResponse {
	return readinessOf(s.config(), s.snapshot(), s.network())
}

// services returns the status of every supervised service plus every enabled
// plane the supervisor does not know (shown stopped, pid 0), keyed by name,
// and the names in display order.
func servicesView(cfg *config.Config, snap []supervisor.Status) ([]string, map[string]supervisor.Status) {
	out := make(map[string]supervisor.Status, len(snap))
	var order []string
	for _, st := range snap {
		if st.Exits == nil {
			st.Exits = []supervisor.Exit{}
		}
		if _, dup := out[st.Name]; !dup {
			order = append(order, st.Name)
		}
		out[st.Name] = st
	}
	for _, p := range enabledPlanes(cfg) {
		if _, ok := out[p]; ok {
			continue
		}
		svc := cfg.Services[p]
		out[p] = supervisor.Status{
			Name:     p,
			State:    supervisor.StateStopped,
			Critical: svc.Critical,
			Listen:   svc.Listen,
			Exits:    []supervisor.Exit{},
		}
		order = append(order, p)
	}
	return order, out
}
