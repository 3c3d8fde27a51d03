package dht

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"

	"github.com/macronode/macronode/pkg/identity"
)

// recordLoop fetches the node's own signed record from the overlay every
// BootstrapPoll and stores it under identity.RecordKey(self) when it changed, when
// the last store did not reach any peer, or every RecordRefresh so peers
// keep it past their record expiry.
func (s *Server) recordLoop(ctx context.Context) {
	if s.cfg.OverlayURL == "" {
		return
	}
	t := time.NewTicker(s.cfg.BootstrapPoll)
	defer t.Stop()
	var (
		last     []byte
		lastPut  time.Time
		lastGood bool // the last put reached at least one peer
	)
	for {
		b, err := s.getOverlay(ctx, "/overlay/record", maxRecordBody)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.log.Debug("node record not available from the overlay yet", "error", err)
			}
		case !bytes.Equal(b, last) || !lastGood || time.Since(lastPut) >= s.cfg.RecordRefresh:
			err := s.putRecord(ctx, b)
			last, lastPut, lastGood = b, time.Now(), err == nil
			if err != nil && ctx.Err() == nil {
				s.log.Debug("store node record", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// errNoPeers says a record was stored locally only: the routing table is
// empty, so no other node holds it yet.
var errNoPeers = errors.New("stored locally only: no dht peers yet")

// putRecord checks that b is a valid record for this DHT host and stores it.
func (s *Server) putRecord(ctx context.Context, b []byte) error {
	rec, err := verifyRecord(b)
	if err != nil {
		return fmt.Errorf("node record from the overlay: %w", err)
	}
	if rec.DHTPeerID != s.host.ID().String() {
		return fmt.Errorf("node record from the overlay names dht peer %q, this host is %s (the overlay has not read /dht/info yet)",
			rec.DHTPeerID, s.host.ID())
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.LookupTimeout)
	defer cancel()
	err = s.kad.PutValue(pctx, identity.RecordKey(s.host.ID()), b)
	if errors.Is(err, kb.ErrLookupFailure) {
		return errNoPeers
	}
	if err != nil {
		return fmt.Errorf("put node record: %w", err)
	}
	s.metrics.recordsPut.Inc()
	return nil
}
