package node

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/supervisor"
)

// ApplyNodeRestart is the apply hint of a field only a new parent takes:
// the admin plane's own http_addr and metrics_addr, run_dir, data_dir, the
// set of planes and their supervision settings (critical, depends_on,
// backoff, timeouts), admin TLS.
const ApplyNodeRestart = "node restart (systemctl restart macronode)"

// pendingRestarts is what a reload left for `macronode restart`: the new
// launch settings of each plane are recorded in the supervisor (Update),
// applied by its next operator restart or start; a plane whose address
// changed brings along the planes that call it (followers), which the
// supervisor restarts with it. next is the configuration those settings
// come from.
type pendingRestarts struct {
	mu     sync.Mutex
	next   *config.Config
	planes map[string]bool // planes with settings waiting in the supervisor
}

// launchEqual reports whether two specs start the same child.
func launchEqual(a, b supervisor.Spec) bool {
	return a.Binary == b.Binary && a.Listen == b.Listen && slices.Equal(a.Args, b.Args) && slices.Equal(a.Env, b.Env)
}

// childSetting reports whether a services.<plane>.<key> field is part of
// how the plane's child is launched (flags, env, binary, address), so
// restarting that plane applies it.
func childSetting(key string) bool {
	switch key {
	case "listen", "args", "env", "binary", "p2p_listen":
		return true
	}
	return false
}

// planRestarts records, for the restart-required fields of a reload from
// cur to next, the new launch settings in the supervisor and returns what
// applies each field (ReloadResult.Apply). specs turns a configuration
// into the node's specs (the node key hand-off included).
func (n *node) planRestarts(cur, next *config.Config, fields []string, specs func(*config.Config) []supervisor.Spec) map[string]string {
	curSpecs, nextSpecs := byName(specs(cur)), byName(specs(next))
	changed := map[string]bool{} // planes enabled in both whose child would start differently
	for name, ns := range nextSpecs {
		if cs, ok := curSpecs[name]; ok && !launchEqual(cs, ns) {
			changed[name] = true
		}
	}
	followers := map[string][]string{}
	for p := range changed {
		addr := curSpecs[p].Listen
		if addr == nextSpecs[p].Listen {
			continue
		}
		for _, q := range sortedKeys(changed) {
			if q != p && callsAddr(curSpecs[q].Args, addr) {
				followers[p] = append(followers[p], q)
			}
		}
	}

	apply := map[string]string{}
	for _, f := range fields {
		rest, ok := strings.CutPrefix(f, "services.")
		plane, key, _ := strings.Cut(rest, ".")
		switch {
		case ok && childSetting(key) && changed[plane]:
			apply[f] = restartHint([]string{plane}, followers[plane])
		case ok || nodeField(f):
			apply[f] = ApplyNodeRestart
		default:
			// A top-level field: the planes whose flags it alone changes.
			var planes []string
			if trial, err := withField(cur, next, f); err == nil {
				ts := byName(specs(trial))
				for _, p := range sortedKeys(changed) {
					if !launchEqual(ts[p], curSpecs[p]) {
						planes = append(planes, p)
					}
				}
			}
			if len(planes) == 0 {
				apply[f] = ApplyNodeRestart
			} else {
				apply[f] = restartHint(planes, nil)
			}
		}
	}

	n.pending.mu.Lock()
	defer n.pending.mu.Unlock()
	for _, name := range sortedKeys(nextSpecs) {
		switch {
		case changed[name]:
			if err := n.sup.Update(nextSpecs[name], followers[name]); err != nil {
				n.log.Warn("reload: new settings not recorded", "service", name, "error", err)
				continue
			}
			n.pending.planes[name] = true
		case n.pending.planes[name]:
			// Reverted to the settings in force: nothing to apply.
			if err := n.sup.CancelUpdate(name); err != nil {
				n.log.Warn("reload: pending settings not cancelled", "service", name, "error", err)
			}
			delete(n.pending.planes, name)
		}
	}
	n.pending.next = next
	if len(apply) == 0 {
		return nil
	}
	return apply
}

// nodeField: a top-level field the node itself uses, whatever the planes'
// flags: only a new parent applies it.
func nodeField(f string) bool {
	switch f {
	case "http_addr", "metrics_addr", "run_dir", "data_dir", "amnesia", "services":
		return true
	}
	return strings.HasPrefix(f, "admin_")
}

// withField is a shallow copy of cur with the top-level field at path (its
// YAML keys, dot-separated, e.g. network.bootstrap) taken from next. The
// copy shares cur's services; path must not be under services.
func withField(cur, next *config.Config, path string) (*config.Config, error) {
	trial := *cur
	dst, src := reflect.ValueOf(&trial).Elem(), reflect.ValueOf(next).Elem()
	for _, key := range strings.Split(path, ".") {
		if dst.Kind() != reflect.Struct {
			return nil, fmt.Errorf("field %q: %q is not a group", path, key)
		}
		i := -1
		for j := range dst.NumField() {
			f := dst.Type().Field(j)
			if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); f.IsExported() && name == key {
				i = j
				break
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("field %q: no key %q", path, key)
		}
		dst, src = dst.Field(i), src.Field(i)
	}
	if dst.Kind() == reflect.Map || dst.Kind() == reflect.Pointer {
		return nil, fmt.Errorf("field %q: not a plain value", path)
	}
	dst.Set(src)
	return &trial, nil
}

func restartHint(planes, followers []string) string {
	h := "macronode restart " + strings.Join(planes, " ")
	if len(followers) > 0 {
		h += " (restarts " + strings.Join(followers, ", ") + " with it: they call its address)"
	}
	return h
}

// callsAddr reports whether args name addr (as a value or a URL's host).
func callsAddr(args []string, addr string) bool {
	for _, a := range args {
		if a == addr || a == "http://"+addr || a == "https://"+addr {
			return true
		}
	}
	return false
}

func byName(specs []supervisor.Spec) map[string]supervisor.Spec {
	m := make(map[string]supervisor.Spec, len(specs))
	for _, s := range specs {
		m[s.Name] = s
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// syncApplied puts in force, in the node's configuration, the settings of
// each plane whose pending update the supervisor has applied (an operator
// restart or start), so that status and `config print` show what runs.
func (n *node) syncApplied(snap []supervisor.Status) {
	n.pending.mu.Lock()
	var done []string
	for _, st := range snap {
		if n.pending.planes[st.Name] && !st.UpdatePending {
			delete(n.pending.planes, st.Name)
			done = append(done, st.Name)
		}
	}
	next := n.pending.next
	n.pending.mu.Unlock()
	if len(done) == 0 || next == nil {
		return
	}
	n.reloadMu.Lock() // the configuration in force changes: not during a reload
	defer n.reloadMu.Unlock()
	applied := *n.config()
	applied.Services = maps.Clone(applied.Services)
	for _, name := range done {
		if svc := next.Services[name]; svc != nil {
			applied.Services[name] = svc
		}
	}
	n.cfg.Store(&applied)
}
