package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The event-stream figures (events.go) read GET /api/v1/events as any
// client would: one HTTP connection per client, frames parsed by hand.

// sseEvent is the part of an event these figures need.
type sseEvent struct {
	Type    string `json:"type"`
	Service string `json:"service"`
	Data    struct {
		PID int `json:"pid"`
	} `json:"data"`
}

// streamClient has no overall timeout: a stream lasts as long as its context.
var streamClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}

// openEvents opens the node's event stream, waiting out 429 answers (the
// admin plane limits requests per client IP), until ctx ends.
func openEvents(ctx context.Context, n *node) (*http.Response, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url("/api/v1/events"), nil)
		if err != nil {
			return nil, fmt.Errorf("events request: %w", err)
		}
		resp, err := streamClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("open events: %w", err)
		}
		if resp.StatusCode == http.StatusOK {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			return nil, fmt.Errorf("open events: HTTP %d", resp.StatusCode)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// readEvents calls f for each event of an open stream until it ends.
func readEvents(body io.Reader, f func(sseEvent)) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev sseEvent
		if json.Unmarshal([]byte(data), &ev) == nil {
			f(ev)
		}
	}
}

// postFault asks the node to kill service's child, waiting out 429s.
func postFault(ctx context.Context, n *node, service string) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url("/api/v1/services/"+service+"/fault"),
			strings.NewReader(`{"kind":"kill"}`))
		if err != nil {
			return fmt.Errorf("fault request: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := pollClient.Do(req)
		if err != nil {
			return fmt.Errorf("fault %s: %w", service, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			return nil
		case http.StatusTooManyRequests:
			if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
				return err
			}
		default:
			return fmt.Errorf("fault %s: HTTP %d", service, resp.StatusCode)
		}
	}
}
