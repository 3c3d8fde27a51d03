package overlay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/macronode/macronode/pkg/planes/overlay/oap"
)

// errNotFound is returned when a peer answered NOT_FOUND.
var errNotFound = errors.New("peer has no such blob")

// session is the client side of one OAP stream.
type session struct {
	*conn
	peer peer.ID
}

// dialSession opens an OAP stream to id (dialing it from the peerstore's
// addresses if needed) and runs the handshake. ctx bounds both; after it
// returns, the stream has no deadline.
func (s *Server) dialSession(ctx context.Context, id peer.ID) (*session, error) {
	st, err := s.host.NewStream(ctx, id, oap.ProtocolID)
	if err != nil {
		s.metrics.sessionsTotal.WithLabelValues("client", "failed").Inc()
		return nil, fmt.Errorf("open OAP stream to %s: %w", id, err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(d)
	}
	c := newConn(st, uint32(s.cfg.MaxFrameBytes), oap.MinMaxFrame, s.metrics)
	hello := oap.Hello{Version: oap.Version, MaxFrame: uint32(s.cfg.MaxFrameBytes), NodeID: s.host.ID().String()}
	fail := func(result string, err error) (*session, error) {
		s.metrics.sessionsTotal.WithLabelValues("client", result).Inc()
		_ = st.Reset()
		return nil, fmt.Errorf("OAP handshake with %s: %w", id, err)
	}
	if err := c.write(oap.TypeHello, hello.Encode()); err != nil {
		return fail("failed", err)
	}
	f, err := c.read()
	if err != nil {
		return fail("failed", err)
	}
	switch f.Type {
	case oap.TypeAccept:
		max, err := oap.DecodeU32(f.Payload)
		if err != nil {
			return fail("failed", err)
		}
		c.w.SetMax(max)
	case oap.TypeReject:
		reason, _ := oap.DecodeReason(f.Payload)
		return fail("rejected", fmt.Errorf("rejected: %s", reason))
	default:
		return fail("failed", fmt.Errorf("answered HELLO with %s", f.Type))
	}
	_ = st.SetDeadline(time.Time{})
	s.metrics.sessionsTotal.WithLabelValues("client", "accepted").Inc()
	s.metrics.sessions.Inc()
	return &session{conn: c, peer: id}, nil
}

// close ends the session: cleanly after a complete exchange, else by reset.
func (ss *session) close(clean bool, m *metrics) {
	m.sessions.Dec()
	if clean {
		_ = ss.st.Close()
		return
	}
	_ = ss.st.Reset()
}

// answer reads the reply to a request: the expected type's payload, or
// errNotFound, or an error for ERROR or anything else.
func (ss *session) answer(want oap.Type) ([]byte, error) {
	f, err := ss.read()
	if err != nil {
		return nil, err
	}
	switch f.Type {
	case want:
		return f.Payload, nil
	case oap.TypeNotFound:
		return nil, errNotFound
	case oap.TypeError:
		reason, _ := oap.DecodeReason(f.Payload)
		return nil, fmt.Errorf("peer %s: %s", ss.peer, reason)
	default:
		return nil, fmt.Errorf("peer %s answered %s, want %s", ss.peer, f.Type, want)
	}
}

// stat asks for a blob's size.
func (ss *session) stat(addr string) (uint64, error) {
	if err := ss.write(oap.TypeStat, []byte(addr)); err != nil {
		return 0, err
	}
	p, err := ss.answer(oap.TypeSize)
	if err != nil {
		return 0, err
	}
	return oap.DecodeU64(p)
}

// getBlob asks for a blob and returns its announced size; the DATA frames
// follow (see copyBlob).
func (ss *session) getBlob(addr string, offset uint64) (uint64, error) {
	if err := ss.write(oap.TypeGetBlob, oap.GetBlob{Offset: offset, Address: addr}.Encode()); err != nil {
		return 0, err
	}
	p, err := ss.answer(oap.TypeBlob)
	if err != nil {
		return 0, err
	}
	return oap.DecodeU64(p)
}

// copyBlob passes the DATA frames of a blob of size bytes to write and
// returns nil only when END came after exactly size bytes. It never passes
// on a byte beyond size. Each frame must arrive within idle.
func (ss *session) copyBlob(size uint64, idle time.Duration, write func([]byte) error) error {
	var got uint64
	for {
		_ = ss.st.SetReadDeadline(time.Now().Add(idle))
		f, err := ss.read()
		if err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", got, size, err)
		}
		switch f.Type {
		case oap.TypeData:
			if uint64(len(f.Payload)) > size-got {
				return fmt.Errorf("peer %s sent more than the %d bytes it announced", ss.peer, size)
			}
			if err := write(f.Payload); err != nil {
				return err
			}
			got += uint64(len(f.Payload))
		case oap.TypeEnd:
			if got != size {
				return fmt.Errorf("peer %s ended after %d of %d bytes", ss.peer, got, size)
			}
			return nil
		default:
			return fmt.Errorf("peer %s sent %s during a transfer", ss.peer, f.Type)
		}
	}
}
