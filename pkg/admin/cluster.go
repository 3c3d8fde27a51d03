package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/supervisor"
)

// The node's place in the cluster (SPEC §8 identity) comes from the overlay
// and dht children's internal HTTP APIs on their loopback listeners:
// GET /overlay/info, GET /overlay/peers and GET /dht/info. The admin plane
// asks them on every GET /api/v1/status and GET /api/v1/peers, in parallel
// and bounded by Options.PlaneTimeout, holding no lock meanwhile: a plane
// that does not answer in time leaves its fields empty and says so in
// NodeStatus.Overlay or NodeStatus.DHT; it never holds up the answer.

// DefaultPlaneTimeout bounds each request to the overlay and dht children.
const DefaultPlaneTimeout = 500 * time.Millisecond

// planeMaxBytes caps an answer of the overlay or dht child (a peer table of
// thousands of peers fits).
const planeMaxBytes = 8 << 20

// The states of a plane in NodeStatus.Overlay and NodeStatus.DHT.
const (
	PlaneOK          = "ok"          // it answered
	PlaneUnreachable = "unreachable" // it runs but did not answer in time, or answered nonsense
	PlaneDown        = "down"        // enabled, but not running now
	PlaneDisabled    = "disabled"    // not enabled on this node
)

// overlayInfo is the overlay child's GET /overlay/info answer.
type overlayInfo struct {
	NodeID    string   `json:"node_id"`
	Addrs     []string `json:"addrs"`
	Peers     int      `json:"peers"`
	Connected int      `json:"connected"`
}

// dhtInfo is the part of the dht child's GET /dht/info answer status shows.
type dhtInfo struct {
	RoutingTable int `json:"routing_table"`
}

// overlayPeers is the overlay child's GET /overlay/peers answer.
type overlayPeers struct {
	Peers []overlayPeer `json:"peers"`
}

type overlayPeer struct {
	NodeID      string   `json:"node_id"`
	Addrs       []string `json:"addrs"`
	Connected   bool     `json:"connected"`
	RTTMs       float64  `json:"rtt_ms"`
	LastSeen    flexTime `json:"last_seen"`
	Agent       string   `json:"agent"`
	ReadyPlanes []string `json:"ready_planes"`
	DHTPeerID   string   `json:"dht_peer_id"`
	DHTAddrs    []string `json:"dht_addrs"`
	Seq         uint64   `json:"seq"`
}

// flexTime decodes a time given as an RFC 3339 string or as Unix seconds;
// null, "" and 0 are the zero time (never seen).
type flexTime struct{ time.Time }

func (t *flexTime) UnmarshalJSON(b []byte) error {
	switch s := string(b); {
	case s == "null" || s == `""`:
		t.Time = time.Time{}
		return nil
	case len(s) > 0 && s[0] == '"':
		return t.Time.UnmarshalJSON(b)
	default:
		secs, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("time %s: neither an RFC 3339 string nor Unix seconds", s)
		}
		t.Time = time.Time{}
		if secs != 0 {
			t.Time = time.UnixMilli(int64(secs * 1000)).UTC()
		}
		return nil
	}
}

// errBadAnswer marks a plane that answered, but not with what it should.
var errBadAnswer = errors.New("bad answer")

// planeAPI asks the overlay and dht children.
type planeAPI struct {
	timeout   time.Duration
	transport *http.Transport
	client    *http.Client
}

func newPlaneAPI(timeout time.Duration) *planeAPI {
	tr, client := localClient(timeout)
	return &planeAPI{timeout: timeout, transport: tr, client: client}
}

// close drops idle connections.
func (p *planeAPI) close() { p.transport.CloseIdleConnections() }

