package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/macronode/macronode/pkg/audit"
	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/supervisor"
)

// Bounds of a stop fault's duration.
const (
	DefaultFaultStop = 5 * time.Second
	MaxFaultStop     = 10 * time.Minute
)

// Faulter is implemented by a Services that can inject faults
// (supervisor.Supervisor.Fault).
type Faulter interface {
	Fault(name string, kind supervisor.FaultKind, d time.Duration) (int, error)
}

// FaultRequest is the body of POST /api/v1/services/{name}/fault.
type FaultRequest struct {
	Kind     string `json:"kind"`
	Duration string `json:"duration,omitempty"`
}

// FaultResponse is its 202 answer.
type FaultResponse struct {
	Status          string  `json:"status"`
	Service         string  `json:"service"`
	Kind            string  `json:"kind"`
	PID             int     `json:"pid"`
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
}

// ParseFaultRequest decodes and checks a fault request: one JSON object with
// no unknown field; kind is kill, term or stop; duration (a Go duration)
// applies to stop only, default DefaultFaultStop, at most MaxFaultStop.
func ParseFaultRequest(body []byte) (supervisor.FaultKind, time.Duration, error) {
	var req FaultRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return "", 0, fmt.Errorf("fault request: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", 0, errors.New("fault request: trailing data after the JSON object")
	}
	kind, err := supervisor.ParseFaultKind(req.Kind)
	if err != nil {
		return "", 0, fmt.Errorf("fault request: %w", err)
	}
	if kind != supervisor.FaultStop {
		if req.Duration != "" {
			return "", 0, fmt.Errorf("fault request: duration applies only to kind stop, not %s", kind)
		}
		return kind, 0, nil
	}
	if req.Duration == "" {
		return kind, DefaultFaultStop, nil
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil {
		return "", 0, fmt.Errorf("fault request: duration: %w", err)
	}
	if d <= 0 || d > MaxFaultStop {
		return "", 0, fmt.Errorf("fault request: duration %s is outside (0, %s]", d, MaxFaultStop)
	}
	return kind, d, nil
}

// handleFault injects a real fault into a service's child (SPEC §5). The
// audit record of the POST becomes a fault record carrying the pid.
func (s *Server) handleFault(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f, ok := s.opts.Services.(Faulter)
	if s.opts.Services == nil || !ok {
		httpx.Error(w, http.StatusServiceUnavailable, "", "fault injection is not available on this node")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		httpx.BodyError(w, err, DefaultMaxBodyBytes)
		return
	}
	kind, d, err := ParseFaultRequest(body)
	if err != nil {
		httpx.Error(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	rec := auditRecord(r.Context())
	if rec != nil {
		rec.Kind = audit.KindFault
	}
	pid, err := f.Fault(name, kind, d)
	if errors.Is(err, supervisor.ErrNotRunning) {
		httpx.Errorf(w, http.StatusConflict, "not_running", "fault %s: %v", name, err)
		return
	}
	if err != nil {
		writeServiceError(w, "fault", name, err)
		return
	}
	resp := FaultResponse{Status: "fault injected", Service: name, Kind: string(kind), PID: pid, DurationSeconds: d.Seconds()}
	if rec != nil {
		rec.Detail = resp
	}
	s.log.Warn("fault injected over the admin API", "service", name, "kind", string(kind), "pid", pid,
		"remote", r.RemoteAddr, "request_id", httpx.RequestIDFrom(r.Context()))
	httpx.JSON(w, http.StatusAccepted, resp)
}
