package events

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Frame is one Server-Sent Events frame as a client reads it: an event
// (ID may be empty, as for gap) or, with Comment set, a comment line such as
// the heartbeat.
type Frame struct {
	ID      string
	Type    string
	Data    string
	Comment string
}

// Event decodes the frame's data as an Event.
func (f Frame) Event() (Event, error) {
	var ev Event
	if err := json.Unmarshal([]byte(f.Data), &ev); err != nil {
		return ev, fmt.Errorf("event %s: %w", f.ID, err)
	}
	return ev, nil
}

// ReadSSE reads frames from an event stream and calls f for each until the
// stream ends (nil), a read fails, or f returns an error (returned as is).
func ReadSSE(r io.Reader, f func(Frame) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var cur Frame
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if cur.Type != "" || len(data) > 0 || cur.ID != "" {
				cur.Data = strings.Join(data, "\n")
				if cur.Type == "" {
					cur.Type = "message"
				}
				if err := f(cur); err != nil {
					return err
				}
			}
			cur, data = Frame{}, nil
			continue
		}
		if c, ok := strings.CutPrefix(line, ":"); ok {
			if err := f(Frame{Comment: strings.TrimSpace(c)}); err != nil {
				return err
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			cur.ID = value
		case "event":
			cur.Type = value
		case "data":
			data = append(data, value)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read event stream: %w", err)
	}
	return nil
}
