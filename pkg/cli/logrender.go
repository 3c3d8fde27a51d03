package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/macronode/macronode/pkg/admin"
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
	ts := e.time
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
	b.WriteString(v.level(e.level))
	b.WriteByte(' ')
	b.WriteString(service)
	b.WriteString(": ")
	b.WriteString(e.msg)
	for _, f := range e.fields {
		if f.key == "service" && f.value == service || f.key == "@module" && strings.TrimPrefix(f.value, "svc-") == service {
			continue // the service column says it
		}
		b.WriteByte(' ')
		b.WriteString(strings.TrimPrefix(f.key, "@"))
		b.WriteByte('=')
		b.WriteString(f.value)
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

// logEntry is a child's line taken apart.
type logEntry struct {
	time   time.Time
	level  string
	msg    string
	fields []logField // in the order the child wrote them
}

type logField struct{ key, value string }

// hclogText is hclog's text format: `<time> [LEVEL]  <message>`.
var hclogText = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\S+) \[(TRACE|DEBUG|INFO|WARN|ERROR)\]\s+(.*)$`)

// parseLogText reads a JSON object line or a text line; anything it does
// not recognise is the message, whole.
func parseLogText(text string) logEntry {
	if strings.HasPrefix(strings.TrimSpace(text), "{") {
		if e, ok := parseJSONLog(text); ok {
			return e
		}
	}
	if m := hclogText.FindStringSubmatch(text); m != nil {
		if ts, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
			return logEntry{time: ts, level: m[2], msg: m[3]}
		}
		if ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", m[1]); err == nil {
			return logEntry{time: ts, level: m[2], msg: m[3]}
		}
	}
	return logEntry{msg: text}
}

// The keys a JSON line may carry its time, level and message under.
var (
	timeKeys  = []string{"@timestamp", "time", "ts", "timestamp"}
	levelKeys = []string{"@level", "level", "lvl"}
	msgKeys   = []string{"@message", "msg", "message"}
)

// parseJSONLog takes apart one JSON object, keeping its other keys in order.
func parseJSONLog(text string) (logEntry, bool) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return logEntry{}, false
	}
	var e logEntry
	var haveTime, haveLevel, haveMsg bool
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return logEntry{}, false
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return logEntry{}, false
		}
		var s string
		isString := len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil
		switch {
		case !haveTime && isString && slices.Contains(timeKeys, key):
			if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
				e.time, haveTime = ts, true
				continue
			}
		case !haveLevel && isString && slices.Contains(levelKeys, key):
			e.level, haveLevel = s, true
			continue
		case !haveMsg && isString && slices.Contains(msgKeys, key):
			e.msg, haveMsg = s, true
			continue
		}
		e.fields = append(e.fields, logField{key, fieldValue(raw, s, isString)})
	}
	if _, err := dec.Token(); err != nil || dec.More() {
		return logEntry{}, false
	}
	if !haveMsg && !haveLevel {
		return logEntry{}, false // some other JSON: show it whole
	}
	return e, true
}

// fieldValue renders a value: a string bare unless it needs quotes, any
// other value as compact JSON.
func fieldValue(raw json.RawMessage, s string, isString bool) string {
	if isString {
		if s == "" || strings.ContainsAny(s, " \t\n\"=") {
			return fmt.Sprintf("%q", s)
		}
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}
