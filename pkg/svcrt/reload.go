package svcrt

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/control"
)

// parseReload decodes a reload payload (control.ReloadConfig; today a
// child applies only the log level). level is hclog.NoLevel when the
// payload does not set one. An empty payload (or JSON null) changes nothing.
func parseReload(cfg []byte) (level hclog.Level, err error) {
	rc, err := control.ParseReloadConfig(cfg)
	if err != nil {
		return hclog.NoLevel, err
	}
	if rc.LogLevel == nil {
		return hclog.NoLevel, nil
	}
	level = hclog.LevelFromString(*rc.LogLevel)
	if level == hclog.NoLevel || level == hclog.Off || strings.EqualFold(strings.TrimSpace(*rc.LogLevel), "off") {
		return hclog.NoLevel, fmt.Errorf("invalid log_level %q: want trace, debug, info, warn or error", *rc.LogLevel)
	}
	return level, nil
}

// reload applies a reload payload from the parent. A bad payload is logged
// and ignored: the child keeps serving with its current settings.
func (r *runtime) reload(cfg []byte) {
	level, err := parseReload(cfg)
	if err != nil {
		r.log.Warn("ignoring bad reload config from parent", "config_bytes", len(cfg), "error", err)
		return
	}
	if level == hclog.NoLevel {
		r.log.Info("reload requested by parent; nothing this child can change", "config_bytes", len(cfg))
		return
	}
	from := r.log.GetLevel()
	if level == from {
		r.log.Debug("reload requested by parent; log level unchanged", "level", level.String())
		return
	}
	// Log on whichever side of the change lets the line through.
	if level < from {
		r.log.SetLevel(level)
		r.log.Info("log level changed", "from", from.String(), "to", level.String())
		return
	}
	r.log.Info("log level changed", "from", from.String(), "to", level.String())
	r.log.SetLevel(level)
}
