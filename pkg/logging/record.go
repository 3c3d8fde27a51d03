package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Record is one JSON-object log line taken apart: its time, level and
// message under the keys hclog and most Go loggers use, and every other
// key in the order the line has it.
type Record struct {
	Time     time.Time // zero when the line has no RFC 3339 time
	TimeText string    // the time as the line wrote it
	Level    string
	Message  string
	Fields   []Field
}

// Field is one other key of a Record. Value is a string as it is, quoted
// (Go syntax) when empty or holding spaces, quotes, '=' or newlines; any
// other value as compact JSON.
type Field struct{ Key, Value string }

// The keys a line may carry its time, level and message under, the first
// of each that holds a string (a time: an RFC 3339 one) wins.
var (
	timeKeys  = []string{"@timestamp", "time", "ts", "timestamp"}
	levelKeys = []string{"@level", "level", "lvl"}
	msgKeys   = []string{"@message", "msg", "message"}
)

// ParseRecord takes apart a line that is one JSON object with a level or a
// message. Anything else (text, other JSON, a broken object) is not a
// record: ok is false.
func ParseRecord(line []byte) (r Record, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return Record{}, false
	}
	var haveTime, haveLevel, haveMsg bool
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return Record{}, false
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return Record{}, false
		}
		var s string
		isString := len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil
		switch {
		case !haveTime && isString && slices.Contains(timeKeys, key):
			if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
				r.Time, r.TimeText, haveTime = ts, s, true
				continue
			}
		case !haveLevel && isString && slices.Contains(levelKeys, key):
			r.Level, haveLevel = s, true
			continue
		case !haveMsg && isString && slices.Contains(msgKeys, key):
			r.Message, haveMsg = s, true
			continue
		}
		r.Fields = append(r.Fields, Field{key, fieldValue(raw, s, isString)})
	}
	if _, err := dec.Token(); err != nil || dec.More() {
		return Record{}, false
	}
	if !haveMsg && !haveLevel {
		return Record{}, false
	}
	return r, true
}

// fieldValue renders a value: a string bare unless it needs quotes, any
// other value as compact JSON.
func fieldValue(raw json.RawMessage, s string, isString bool) string {
	if isString {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"=") {
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
