package svcrt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// reloadConfig is what a child applies from the parent's reload{config}:
// today only the log level. Unknown keys are ignored, so the parent may send
// more than a given child understands.
type reloadConfig struct {
	LogLevel *string `json:"log_level"`
}

// parseReload decodes a reload payload. level is hclog.NoLevel when the
// payload does not set one. An empty payload (or JSON null) changes nothing.
func parseReload(cfg []byte) (level hclog.Level, err error) {
	if len(bytes.TrimSpace(cfg)) == 0 {
		return hclog.NoLevel, nil
	}
	var rc reloadConfig
	if err := json.Unmarshal(cfg, &rc); err != nil {
		return hclog.NoLevel, fmt.Errorf("decode reload config: %w", err)
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
