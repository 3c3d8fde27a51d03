package overlay

import (
	"context"
	"errors"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/macronode/macronode/pkg/identity"
)

// Topic is the gossipsub topic of signed node records.
const Topic = "/macronode/nodes/1"

// gossip is the overlay's gossipsub: one topic, whose messages are signed
// by their publisher (gossipsub's strict signing) and carry a signed node
// record, which is the authority: records are relayed, so the publisher of
// a message need not be the node its record names.
type gossip struct {
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	evts  *pubsub.TopicEventHandler
}

func (s *Server) startGossip(ctx context.Context) error {
	ps, err := pubsub.NewGossipSub(ctx, s.host,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithPeerExchange(false),
		pubsub.WithMaxMessageSize(identity.MaxRecordBytes+4<<10),
	)
	if err != nil {
		return err
	}
	if err := ps.RegisterTopicValidator(Topic, s.validateRecord); err != nil {
		return err
	}
	topic, err := ps.Join(Topic)
	if err != nil {
		return err
	}
	sub, err := topic.Subscribe()
	if err != nil {
		return errors.Join(err, topic.Close())
	}
	evts, err := topic.EventHandler()
	if err != nil {
		sub.Cancel()
		return errors.Join(err, topic.Close())
	}
	s.gossip = gossip{ps: ps, topic: topic, sub: sub, evts: evts}
	s.goFunc(func() { s.drainGossip(ctx) })
	s.goFunc(func() { s.watchTopicPeers(ctx) })
	return nil
}

// closeGossip releases the subscription and the topic; the PubSub itself
// stops with the context it was started with.
func (s *Server) closeGossip() error {
	if s.gossip.topic == nil {
		return nil
	}
	s.gossip.evts.Cancel()
	s.gossip.sub.Cancel()
	return s.gossip.topic.Close()
}

// drainGossip consumes the subscription: the validator already did the
// work, but a topic has to be subscribed for its messages to arrive.
func (s *Server) drainGossip(ctx context.Context) {
	for {
		if _, err := s.gossip.sub.Next(ctx); err != nil {
			return
		}
	}
}

// watchTopicPeers republishes the own record when a peer joins the topic, so
// that a new peer learns this node at once rather than at the next minute.
func (s *Server) watchTopicPeers(ctx context.Context) {
	for {
		ev, err := s.gossip.evts.NextPeerEvent(ctx)
		if err != nil {
			return
		}
		if ev.Type == pubsub.PeerJoin {
			s.requestPublish()
		}
	}
}

// validateRecord is the topic validator: it accepts a record that verifies
// and is not older than the one held for its node, and updates the peer
// table; it rejects (and counts by reason) everything else.
func (s *Server) validateRecord(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	rec, err := identity.Verify(msg.Data)
	if err != nil {
		s.metrics.gossip.WithLabelValues("rejected", verifyReason(err)).Inc()
		s.log.Debug("gossip record rejected", "error", err)
		return pubsub.ValidationReject
	}
	id, err := peer.Decode(rec.NodeID) // Verify accepted the id: this converts it
	if err != nil {
		s.metrics.gossip.WithLabelValues("rejected", "invalid").Inc()
		return pubsub.ValidationReject
	}
	if id == s.host.ID() {
		return pubsub.ValidationAccept // our own publish (or its echo)
	}
	switch s.peers.offer(id, rec, time.Now()) {
	case recordOld:
		s.metrics.gossip.WithLabelValues("rejected", "old_seq").Inc()
		return pubsub.ValidationIgnore
	case recordRefresh:
		s.metrics.gossip.WithLabelValues("accepted", "refresh").Inc()
		return pubsub.ValidationAccept
	}
	s.metrics.gossip.WithLabelValues("accepted", "new").Inc()
	addrs := parseAddrs(rec.OverlayAddrs)
	s.host.Peerstore().AddAddrs(id, addrs, peerstore.RecentlyConnectedAddrTTL)
	if len(addrs) > 0 {
		s.dialer.add(peer.AddrInfo{ID: id, Addrs: addrs}, false)
	}
	return pubsub.ValidationAccept
}

// verifyReason maps an identity.Verify error to a metric label.
func verifyReason(err error) string {
	switch {
	case errors.Is(err, identity.ErrBadSignature):
		return "bad_signature"
	case errors.Is(err, identity.ErrWrongSigner):
		return "wrong_signer"
	case errors.Is(err, identity.ErrTooLarge):
		return "too_large"
	case errors.Is(err, identity.ErrInvalid):
		return "invalid"
	default:
		return "malformed"
	}
}

// parseAddrs parses multiaddrs, skipping any that do not parse (a verified
// record has none).
func parseAddrs(ss []string) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(ss))
	for _, s := range ss {
		if a, err := ma.NewMultiaddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}
