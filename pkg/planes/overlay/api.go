package overlay

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/planes/overlay/oap"
)

const (
	maxConnectBody = 4 << 10
	maxFromPeers   = 16
	// HeaderSource names where a blob's bytes came from.
	HeaderSource = "X-Macronode-Source"
)

func (s *Server) routes() *httpx.Mux {
	mux := httpx.NewMux()
	mux.HandleFunc("GET /overlay/info", s.handleInfo)
	mux.HandleFunc("GET /overlay/peers", s.handlePeers)
	mux.HandleFunc("GET /overlay/record", s.handleRecord)
	mux.HandleFunc("POST /overlay/connect", s.handleConnect)
	mux.HandleFunc("GET /overlay/blobs/{addr}", s.handleBlob) // GET and HEAD
	return mux
}

// Info is the body of GET /overlay/info.
type Info struct {
	NodeID    string   `json:"node_id"`
	Addrs     []string `json:"addrs"`
	Peers     int      `json:"peers"`
	Connected int      `json:"connected"`
	Version   string   `json:"version"`
}

func (s *Server) handleInfo(w http.ResponseWriter, _ *http.Request) {
	known, connected := s.peers.counts(s.host)
	id := s.host.ID().String()
	addrs := []string{}
	for _, a := range s.advertised() {
		addrs = append(addrs, a+"/p2p/"+id)
	}
	httpx.JSON(w, http.StatusOK, Info{NodeID: id, Addrs: addrs, Peers: known, Connected: connected, Version: s.cfg.Version})
}

func (s *Server) handlePeers(w http.ResponseWriter, _ *http.Request) {
	httpx.JSON(w, http.StatusOK, map[string][]PeerInfo{"peers": s.peers.view(s.host)})
}

