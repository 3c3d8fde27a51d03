package overlay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/macronode/macronode/pkg/identity"
)

const (
	dhtInfoTimeout  = 2 * time.Second
	maxDHTInfoBytes = 64 << 10
	maxRecordAddrs  = 32
)

// dhtInfo is what GET {dht-url}/dht/info says of the DHT host.
type dhtInfo struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
}

// recordLoop keeps the own node record current: it re-checks the host's
// addresses and the DHT plane every PollInterval and signs and publishes a
// new record (with a higher seq) when they change, republishes it every
// RepublishInterval, and when a peer joins the topic.
func (s *Server) recordLoop(ctx context.Context) {
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	republish := time.NewTicker(s.cfg.RepublishInterval)
	defer republish.Stop()
	s.publish(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			if s.refreshRecord(ctx, true) {
				s.publish(ctx)
			}
		case <-republish.C:
			s.publish(ctx)
		case <-s.publishReq:
			s.publish(ctx)
		}
	}
}

// requestPublish asks the record loop to publish soon; requests made while
// one is pending coalesce.
func (s *Server) requestPublish() {
	select {
	case s.publishReq <- struct{}{}:
	default:
	}
}

func (s *Server) publish(ctx context.Context) {
	raw := s.signedRecord()
	if raw == nil || s.gossip.topic == nil {
		return
	}
	if err := s.gossip.topic.Publish(ctx, raw); err != nil && ctx.Err() == nil {
		s.log.Warn("publish node record", "error", err)
	}
}

// signedRecord returns the current signed own record.
func (s *Server) signedRecord() []byte {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	return s.recRaw
}

// refreshRecord builds the own record from the current state and, when it
// differs from the last one, signs it with the next seq. It reports whether
// the record changed. With askDHT false the record names no DHT host (the
// first record, made before the DHT plane has started: under the parent
// the DHT starts after the overlay, and its socket, held by the parent,
// accepts a connect that nobody answers until then).
func (s *Server) refreshRecord(ctx context.Context, askDHT bool) bool {
	rec := identity.NodeRecord{
		NodeID:       s.host.ID().String(),
		OverlayAddrs: s.advertised(),
		Version:      s.cfg.Version,
		ReadyPlanes:  []string{"overlay"},
	}
	if askDHT {
		if info, err := s.pollDHT(ctx); err == nil {
			rec.DHTPeerID, rec.DHTAddrs = info.PeerID, info.Addrs
			rec.ReadyPlanes = append(rec.ReadyPlanes, "dht")
		} else if s.cfg.DHTURL != "" && ctx.Err() == nil {
			s.log.Debug("dht plane not answering; record names no dht", "error", err)
		}
	}

	s.recMu.Lock()
	defer s.recMu.Unlock()
	if s.recRaw != nil && sameRecord(s.rec, rec) {
		return false
	}
	// A clock-based seq stays above every seq of an earlier run of this
	// node, which peers and the DHT may still hold.
	rec.Seq = max(s.rec.Seq+1, uint64(time.Now().UnixNano()))
	raw, err := identity.Sign(s.key, rec)
	if err != nil {
		s.log.Error("sign node record", "error", err)
		return false
	}
	s.rec, s.recRaw = rec, raw
	return true
}

func sameRecord(a, b identity.NodeRecord) bool {
	return a.NodeID == b.NodeID && a.DHTPeerID == b.DHTPeerID && a.Version == b.Version &&
		slices.Equal(a.OverlayAddrs, b.OverlayAddrs) && slices.Equal(a.DHTAddrs, b.DHTAddrs) &&
		slices.Equal(a.ReadyPlanes, b.ReadyPlanes)
}

// advertised returns the host's advertised addresses (the --announce ones
// when set) without /p2p, sorted, at most maxRecordAddrs.
func (s *Server) advertised() []string {
	out := []string{}
	for _, a := range s.host.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			continue
		}
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out[:min(len(out), maxRecordAddrs)]
}

// pollDHT asks the local DHT plane for its peer id and addresses.
func (s *Server) pollDHT(ctx context.Context) (dhtInfo, error) {
	if s.cfg.DHTURL == "" {
		return dhtInfo{}, fmt.Errorf("no --dht-url")
	}
	ctx, cancel := context.WithTimeout(ctx, dhtInfoTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.cfg.DHTURL, "/")+"/dht/info", nil)
	if err != nil {
		return dhtInfo{}, err
	}
	resp, err := s.httpc.Do(req)
	if err != nil {
		return dhtInfo{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return dhtInfo{}, fmt.Errorf("GET /dht/info: status %d", resp.StatusCode)
	}
	var info dhtInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDHTInfoBytes)).Decode(&info); err != nil {
		return dhtInfo{}, fmt.Errorf("decode /dht/info: %w", err)
	}
	id, err := peer.Decode(info.PeerID)
	if err != nil {
		return dhtInfo{}, fmt.Errorf("/dht/info peer_id: %w", err)
	}
	info.PeerID = id.String()
	addrs := []string{}
	for _, s := range info.Addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		if bare, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Code() == ma.P_P2P }); len(bare) > 0 {
			addrs = append(addrs, bare.String())
		}
	}
	slices.Sort(addrs)
	info.Addrs = addrs[:min(len(addrs), maxRecordAddrs)]
	return info, nil
}