// get fetches path from the child listening on listen and decodes its JSON
// answer into out. Anything but a 200 with a JSON body of at most
// planeMaxBytes is an error wrapping errBadAnswer.
func (p *planeAPI) get(ctx context.Context, listen, path string, out any) error {
	addr, err := scrapeAddr(listen)
	if err != nil {
		return err
	}
	url := "http://" + addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.ContentLength > planeMaxBytes {
		return fmt.Errorf("GET %s: %w: %d bytes, more than %d", url, errBadAnswer, resp.ContentLength, planeMaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, planeMaxBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: read: %w", url, err)
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %w: status %s", url, errBadAnswer, resp.Status)
	case len(body) > planeMaxBytes:
		return fmt.Errorf("GET %s: %w: more than %d bytes", url, errBadAnswer, planeMaxBytes)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: %w: %w", url, errBadAnswer, err)
	}
	return nil
}

// planeTarget returns the listen address of plane to ask, or, when there
// is nothing to ask, the plane's state (PlaneDisabled, PlaneDown).
func planeTarget(view map[string]supervisor.Status, plane string) (listen, state string) {
	st, ok := view[plane]
	if !ok {
		return "", PlaneDisabled
	}
	switch st.State {
	case supervisor.StateRunning, supervisor.StateStarting, supervisor.StateUnhealthy:
	default:
		return "", PlaneDown
	}
	if st.Listen == "" {
		return "", PlaneUnreachable
	}
	return st.Listen, ""
}

// nodeStatus asks the overlay and the dht, in parallel, for the node's
// part of GET /api/v1/status.
func (s *Server) nodeStatus(ctx context.Context, view map[string]supervisor.Status) NodeStatus {
	ns := NodeStatus{ID: s.opts.NodeID, Addrs: []string{}}
	oListen, oState := planeTarget(view, "overlay")
	dListen, dState := planeTarget(view, "dht")
	ctx, cancel := context.WithTimeout(ctx, s.planes.timeout)
	defer cancel()
	var (
		oi         overlayInfo
		di         dhtInfo
		oErr, dErr error
		wg         sync.WaitGroup
	)
	if oState == "" {
		wg.Go(func() { oErr = s.planes.get(ctx, oListen, "/overlay/info", &oi) })
	}
	if dState == "" {
		wg.Go(func() { dErr = s.planes.get(ctx, dListen, "/dht/info", &di) })
	}
	wg.Wait()
	ns.Overlay = s.planeState(oState, "overlay", oErr)
	ns.DHT = s.planeState(dState, "dht", dErr)
	if ns.Overlay == PlaneOK {
		if ns.ID == "" {
			ns.ID = oi.NodeID
		}
		if oi.Addrs != nil {
			ns.Addrs = oi.Addrs
		}
		ns.Peers, ns.Connected = oi.Peers, oi.Connected
	}
	if ns.DHT == PlaneOK {
		ns.DHTRoutingTable = di.RoutingTable
	}
	return ns
}

// planeState is the state of a plane that was asked (state "") or not.
func (s *Server) planeState(state, plane string, err error) string {
	switch {
	case state != "":
		return state
	case err != nil:
		s.log.Debug("plane did not answer", "service", plane, "error", err)
		return PlaneUnreachable
	default:
		return PlaneOK
	}
}

// handlePeers serves GET /api/v1/peers: the overlay's peer table, in the
// admin plane's own wire shape, sorted by node id. 503 when the overlay is
// disabled, down or does not answer; 502 when it answers nonsense.
func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	_, view := servicesView(s.config(), s.snapshot())
	listen, state := planeTarget(view, "overlay")
	switch state {
	case PlaneDisabled:
		httpx.Error(w, http.StatusServiceUnavailable, "", "the overlay plane is disabled on this node")
		return
	case PlaneDown:
		httpx.Error(w, http.StatusServiceUnavailable, "", "the overlay plane is not running")
		return
	case PlaneUnreachable:
		httpx.Error(w, http.StatusServiceUnavailable, "", "the overlay plane has no listen address")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.planes.timeout)
	defer cancel()
	var in overlayPeers
	if err := s.planes.get(ctx, listen, "/overlay/peers", &in); err != nil {
		if errors.Is(err, errBadAnswer) {
			httpx.Errorf(w, http.StatusBadGateway, "", "overlay peer table: %v", err)
			return
		}
		httpx.Errorf(w, http.StatusServiceUnavailable, "", "the overlay plane did not answer: %v", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, peersOf(in))
}

// peersOf converts the overlay's peer table to the wire; lists are never nil.
func peersOf(in overlayPeers) PeersResponse {
	out := PeersResponse{Peers: make([]Peer, 0, len(in.Peers))}
	for _, p := range in.Peers {
		out.Peers = append(out.Peers, Peer{
			NodeID: p.NodeID, Addrs: nonNil(p.Addrs), Connected: p.Connected, RTTMs: p.RTTMs,
			LastSeen: p.LastSeen.Time, Agent: p.Agent, ReadyPlanes: nonNil(p.ReadyPlanes),
			DHTPeerID: p.DHTPeerID, DHTAddrs: nonNil(p.DHTAddrs), Seq: p.Seq,
		})
	}
	sort.Slice(out.Peers, func(i, j int) bool { return out.Peers[i].NodeID < out.Peers[j].NodeID })
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
