package admin

import (
	"time"

	"github.com/macronode/macronode/pkg/supervisor"
)

// The admin plane owns its wire format: the JSON bodies of the routes are
// declared here, converted from the supervisor's snapshots, and the CLI
// decodes into the same types. GET /readyz's ReadyResponse is in
// readiness.go beside the rule that fills it.

// HealthResponse is the body of GET /healthz.
type HealthResponse struct {
	OK     bool              `json:"ok"`
	Checks map[string]string `json:"checks"`
}

// StatusResponse is the body of GET /api/v1/status.
type StatusResponse struct {
	UptimeSeconds float64                  `json:"uptime_seconds"`
	Profile       string                   `json:"profile"`
	HTTPAddr      string                   `json:"http_addr"`
	MetricsAddr   string                   `json:"metrics_addr"`
	LogLevel      string                   `json:"log_level"`
	Ready         bool                     `json:"ready"`
	Services      map[string]ServiceStatus `json:"services"`
	Node          NodeStatus               `json:"node"`
}

// ActionResponse is the 202 body of the POST action routes.
type ActionResponse struct {
	Status  string `json:"status"`
	Service string `json:"service,omitempty"`
}

// ReloadResponse is the 200 body of POST /api/v1/reload.
type ReloadResponse struct {
	Status string `json:"status"`
	ReloadResult
}

// LogsResponse is the body of GET /api/v1/services/{name}/logs.
type LogsResponse struct {
	Service string    `json:"service"`
	Lines   []LogLine `json:"lines"`
}

// ReloadResult is what a successful reload changed.
type ReloadResult struct {
	Changed         []string `json:"changed"`
	Applied         []string `json:"applied"`
	RestartRequired []string `json:"restart_required"`
	// Apply says, for each field of RestartRequired, what puts it in force:
	// "macronode restart <service>" (which also restarts the services
	// pointing at a changed address), or "node restart" for what only a new
	// parent can take (the admin's own http_addr, run_dir, ...).
	Apply map[string]string `json:"apply,omitempty"`
}

// ReloadError is the 422 body of POST /api/v1/reload.
type ReloadError struct {
	Error  string       `json:"error"`
	Code   string       `json:"code"`
	Errors []FieldError `json:"errors"`
}

// FieldError is one invalid config value in a ReloadError.
type FieldError struct {
	Field   string `json:"field"`
	Source  string `json:"source"`
	Message string `json:"message"`
}

// ServiceStatus is one service in GET /api/v1/status.
type ServiceStatus struct {
	State         string  `json:"state"`
	PID           int     `json:"pid"`
	Restarts      int     `json:"restarts"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	Ready         bool    `json:"ready"`
	Critical      bool    `json:"critical"`
	Listen        string  `json:"listen"` // the address in force
	// Listener is "held" while the parent holds the service's socket (a
	// connect then waits for the next child, never refused) and "closed"
	// once it closed it (stopped, failed, shutting down); absent for a
	// service that binds its own.
	Listener string `json:"listener,omitempty"`
	// RestartPending: a reload changed settings of this service that its
	// next `macronode restart` applies (ReloadResult.Apply).
	RestartPending bool         `json:"restart_pending,omitempty"`
	MetricsAddr    string       `json:"metrics_addr,omitempty"` // where the parent scrapes /metrics, when not listen
	LastExit       string       `json:"last_exit"`
	LastError      string       `json:"last_error"`
	NextRestart    time.Time    `json:"next_restart,omitzero"` // when in backoff or failed
	BackoffDelay   float64      `json:"backoff_seconds,omitempty"`
	Exits          []ExitRecord `json:"exits"` // the last few, newest last

	// StopDeadline, while the service is stopping, is when its child gets
	// SIGKILL: the drain's progress and the time it has left.
	StopDeadline time.Time `json:"stop_deadline,omitzero"`
}

// ExitRecord is one death of a service's child, for crash forensics.
type ExitRecord struct {
	Time          time.Time `json:"time"`
	PID           int       `json:"pid"`
	Code          int       `json:"code"`             // exit status, or 128+signal when killed
	Signal        string    `json:"signal,omitempty"` // e.g. "killed" when the child died by a signal
	Description   string    `json:"description"`      // e.g. "signal: killed", "exit status 1"
	UptimeSeconds float64   `json:"uptime_seconds"`
	Reason        string    `json:"reason,omitempty"` // why the supervisor killed it, if it did
	LastLines     []string  `json:"last_lines"`       // the last log lines before death

	// CrashBlock is the panic / fatal error / SIGQUIT header and the first
	// goroutine's stack the child printed, kept apart from the log ring.
	CrashBlock []string `json:"crash_block,omitempty"`
	// Restart is what the supervisor decided after this exit ("immediate",
	// "backoff", "failed", "none"), RestartDelaySeconds the delay before
	// the next start.
	Restart             string  `json:"restart,omitempty"`
	RestartDelaySeconds float64 `json:"restart_delay_seconds"`
}

// LogLine is one line a service's child wrote.
type LogLine struct {
	Seq    uint64    `json:"seq,omitempty"` // position in the service's log since the parent started
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"` // "stdout" or "stderr"
	Text   string    `json:"text"`
}

