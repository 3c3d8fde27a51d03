package logging

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
)

// How a child's line is passed on (SPEC §6: tagged, not re-encoded).
//
// JSON output:
//   - a line holding a JSON object, `{"...}`, is written through with the
//     service spliced in as its first field: {"@service":"storage",<rest of
//     the child's object>. Its level, message, timestamp and fields are the
//     child's own bytes.
//   - any other line is wrapped: {"@level":"info","@message":"<the line>",
//     "@service":"storage","@stream":"stderr","@timestamp":"..."}, at error
//     level for a line of a crash block.
//
// Text output (for people, on a terminal):
//   - a JSON object line is rendered like the parent's own records:
//     `<child's timestamp> [WARN]  storage: message: key=value ...`;
//   - any other line is written as it came, behind `storage | `, so a stack
//     trace reads as the child printed it.
//
// Under journald each line starts with the priority of its level.

// jsonTimeFormat is hclog's JSON timestamp layout.
const jsonTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// format appends one formatted line, ending in '\n', to dst.
func (c *Child) format(dst []byte, t time.Time, stream string, l Line) []byte {
	obj := isObject(l.Text)
	if c.o.journal {
		lvl := hclog.Info
		if obj {
			lvl = lineLevel(l.Text)
		} else if l.Crash {
			lvl = hclog.Error
		}
		dst = priority(dst, lvl)
	}
	switch {
	case c.o.json && obj:
		dst = append(dst, c.jsonPrefix...)
		if len(l.Text) > 2 {
			dst = append(dst, ',')
			dst = append(dst, l.Text[1:]...)
		} else {
			dst = append(dst, '}')
		}
	case c.o.json:
		dst = append(dst, `{"@level":"`...)
		if l.Crash {
			dst = append(dst, "error"...)
		} else {
			dst = append(dst, "info"...)
		}
		dst = append(dst, `","@message":`...)
		dst = appendJSONString(dst, l.Text)
		dst = append(dst, `,"@service":`...)
		dst = append(dst, c.jsonPrefix[len(`{"@service":`):]...)
		dst = append(dst, `,"@stream":"`...)
		dst = append(dst, stream...)
		dst = append(dst, `","@timestamp":"`...)
		dst = t.AppendFormat(dst, jsonTimeFormat)
		dst = append(dst, `"}`...)
	case obj:
		if out, ok := renderText(dst, c.service, l.Text); ok {
			dst = out
			break
		}
		dst = append(append(dst, c.textPrefix...), l.Text...)
	default:
		dst = append(append(dst, c.textPrefix...), l.Text...)
	}
	return append(dst, '\n')
}

// isObject reports whether line looks like one JSON object: `{}` or `{"`
// ... `}`. The line is not parsed (that is the cost this path avoids):
// a child's structured logger writes whole objects, one a line.
func isObject(line []byte) bool {
	n := len(line)
	return n >= 2 && line[0] == '{' && line[n-1] == '}' && (n == 2 || line[1] == '"')
}

var levelPrefixes = [][]byte{[]byte(`"@level":"`), []byte(`"level":"`)}

// lineLevel finds the level of a JSON object line by its "@level" (hclog)
// or "level" key; info when it has neither or an unknown one.
func lineLevel(line []byte) hclog.Level {
	for _, k := range levelPrefixes {
		i := bytes.Index(line, k)
		if i < 0 {
			continue
		}
		v := line[i+len(k):]
		if j := bytes.IndexByte(v, '"'); j >= 0 {
			return levelOf(v[:j])
		}
	}
	return hclog.Info
}

func levelOf(v []byte) hclog.Level {
	switch strings.ToLower(string(v)) {
	case "trace":
		return hclog.Trace
	case "debug":
		return hclog.Debug
	case "warn", "warning":
		return hclog.Warn
	case "error", "err", "fatal", "panic", "crit", "critical":
		return hclog.Error
	default:
		return hclog.Info
	}
}

// priority appends the syslog priority prefix of level (sd-daemon(3)).
func priority(dst []byte, level hclog.Level) []byte {
	switch {
	case level >= hclog.Error:
		return append(dst, "<3>"...)
	case level == hclog.Warn:
		return append(dst, "<4>"...)
	case level == hclog.Info, level == hclog.NoLevel:
		return append(dst, "<6>"...)
	default:
		return append(dst, "<7>"...)
	}
}

// renderText appends a JSON object line as the parent's text records read:
// time, level, service, message, then the other fields sorted by key.
func renderText(dst []byte, service string, line []byte) ([]byte, bool) {
	r, ok := ParseRecord(line)
	if !ok {
		return dst, false
	}
	if r.TimeText != "" {
		dst = append(append(dst, r.TimeText...), ' ')
	}
	tag := "[" + strings.ToUpper(levelOf([]byte(r.Level)).String()) + "]"
	dst = append(dst, fmt.Sprintf("%-8s", tag)...)
	dst = append(append(dst, service...), ": "...)
	if strings.ContainsAny(r.Message, "\r\n") { // one record, one line
		dst = appendJSONString(dst, []byte(r.Message))
	} else {
		dst = append(dst, r.Message...)
	}
	fields := slices.DeleteFunc(r.Fields, func(f Field) bool { return hiddenKeys[f.Key] })
	slices.SortStableFunc(fields, func(a, b Field) int { return strings.Compare(a.Key, b.Key) })
	if len(fields) > 0 {
		dst = append(dst, ':')
	}
	for _, f := range fields {
		dst = append(append(append(append(dst, ' '), f.Key...), '='), f.Value...)
	}
	return dst, true
}

// hiddenKeys are hclog's own keys that a rendered child record leaves out.
var hiddenKeys = map[string]bool{"@module": true, "@caller": true}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	return append(append(dst, s[start:]...), '"')
}
