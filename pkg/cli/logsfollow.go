package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/events"
)

// followLogs prints the newest n lines of service name, then each line the
// node streams (GET .../logs?follow=1), until ctx ends. After a broken
// connection it reconnects with the id of the last line printed, so no line
// is printed twice; lines the node's buffer no longer held by then, and
// lines a slow follower was skipped past, are counted on stderr.
func followLogs(ctx context.Context, env Env, cl *client, view logView, name string, n int) error {
	path := fmt.Sprintf("/api/v1/services/%s/logs?follow=1&lines=%d", url.PathEscape(name), n)
	return followSSE(ctx, "", func(lastID string) (string, error) {
		return cl.sse(ctx, path, lastID, true, func(fr events.Frame) error {
			return printLogFrame(env, view, name, fr)
		})
	})
}

// printLogFrame prints a line to stdout and a notice to stderr; other
// frames (heartbeats, unknown types) are ignored.
func printLogFrame(env Env, view logView, name string, fr events.Frame) error {
	switch fr.Type {
	case admin.LogFrameLine:
		var l admin.LogLine
		if err := json.Unmarshal([]byte(fr.Data), &l); err != nil {
			return fmt.Errorf("log line %s: %w", fr.ID, err)
		}
		printLines(env, view, name, []admin.LogLine{l})
	case admin.LogFrameDropped:
		var d admin.LogDropped
		if err := json.Unmarshal([]byte(fr.Data), &d); err != nil {
			return fmt.Errorf("dropped notice: %w", err)
		}
		fmt.Fprintf(env.Stderr, "macronode: %d line(s) of %s dropped: the node's log buffer moved on before they were sent\n", d.Missed, name)
	case admin.LogFrameReset:
		fmt.Fprintf(env.Stderr, "macronode: the node restarted; following %s from the oldest line it holds (earlier lines may be missing)\n", name)
	}
	return nil
}
