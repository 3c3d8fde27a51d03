package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
)

// The batch rows: batchSize messages per request (or Redis pipeline), at
// batchClients clients.
const (
	batchSize    = 10
	batchClients = 16
)

// mailboxBatchCycle sends batchSize messages with one messages:batch
// request, receives batchSize (any worker's) with receive?max=batchSize and
// acks each receive's messages with one ack request, with do.
func mailboxBatchCycle(ctx context.Context, do postFunc, base, box string, body []byte) error {
	stamp(body)
	type item struct {
		Body string `json:"body"`
	}
	items := make([]item, batchSize)
	enc := base64.StdEncoding.EncodeToString(body)
	for i := range items {
		items[i].Body = enc
	}
	req, err := json.Marshal(map[string]any{"messages": items})
	if err != nil {
		return fmt.Errorf("batch: encode: %w", err)
	}
	resp, err := do(ctx, base+"/mailboxes/"+box+"/messages:batch", "application/json", req)
	if err != nil {
		return err
	}
	var sent struct {
		Results []struct {
			Status int `json:"status"`
		} `json:"results"`
	}
	if resp.code != http.StatusOK || json.Unmarshal(resp.body, &sent) != nil || len(sent.Results) != batchSize {
		return fmt.Errorf("batch send: %d %.200s", resp.code, resp.body)
	}
	for _, r := range sent.Results {
		if r.Status != http.StatusCreated {
			return fmt.Errorf("batch send: a message answered %d: %.200s", r.Status, resp.body)
		}
	}
	for got := 0; got < batchSize; {
		resp, err = do(ctx, fmt.Sprintf("%s/mailboxes/%s/receive?max=%d&visibility=30s&wait=1s", base, box, batchSize-got), "", nil)
		if err != nil {
			return err
		}
		var rcv struct {
			Messages []struct {
				Receipt string `json:"receipt"`
				Body    []byte `json:"body"`
			} `json:"messages"`
		}
		if resp.code != http.StatusOK || json.Unmarshal(resp.body, &rcv) != nil {
			return fmt.Errorf("receive: %d %.200s", resp.code, resp.body)
		}
		if len(rcv.Messages) == 0 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // other workers took ours: theirs are on the way
		}
		receipts := make([]string, len(rcv.Messages))
		for i, m := range rcv.Messages {
			if len(m.Body) != len(body) {
				return fmt.Errorf("receive: body of %d bytes, sent %d", len(m.Body), len(body))
			}
			receipts[i] = m.Receipt
		}
		ack, _ := json.Marshal(map[string][]string{"receipts": receipts})
		resp, err = do(ctx, base+"/mailboxes/"+box+"/ack", "application/json", ack)
		if err != nil {
			return err
		}
		var res struct {
			Acked int `json:"acked"`
		}
		if resp.code != http.StatusOK || json.Unmarshal(resp.body, &res) != nil || res.Acked != len(receipts) {
			return fmt.Errorf("ack: %d %.200s", resp.code, resp.body)
		}
		got += len(receipts)
	}
	return nil
}

// redisBatchCycle is redisCycle for batchSize messages, each step one
// pipeline: LPUSH x n, LMOVE x n (repeated for what another client took),
// LREM x n.
func redisBatchCycle(rc *respConn, q, proc string, body []byte) error {
	stamp(body)
	cmds := make([][][]byte, batchSize)
	for i := range cmds {
		cmds[i] = [][]byte{[]byte("LPUSH"), []byte(q), body}
	}
	if _, err := rc.pipe(cmds...); err != nil {
		return err
	}
	var moved [][]byte
	for len(moved) < batchSize {
		n := batchSize - len(moved)
		mv := make([][][]byte, n)
		for i := range mv {
			mv[i] = [][]byte{[]byte("LMOVE"), []byte(q), []byte(proc), []byte("RIGHT"), []byte("LEFT")}
		}
		reps, err := rc.pipe(mv...)
		if err != nil {
			return err
		}
		for _, r := range reps {
			if !r.null {
				moved = append(moved, r.str)
			}
		}
		if len(moved) < batchSize {
			// Wait (blocking) for one more instead of spinning.
			rep, err := rc.do([]byte("BLMOVE"), []byte(q), []byte(proc), []byte("RIGHT"), []byte("LEFT"), []byte("1"))
			if err != nil {
				return err
			}
			if !rep.null {
				moved = append(moved, rep.str)
			}
		}
	}
	rem := make([][][]byte, len(moved))
	for i, m := range moved {
		if len(m) != len(body) {
			return fmt.Errorf("LMOVE: %d bytes, pushed %d", len(m), len(body))
		}
		rem[i] = [][]byte{[]byte("LREM"), []byte(proc), []byte("1"), m}
	}
	reps, err := rc.pipe(rem...)
	if err != nil {
		return err
	}
	for _, r := range reps {
		if r.num != 1 {
			return fmt.Errorf("LREM removed %d", r.num)
		}
	}
	return nil
}
