package mailbox

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/macronode/macronode/pkg/fsx"
	"github.com/macronode/macronode/pkg/httpx"
)

// maxBatch is the most messages one messages:batch request carries.
const maxBatch = 100

// batchItem is one message of a messages:batch request.
type batchItem struct {
	Body           string `json:"body"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// batchResult is the outcome for one message of a batch: Status 201 with
// the new id, 200 with the id of an earlier send of the same idempotency
// key, or an error with its code and the status a single send would get.
type batchResult struct {
	ID     string `json:"id,omitempty"`
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
	Code   string `json:"code,omitempty"`
}

// batchCap bounds a messages:batch body: every message at the size cap in
// base64 plus its JSON and key.
func (s *Server) batchCap() int64 {
	return maxBatch*(s.cfg.MaxMessageBytes/3*4+8+maxIdemKeyLen+64) + 1024
}

func (s *Server) handleSendBatch(w http.ResponseWriter, r *http.Request) {
	name, ok := sendBoxFromPath(w, r)
	if !ok {
		return
	}
	data, ok := httpx.ReadBody(w, r, s.batchCap(), s.cfg.IOIdleTimeout)
	if !ok {
		return
	}
	var req struct {
		Messages []batchItem `json:"messages"`
	}
	if err := json.Unmarshal(data, &req); err != nil {
		httpx.Errorf(w, http.StatusBadRequest, "bad_param", "batch body: %v", err)
		return
	}
	if len(req.Messages) < 1 || len(req.Messages) > maxBatch {
		httpx.Errorf(w, http.StatusBadRequest, "bad_param", "a batch holds 1..%d messages, not %d", maxBatch, len(req.Messages))
		return
	}
	results, err := s.sendBatch(r.Context(), name, req.Messages)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Results []batchResult `json:"results"`
	}{results})
}

// decodeItem checks one batch message; a non-nil result is its error.
func (s *Server) decodeItem(it batchItem) ([]byte, *batchResult) {
	if it.IdempotencyKey != "" && !validIdempotencyKey(it.IdempotencyKey) {
		return nil, &batchResult{Status: http.StatusBadRequest, Code: "bad_idempotency_key",
			Error: fmt.Sprintf("idempotency_key must be 1..%d printable ASCII bytes", maxIdemKeyLen)}
	}
	body, err := base64.StdEncoding.DecodeString(it.Body)
	if err != nil {
		return nil, &batchResult{Status: http.StatusBadRequest, Code: "bad_body", Error: "body must be standard base64: " + err.Error()}
	}
	if int64(len(body)) > s.cfg.MaxMessageBytes {
		return nil, &batchResult{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
			Error: fmt.Sprintf("message of %d bytes is over max_message_bytes=%d", len(body), s.cfg.MaxMessageBytes)}
	}
	return body, nil
}

// batchSend is one new message of a batch, pending until the commit.
type batchSend struct {
	i    int
	m    *message
	e    *idemEntry
	ikey string
}

// sendBatch stores the messages of items in box name with one commit and
// returns a result per item, in order. An error means nothing was stored.
func (s *Server) sendBatch(ctx context.Context, name string, items []batchItem) ([]batchResult, error) {
	results := make([]batchResult, len(items))
	bodies := make([][]byte, len(items))
	for i, it := range items {
		var bad *batchResult
		if bodies[i], bad = s.decodeItem(it); bad != nil {
			results[i] = *bad
		}
	}
	var sends []batchSend
	var later []int         // keys another request is still committing
	sameAs := map[int]int{} // repeats of a key earlier in this batch
	byKey := map[string]int{}
	var refs []ref
	now := time.Now()
	s.mu.Lock()
	if s.isClosing() {
		s.mu.Unlock()
		return nil, errClosing
	}
	for i, it := range items {
		if results[i].Status != 0 {
			continue
		}
		ikey := ""
		if it.IdempotencyKey != "" {
			ikey = name + "\x00" + it.IdempotencyKey
			if j, ok := byKey[ikey]; ok {
				sameAs[i] = j
				continue
			}
			if e := s.ix.idem[ikey]; e != nil && now.Sub(e.created) < s.cfg.IdempotencyWindow {
				select {
				case <-e.done:
					if !e.failed {
						results[i] = batchResult{ID: formatID(e.seq), Status: http.StatusOK}
						continue
					}
				default:
					later = append(later, i)
					continue
				}
			}
		}
		if err := s.addBatchSend(name, ikey, bodies[i], now, i, &sends, &refs); err != nil {
			results[i] = opResult(err, s.cfg)
			continue
		}
		if ikey != "" {
			byKey[ikey] = i
		}
	}
	s.mu.Unlock()
	err := s.persist(refs)
	for _, b := range sends {
		id, _, ferr := s.finishSend(b.m, b.e, b.ikey, err)
		if ferr == nil {
			results[b.i] = batchResult{ID: id, Status: http.StatusCreated}
		}
	}
	if err != nil {
		return nil, err
	}
	for i, j := range sameAs {
		results[i] = results[j]
		if results[j].Status == http.StatusCreated {
			results[i].Status = http.StatusOK
		}
	}
	// A key another request was committing: wait for it as a single send
	// does (and send this one if that send failed).
	for _, i := range later {
		id, created, err := s.send(ctx, name, items[i].IdempotencyKey, bodies[i])
		switch {
		case err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, errClosing)):
			return nil, err
		case err != nil:
			results[i] = opResult(err, s.cfg)
		case created:
			results[i] = batchResult{ID: id, Status: http.StatusCreated}
		default:
			results[i] = batchResult{ID: id, Status: http.StatusOK}
		}
	}
	return results, nil
}

// addBatchSend registers one new message of a batch; s.mu is held.
func (s *Server) addBatchSend(name, ikey string, body []byte, now time.Time, i int, sends *[]batchSend, refs *[]ref) error {
	b, err := s.ix.ensureBox(name)
	if err != nil {
		return err
	}
	m, err := s.ix.addPending(b, body, now)
	if err != nil {
		return err
	}
	bs := batchSend{i: i, m: m, ikey: ikey}
	*refs = append(*refs, ref{seq: m.seq})
	if ikey != "" {
		bs.e = &idemEntry{seq: m.seq, created: now, done: make(chan struct{})}
		s.ix.idem[ikey] = bs.e
		*refs = append(*refs, ref{idem: ikey})
	}
	*sends = append(*sends, bs)
	return nil
}

// opResult is the per-message form of a send's cap or store error.
func opResult(err error, cfg Config) batchResult {
	switch {
	case errors.Is(err, errBoxFull):
		return batchResult{Status: http.StatusTooManyRequests, Code: "box_full",
			Error: fmt.Sprintf("box is full: it holds max_depth=%d messages", cfg.MaxDepth)}
	case errors.Is(err, errTooManyBoxes):
		return batchResult{Status: http.StatusTooManyRequests, Code: "too_many_boxes",
			Error: fmt.Sprintf("too many boxes: max_boxes=%d are in use", cfg.MaxBoxes)}
	case fsx.NoSpace(err):
		return batchResult{Status: http.StatusInsufficientStorage, Code: "storage_full", Error: "no space left to store the message"}
	default:
		return batchResult{Status: http.StatusInternalServerError, Code: "store_error", Error: "storing the message failed"}
	}
}