func (s *Server) handleRecord(w http.ResponseWriter, _ *http.Request) {
	raw := s.signedRecord()
	if raw == nil {
		httpx.Error(w, http.StatusServiceUnavailable, "no_record", "the node record is not signed yet")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	_, _ = w.Write(raw)
}

// handleConnect dials {"addr": "<multiaddr>/p2p/<id>"} now and keeps the
// peer as a dial target, reconnected with backoff like a bootstrap peer.
func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Addr string `json:"addr"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxConnectBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		if httpx.IsTooLarge(err) {
			httpx.Errorf(w, http.StatusRequestEntityTooLarge, "", "body over %d bytes", maxConnectBody)
			return
		}
		httpx.Errorf(w, http.StatusBadRequest, "", "want {\"addr\": \"<multiaddr>/p2p/<node id>\"}: %v", err)
		return
	}
	info, err := peer.AddrInfoFromString(body.Addr)
	if err != nil {
		httpx.Errorf(w, http.StatusBadRequest, "bad_addr", "addr %q: want a multiaddr ending in /p2p/<node id>: %v", body.Addr, err)
		return
	}
	if info.ID == s.host.ID() {
		httpx.Error(w, http.StatusBadRequest, "bad_addr", "addr names this node")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.FetchTimeout)
	defer cancel()
	if err := s.host.Connect(ctx, *info); err != nil {
		s.dialer.add(*info, true) // keep trying in the background
		httpx.Errorf(w, http.StatusBadGateway, "connect_failed", "connect to %s: %v (will keep retrying)", info.ID, err)
		return
	}
	s.dialer.add(*info, true)
	s.peerUp(info.ID)
	httpx.JSON(w, http.StatusOK, map[string]any{"node_id": info.ID.String(), "connected": true})
}

// handleBlob serves GET and HEAD /overlay/blobs/{addr}?from=<id>[,<id>...]:
// the peers are tried in order. GET streams the first blob a peer starts to
// send; HEAD answers with the size from STAT.
func (s *Server) handleBlob(w http.ResponseWriter, r *http.Request) {
	addr := r.PathValue("addr")
	if !oap.ValidAddress(addr) {
		httpx.Errorf(w, http.StatusBadRequest, "bad_address", "address %q: want b3:<64 lowercase hex>", addr)
		return
	}
	from, err := parseFrom(r.URL.Query().Get("from"))
	if err != nil {
		httpx.Error(w, http.StatusBadRequest, "bad_from", err.Error())
		return
	}
	kind := "blob"
	if r.Method == http.MethodHead {
		kind = "stat"
	}
	var errs []error
	notFound := 0
	for _, id := range from {
		done, err := s.fetchFrom(w, r, id, addr)
		if done {
			return
		}
		if errors.Is(err, errNotFound) {
			notFound++
			s.metrics.fetches.WithLabelValues(kind, "not_found").Inc()
			continue
		}
		s.metrics.fetches.WithLabelValues(kind, "failed").Inc()
		s.log.Debug("fetch from peer failed", "peer", id.String(), "address", addr, "error", err)
		errs = append(errs, err)
	}
	if notFound == len(from) {
		httpx.Errorf(w, http.StatusNotFound, "not_found", "no peer of %d has %s", len(from), addr)
		return
	}
	httpx.Errorf(w, http.StatusBadGateway, "peers_failed", "%s: %d peers had no such blob; the others failed: %v",
		addr, notFound, errors.Join(errs...))
}

// fetchFrom tries one peer. done reports that a response was written (a
// complete one; a transfer that broke after the headers aborts the
// response with http.ErrAbortHandler, so the client sees a cut connection,
// never a short body that looks whole).
func (s *Server) fetchFrom(w http.ResponseWriter, r *http.Request, id peer.ID, addr string) (done bool, err error) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.FetchTimeout)
	defer cancel()
	ss, err := s.dialSession(ctx, id)
	if err != nil {
		return false, err
	}
	_ = ss.st.SetDeadline(time.Now().Add(s.cfg.FetchTimeout))
	kind, clean := "stat", false
	defer func() { ss.close(clean, s.metrics) }()

	if r.Method == http.MethodHead {
		size, err := ss.stat(addr)
		if err != nil {
			return false, err
		}
		clean = true
		w.Header().Set("Content-Length", strconv.FormatUint(size, 10))
		w.Header().Set(HeaderSource, "peer "+id.String())
		w.WriteHeader(http.StatusOK)
		s.metrics.fetches.WithLabelValues(kind, "ok").Inc()
		return true, nil
	}

	kind = "blob"
	size, err := ss.getBlob(addr, 0)
	if err != nil {
		return false, err
	}
	_ = ss.st.SetDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatUint(size, 10))
	h.Set(HeaderSource, "peer "+id.String())
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // the headers go out now, not after the first buffer fills
	err = ss.copyBlob(size, s.cfg.IOIdleTimeout, func(p []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.IOIdleTimeout))
		_, err := w.Write(p)
		return err
	})
	if err != nil {
		s.metrics.fetches.WithLabelValues(kind, "aborted").Inc()
		s.log.Warn("blob transfer broke after the headers; aborting the response",
			"peer", id.String(), "address", addr, "error", err)
		panic(http.ErrAbortHandler)
	}
	clean = true
	s.metrics.fetches.WithLabelValues(kind, "ok").Inc()
	return true, nil
}

// parseFrom parses the from parameter: 1..16 comma-separated node ids.
func parseFrom(v string) ([]peer.ID, error) {
	if strings.TrimSpace(v) == "" {
		return nil, errors.New("from: name at least one node id (?from=<node id>[,<node id>...])")
	}
	parts := strings.Split(v, ",")
	if len(parts) > maxFromPeers {
		return nil, errors.New("from: at most " + strconv.Itoa(maxFromPeers) + " node ids")
	}
	out := make([]peer.ID, 0, len(parts))
	for _, p := range parts {
		id, err := peer.Decode(strings.TrimSpace(p))
		if err != nil {
			return nil, errors.New("from: " + strconv.Quote(p) + " is not a node id")
		}
		out = append(out, id)
	}
	return out, nil
}