// serviceStatusOf converts a supervisor snapshot entry to the wire.
func serviceStatusOf(st supervisor.Status) ServiceStatus {
	exits := make([]ExitRecord, len(st.Exits))
	for i, e := range st.Exits {
		exits[i] = ExitRecord{
			Time: e.Time, PID: e.PID, Code: e.Code, Signal: e.Signal, Description: e.Description,
			UptimeSeconds: e.UptimeSeconds, Reason: e.Reason, LastLines: e.LastLines,
			Restart: e.Restart, RestartDelaySeconds: e.RestartDelaySeconds,
			CrashBlock: e.CrashBlock,
		}
	}
	return ServiceStatus{
		State: string(st.State), PID: st.PID, Restarts: st.Restarts, UptimeSeconds: st.UptimeSeconds,
		Ready: st.Ready, Critical: st.Critical, Listen: st.Listen, MetricsAddr: st.MetricsAddr, LastExit: st.LastExit, LastError: st.LastError,
		NextRestart: st.NextRestart, BackoffDelay: st.BackoffDelay, Exits: exits,
		StopDeadline: st.StopDeadline, Listener: st.Listener, RestartPending: st.UpdatePending,
	}
}

// logLinesOf converts a service's log lines to the wire; never nil.
func logLinesOf(lines []supervisor.LogLine) []LogLine {
	out := make([]LogLine, len(lines))
	for i, l := range lines {
		out[i] = logLineOf(l)
	}
	return out
}

func logLineOf(l supervisor.LogLine) LogLine {
	return LogLine{Seq: l.Seq, Time: l.Time, Stream: l.Stream, Text: l.Text}
}

// NodeStatus is the "node" of GET /api/v1/status: the node id, the overlay
// addresses other nodes bootstrap from (multiaddrs ending in /p2p/<id>),
// the overlay's peer counts and the DHT routing table size. Overlay and DHT
// say whether those planes answered (PlaneOK) or why their fields are
// empty (PlaneUnreachable, PlaneDown, PlaneDisabled).
type NodeStatus struct {
	ID              string   `json:"id"`
	Addrs           []string `json:"addrs"`
	Peers           int      `json:"peers"`
	Connected       int      `json:"connected"`
	DHTRoutingTable int      `json:"dht_routing_table"`
	Overlay         string   `json:"overlay"`
	DHT             string   `json:"dht"`
}

// PeersResponse is the body of GET /api/v1/peers.
type PeersResponse struct {
	Peers []Peer `json:"peers"`
}

// Peer is one node in the overlay's peer table.
type Peer struct {
	NodeID      string    `json:"node_id"`
	Addrs       []string  `json:"addrs"`
	Connected   bool      `json:"connected"`
	RTTMs       float64   `json:"rtt_ms"`                // last libp2p ping round trip; 0 when never measured
	LastSeen    time.Time `json:"last_seen,omitzero"`    // absent when never seen
	Agent       string    `json:"agent"`                 // the peer's libp2p agent version
	ReadyPlanes []string  `json:"ready_planes"`          // from the peer's signed node record
	DHTPeerID   string    `json:"dht_peer_id,omitempty"` // the peer's DHT host
	DHTAddrs    []string  `json:"dht_addrs"`
	Seq         uint64    `json:"seq"` // of the peer's newest node record
}
