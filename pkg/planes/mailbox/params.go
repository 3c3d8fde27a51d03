package mailbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"
)

// Receive and lease limits.
const (
	DefaultReceiveMax  = 10
	MaxReceiveMax      = 100
	DefaultVisibility  = 30 * time.Second
	MinVisibility      = time.Millisecond
	MaxVisibility      = 12 * time.Hour
	MaxWait            = 20 * time.Second
	MaxNackDelay       = 12 * time.Hour
	MaxReceiptsPerCall = 100
	maxReceiptLen      = 64
	maxIdemKeyLen      = 256
	maxControlBody     = 64 << 10
)

// receiveParams are the parsed query parameters of a receive.
type receiveParams struct {
	Max        int
	Visibility time.Duration
	Wait       time.Duration
}

// paramError names the query parameter or JSON field that was wrong.
type paramError struct {
	Param string
	Msg   string
}

func (e *paramError) Error() string { return "invalid " + e.Param + ": " + e.Msg }

// parseReceiveParams parses max, visibility and wait. Each may appear at most
// once; any other parameter is an error.
func parseReceiveParams(q url.Values) (receiveParams, error) {
	p := receiveParams{Max: DefaultReceiveMax, Visibility: DefaultVisibility}
	for k, vs := range q {
		if len(vs) != 1 {
			return p, &paramError{Param: k, Msg: "must be given exactly once"}
		}
		v := vs[0]
		switch k {
		case "max":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxReceiveMax {
				return p, &paramError{Param: "max", Msg: fmt.Sprintf("%q is not an integer 1..%d", v, MaxReceiveMax)}
			}
			p.Max = n
		case "visibility":
			d, err := parseDuration(v)
			if err != nil || d < MinVisibility || d > MaxVisibility {
				return p, &paramError{Param: "visibility", Msg: fmt.Sprintf("%q is not a duration %s..%s", v, MinVisibility, MaxVisibility)}
			}
			p.Visibility = d
		case "wait":
			d, err := parseDuration(v)
			if err != nil || d < 0 || d > MaxWait {
				return p, &paramError{Param: "wait", Msg: fmt.Sprintf("%q is not a duration 0s..%s", v, MaxWait)}
			}
			p.Wait = d
		default:
			return p, &paramError{Param: k, Msg: "unknown parameter (known: max, visibility, wait)"}
		}
	}
	return p, nil
}

// parseDuration accepts a Go duration ("200ms", "30s") or whole seconds ("30").
func parseDuration(v string) (time.Duration, error) {
	if v == "" {
		return 0, errors.New("empty duration")
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}

// receiptsRequest is the body of ack, nack and extend.
type receiptsRequest struct {
	Receipts   []string `json:"receipts"`
	Delay      *string  `json:"delay,omitempty"`
	Visibility *string  `json:"visibility,omitempty"`
}

// receiptsKind selects which optional duration field a receipts body allows.
type receiptsKind int

const (
	kindAck receiptsKind = iota
	kindNack
	kindExtend
)

// parseReceiptsBody parses the JSON body of ack (kindAck), nack (kindNack,
// optional "delay", default 0) or extend (kindExtend, optional "visibility",
// default 30s). It returns the receipts and the duration.
func parseReceiptsBody(data []byte, kind receiptsKind) ([]string, time.Duration, error) {
	var req receiptsRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, 0, &paramError{Param: "body", Msg: "not a JSON object {\"receipts\":[...]}: " + err.Error()}
	}
	// Token, not More: More misses a stray closing '}' or ']'.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, 0, &paramError{Param: "body", Msg: "trailing data after the JSON object"}
	}
	if len(req.Receipts) == 0 || len(req.Receipts) > MaxReceiptsPerCall {
		return nil, 0, &paramError{Param: "receipts", Msg: fmt.Sprintf("must hold 1..%d receipts, got %d", MaxReceiptsPerCall, len(req.Receipts))}
	}
	for i, r := range req.Receipts {
		if r == "" || len(r) > maxReceiptLen {
			return nil, 0, &paramError{Param: "receipts", Msg: fmt.Sprintf("receipt %d is empty or longer than %d bytes", i, maxReceiptLen)}
		}
	}
	var d time.Duration
	switch kind {
	case kindAck:
		if req.Delay != nil || req.Visibility != nil {
			return nil, 0, &paramError{Param: "body", Msg: "ack takes only \"receipts\""}
		}
	case kindNack:
		if req.Visibility != nil {
			return nil, 0, &paramError{Param: "visibility", Msg: "nack takes \"delay\", not \"visibility\""}
		}
		if req.Delay != nil {
			v, err := parseDuration(*req.Delay)
			if err != nil || v < 0 || v > MaxNackDelay {
				return nil, 0, &paramError{Param: "delay", Msg: fmt.Sprintf("%q is not a duration 0s..%s", *req.Delay, MaxNackDelay)}
			}
			d = v
		}
	case kindExtend:
		if req.Delay != nil {
			return nil, 0, &paramError{Param: "delay", Msg: "extend takes \"visibility\", not \"delay\""}
		}
		d = DefaultVisibility
		if req.Visibility != nil {
			v, err := parseDuration(*req.Visibility)
			if err != nil || v < MinVisibility || v > MaxVisibility {
				return nil, 0, &paramError{Param: "visibility", Msg: fmt.Sprintf("%q is not a duration %s..%s", *req.Visibility, MinVisibility, MaxVisibility)}
			}
			d = v
		}
	}
	return req.Receipts, d, nil
}

// validIdempotencyKey accepts 1..256 bytes of printable ASCII.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > maxIdemKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}
