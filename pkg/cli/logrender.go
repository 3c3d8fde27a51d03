package cli

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/logging"
)

// logView is how `macronode logs` shows a child's lines.
type logView struct {
	raw   bool           // print each line's text as the child wrote it
	color bool           // ANSI colours for the level
	loc   *time.Location // the zone times are shown in
}

// line renders one line of service as: time, level, service, message,
// then key=value fields, with one timestamp (the child's own when it
// wrote one, else when the parent read the line). It reads hclog JSON
// (@timestamp/@level/@message), the common time/level/msg JSON, hclog's
// text format, and plain text.
func (v logView) line(service string, l admin.LogLine) string {
	if v.raw {
		return l.Text
	}
	e := parseLogText(l.Text)
	ts := e.Time
	if ts.IsZero() {
		ts = l.Time
	}
	var b strings.Builder
	if ts.IsZero() {
		b.WriteString("-")
	} else {
		b.WriteString(ts.In(v.loc).Format("2006-01-02 15:04:05.000"))
	}
	b.WriteByte(' ')
	b.WriteString(v.level(e.Level))
	b.WriteByte(' ')
	b.WriteString(service)
	b.WriteString(": ")
	b.WriteString(e.Message)
	for _, f := range e.Fields {
		if f.Key == "service" && f.Value == service || f.Key == "@module" && strings.TrimPrefix(f.Value, "svc-") == service {
			continue // the service column says it
		}
		b.WriteByte(' ')
		b.WriteString(strings.TrimPrefix(f.Key, "@"))
		b.WriteByte('=')
		b.WriteString(f.Value)
	}
	return b.String()
}

// levelColors are the SGR codes of each level.
var levelColors = map[string]string{"TRACE": "2", "DEBUG": "36", "INFO": "32", "WARN": "33", "ERROR": "1;31"}

// level is the level in a fixed width, coloured when v.color.
func (v logView) level(lvl string) string {
	lvl = strings.ToUpper(lvl)
	switch lvl {
	case "":
		lvl = "-"
	case "WARNING":
		lvl = "WARN"
	case "ERR", "FATAL", "PANIC":
		lvl = "ERROR"
	}
	padded := fmt.Sprintf("%-5s", lvl)
	if c, ok := levelColors[lvl]; ok && v.color {
		return "\x1b[" + c + "m" + padded + "\x1b[0m"
	}
	return padded
}

// hclogText is hclog's text format: `<time> [LEVEL]  <message>`.
var hclogText = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\S+) \[(TRACE|DEBUG|INFO|WARN|ERROR)\]\s+(.*)$`)

// parseLogText reads a JSON object line or a text line; anything it does
// not recognise is the message, whole.
func parseLogText(text string) logging.Record {
	if strings.HasPrefix(strings.TrimSpace(text), "{") {
		if r, ok := logging.ParseRecord([]byte(text)); ok {
			return r
		}
	}
	if m := hclogText.FindStringSubmatch(text); m != nil {
		if ts, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
			return logging.Record{Time: ts, Level: m[2], Message: m[3]}
		}
		if ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", m[1]); err == nil {
			return logging.Record{Time: ts, Level: m[2], Message: m[3]}
		}
	}
	return logging.Record{Message: text}
}
