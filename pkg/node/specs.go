package node

import (
	"path/filepath"
	"sort"
	"strconv"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/supervisor"
)

// Specs translates the configuration into one supervisor.Spec per enabled
// plane, in start order. The parent hands each child everything it needs as
// flags (SPEC §3): listen address, its own data directory, log settings,
// limits and, for the gateway, the backends' addresses. A developer running a
// child by hand passes the same flags.
//
// A binary that cannot be resolved is kept as its bare name: the spawn then
// fails, the service goes through backoff and its last_error says why, which
// is what an operator can see and fix (`macronode doctor` reports it too).
func Specs(cfg *config.Config) []supervisor.Spec {
	enabled := cfg.Enabled()
	on := make(map[string]bool, len(enabled))
	for _, p := range enabled {
		on[p] = true
	}
	specs := make([]supervisor.Spec, 0, len(enabled))
	for _, plane := range enabled {
		s := cfg.Services[plane]
		bin, err := config.ResolveBinary(plane, s.Binary)
		if err != nil {
			bin = config.BinaryName(plane)
			if s.Binary != "" {
				bin = s.Binary
			}
		}
		var deps []string
		for _, d := range s.DependsOn {
			if on[d] && d != plane {
				deps = append(deps, d)
			}
		}
		specs = append(specs, supervisor.Spec{
			Name:      plane,
			Binary:    bin,
			Args:      append(childArgs(cfg, plane, on), s.Args...),
			Env:       envList(s.Env),
			Listen:    s.Listen,
			Critical:  s.Critical,
			DependsOn: deps,
			Policy: supervisor.Policy{
				Initial:       s.Backoff.Initial.D(),
				Max:           s.Backoff.Max.D(),
				Multiplier:    s.Backoff.Multiplier,
				Randomization: 0.2,
				MaxRestarts:   s.MaxRestarts,
				Window:        s.RestartWindow.D(),
				FailedRetry:   s.FailedRetry.D(),
				StableAfter:   s.StableAfter.D(),
			},
			StartTimeout:     s.StartTimeout.D(),
			HeartbeatTimeout: s.HeartbeatTimeout.D(),
			ShutdownTimeout:  cfg.ShutdownTimeout.D(),
		})
	}
	return specs
}

// childArgs are the flags of one plane's child, common ones first.
func childArgs(cfg *config.Config, plane string, on map[string]bool) []string {
	args := []string{
		"--listen", cfg.Services[plane].Listen,
		"--data-dir", filepath.Join(cfg.DataDir, plane),
		"--log-level", cfg.LogLevel,
		"--log-format", "json",
		"--shutdown-timeout", cfg.ShutdownTimeout.D().String(),
	}
	if cfg.Amnesia {
		args = append(args, "--amnesia")
	}
	size := func(s config.Size) string { return strconv.FormatInt(int64(s), 10) }
	switch plane {
	case "storage":
		args = append(args,
			"--max-object-bytes", size(cfg.MaxObjectBytes),
			"--chunk-bytes", size(cfg.ChunkBytes))
	case "gateway":
		for _, b := range []string{"storage", "index", "mailbox", "dht"} {
			if on[b] {
				args = append(args, "--"+b+"-addr", cfg.Services[b].Listen)
			}
		}
		args = append(args,
			"--max-body-bytes", size(cfg.MaxBodyBytes),
			"--max-object-bytes", size(cfg.MaxObjectBytes))
		if t := cfg.GatewayTLS; t.Cert != "" {
			args = append(args, "--tls-cert", t.Cert, "--tls-key", t.Key, "--pq-mode", cfg.PQMode)
		}
	}
	return args
}

// envList turns a service's env map into sorted KEY=VALUE pairs, so that the
// child's environment does not depend on map iteration order.
func envList(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
