package mailbox

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/macronode/macronode/pkg/fsx"
	"github.com/macronode/macronode/pkg/httpx"
)

// Handler returns the plane API (see the package documentation).
func (s *Server) Handler() http.Handler {
	mux := httpx.NewMux()
	mux.HandleFunc("POST /mailboxes/{box}/messages", s.handleSend)
	mux.HandleFunc("POST /mailboxes/{box}/messages:batch", s.handleSendBatch)
	mux.HandleFunc("POST /mailboxes/{box}/receive", s.handleReceive)
	mux.HandleFunc("POST /mailboxes/{box}/ack", s.settleHandler(kindAck))
	mux.HandleFunc("POST /mailboxes/{box}/nack", s.settleHandler(kindNack))
	mux.HandleFunc("POST /mailboxes/{box}/extend", s.settleHandler(kindExtend))
	mux.HandleFunc("GET /mailboxes/{box}", s.handleInfo)
	mux.HandleFunc("GET /mailboxes", s.handleList)
	// Recover, RequestID and request metrics are the child runtime's.
	return mux
}

// boxFromPath validates the {box} path value, answering 400 bad_box if bad.
func boxFromPath(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("box")
	if err := ValidateBox(name); err != nil {
		httpx.Error(w, http.StatusBadRequest, "bad_box", err.Error())
		return "", false
	}
	return name, true
}

// sendBoxFromPath is boxFromPath for sends: a dead-letter box answers 400
// bad_box.
func sendBoxFromPath(w http.ResponseWriter, r *http.Request) (string, bool) {
	name, ok := boxFromPath(w, r)
	if ok && isDLQ(name) {
		httpx.Error(w, http.StatusBadRequest, "bad_box", "dead-letter boxes are filled only by redelivery; send to the original box")
		return "", false
	}
	return name, ok
}

// writeOpError maps an operation error to its JSON HTTP answer.
func (s *Server) writeOpError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errBoxFull):
		httpx.Errorf(w, http.StatusTooManyRequests, "box_full", "box is full: it holds max_depth=%d messages", s.cfg.MaxDepth)
	case errors.Is(err, errTooManyBoxes):
		httpx.Errorf(w, http.StatusTooManyRequests, "too_many_boxes", "too many boxes: max_boxes=%d are in use", s.cfg.MaxBoxes)
	case errors.Is(err, errClosing), errors.Is(err, errStoreClosed):
		httpx.Error(w, http.StatusServiceUnavailable, "", err.Error())
	case fsx.NoSpace(err):
		// Reads go on; a write succeeds again once space is freed.
		s.log.Error("mailbox store full", "method", r.Method, "path", r.URL.Path,
			"request_id", httpx.RequestIDFrom(r.Context()), "error", err)
		httpx.Error(w, http.StatusInsufficientStorage, "storage_full", "no space left to store the change")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client went away (or the request timed out); nothing was lost.
		httpx.Error(w, http.StatusServiceUnavailable, "", "request ended before it completed")
	default:
		s.log.Error("mailbox operation failed", "method", r.Method, "path", r.URL.Path,
			"request_id", httpx.RequestIDFrom(r.Context()), "error", err)
		httpx.Error(w, http.StatusInternalServerError, "store_error", "storing the change failed")
	}
}

func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	name, ok := sendBoxFromPath(w, r)
	if !ok {
		return
	}
	key := ""
	if vs := r.Header.Values("Idempotency-Key"); len(vs) > 0 {
		if len(vs) != 1 || !validIdempotencyKey(vs[0]) {
			httpx.Errorf(w, http.StatusBadRequest, "bad_idempotency_key",
				"Idempotency-Key must be one header of 1..%d printable ASCII bytes", maxIdemKeyLen)
			return
		}
		key = vs[0]
	}
	body, ok := httpx.ReadBody(w, r, s.cfg.MaxMessageBytes, s.cfg.IOIdleTimeout)
	if !ok {
		return
	}
	id, created, err := s.send(r.Context(), name, key, body)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	writeID(w, status, id)
}

func (s *Server) handleReceive(w http.ResponseWriter, r *http.Request) {
	name, ok := boxFromPath(w, r)
	if !ok {
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		httpx.Errorf(w, http.StatusBadRequest, "bad_param", "invalid query: %v", err)
		return
	}
	p, err := parseReceiveParams(q)
	if err != nil {
		httpx.Error(w, http.StatusBadRequest, "bad_param", err.Error())
		return
	}
	msgs, err := s.receive(r.Context(), name, p)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	writeAnswer(w, func(b []byte) []byte { return appendDeliveries(b, msgs) })
}

func (s *Server) settleHandler(kind receiptsKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, ok := boxFromPath(w, r)
		if !ok {
			return
		}
		data, ok := httpx.ReadBody(w, r, maxControlBody, s.cfg.IOIdleTimeout)
		if !ok {
			return
		}
		receipts, d, err := parseReceiptsBody(data, kind)
		if err != nil {
			httpx.Error(w, http.StatusBadRequest, "bad_param", err.Error())
			return
		}
		n, results, err := s.settle(name, receipts, kind, d)
		if err != nil {
			s.writeOpError(w, r, err)
			return
		}
		writeAnswer(w, func(b []byte) []byte { return appendSettle(b, kind, n, results) })
	}
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	name, ok := boxFromPath(w, r)
	if !ok {
		return
	}
	info, ok := s.boxInfo(name)
	if !ok {
		httpx.Errorf(w, http.StatusNotFound, "", "box %q is not known: nothing was sent to it since it was last empty", name)
		return
	}
	httpx.JSON(w, http.StatusOK, info)
}

func (s *Server) handleList(w http.ResponseWriter, _ *http.Request) {
	httpx.JSON(w, http.StatusOK, map[string]any{"boxes": s.listBoxes()})
}
