// Package logging is the one logger factory: it builds the root hclog
// logger of the parent (New) and of each child runtime (NewNamed) from a
// level and a format. Sub-loggers (Named/With) share the root's level, so a
// SetLevel on the root — as a config reload does — applies everywhere.
package logging

import (
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// Name is the root logger's name.
const Name = "macronode"

// Levels are the accepted log levels, least to most severe.
var Levels = []string{"trace", "debug", "info", "warn", "error"}

// ParseLevel turns one of Levels into an hclog.Level.
func ParseLevel(level string) (hclog.Level, error) {
	for _, l := range Levels {
		if strings.EqualFold(level, l) {
			return hclog.LevelFromString(l), nil
		}
	}
	return hclog.NoLevel, fmt.Errorf("unknown log level %q (want one of %s)", level, strings.Join(Levels, ", "))
}

// New returns the parent's root logger (named Name) writing to w. format is
// "json", "text" or "auto" (text when w is a terminal, JSON otherwise).
func New(level, format string, w io.Writer) (hclog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return NewNamed(Name, lvl, format, w)
}

// NewNamed returns a root logger called name, at level, writing to w in
// format: "json", "text" or "auto" (or "": text when w is a terminal, JSON
// otherwise).
func NewNamed(name string, level hclog.Level, format string, w io.Writer) (hclog.Logger, error) {
	var jsonFormat bool
	switch strings.ToLower(format) {
	case "json":
		jsonFormat = true
	case "text":
	case "auto", "":
		jsonFormat = !IsTerminal(w)
	default:
		return nil, fmt.Errorf("unknown log format %q (want auto, json or text)", format)
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      level,
		Output:     w,
		JSONFormat: jsonFormat,
		Color:      hclog.ColorOff,
	}), nil
}

// IsTerminal reports whether w is a file descriptor attached to a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// NewParent returns the parent's Output on w (NewOutput, with
// JOURNAL_STREAM taken from environ, KEY=VALUE pairs) and its root logger,
// named Name, writing through it. The caller closes the Output last.
func NewParent(level, format string, w io.Writer, environ []string) (hclog.Logger, *Output, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, nil, err
	}
	var journal string
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "JOURNAL_STREAM="); ok {
			journal = v
		}
	}
	out, err := NewOutput(w, format, journal)
	if err != nil {
		return nil, nil, err
	}
	return out.Logger(Name, lvl), out, nil
}
