package overlay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/macronode/macronode/pkg/planes/overlay/oap"
)

// handshakeTimeout bounds the wait for a HELLO on a new stream.
const handshakeTimeout = 10 * time.Second

// conn is one OAP stream with frame counting.
type conn struct {
	st network.Stream
	r  *oap.Reader
	w  *oap.Writer
	m  *metrics
}

func newConn(st network.Stream, maxIn, maxOut uint32, m *metrics) *conn {
	return &conn{st: st, r: oap.NewReader(st, maxIn), w: oap.NewWriter(st, maxOut), m: m}
}

func (c *conn) read() (oap.Frame, error) {
	f, err := c.r.Read()
	if err == nil {
		c.m.frameIn(oap.HeaderLen + len(f.Payload))
	}
	return f, err
}

func (c *conn) write(t oap.Type, p []byte) error {
	if err := c.w.Write(t, p); err != nil {
		return err
	}
	c.m.frameOut(oap.HeaderLen + len(p))
	return nil
}

// frameReason maps a frame reader error to a rejected_frames reason.
func frameReason(err error) string {
	switch {
	case errors.Is(err, oap.ErrTooLarge):
		return "oversized"
	case errors.Is(err, oap.ErrUnknownType):
		return "unknown_type"
	case errors.Is(err, oap.ErrBadFlags):
		return "bad_flags"
	case errors.Is(err, oap.ErrTruncated):
		return "truncated"
	default:
		return "malformed"
	}
}

// peerLimits counts, per peer, inbound OAP streams and the blob fetches
// being served.
type peerLimits struct {
	mu      sync.Mutex
	streams map[peer.ID]int
	fetches map[peer.ID]int
}

func newPeerLimits() *peerLimits {
	return &peerLimits{streams: map[peer.ID]int{}, fetches: map[peer.ID]int{}}
}

func (l *peerLimits) acquire(m map[peer.ID]int, id peer.ID, max int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m[id] >= max {
		return false
	}
	m[id]++
	return true
}

func (l *peerLimits) release(m map[peer.ID]int, id peer.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m[id]--; m[id] <= 0 {
		delete(m, id)
	}
}

// handleStream serves one inbound OAP stream: the handshake, then requests
// until the client closes its side. A protocol error resets this stream
// only.
func (s *Server) handleStream(st network.Stream) {
	remote := st.Conn().RemotePeer()
	c := newConn(st, uint32(s.cfg.MaxFrameBytes), oap.MinMaxFrame, s.metrics)
	if !s.limits.acquire(s.limits.streams, remote, s.cfg.MaxStreamsPerPeer) {
		_ = c.write(oap.TypeReject, oap.EncodeReason("busy: too many streams from this peer"))
		s.metrics.sessionsTotal.WithLabelValues("server", "rejected").Inc()
		_ = st.Close()
		return
	}
	defer s.limits.release(s.limits.streams, remote)

	peerMax, ok := s.accept(c, remote)
	if !ok {
		return
	}
	s.metrics.sessions.Inc()
	defer s.metrics.sessions.Dec()
	s.peers.seen(remote, time.Now())
	c.w.SetMax(peerMax)

	for {
		_ = st.SetReadDeadline(time.Now().Add(s.cfg.IOIdleTimeout))
		f, err := c.read()
		if errors.Is(err, io.EOF) {
			_ = st.Close()
			return
		}
		if err != nil {
			s.refuse(st, frameReason(err), err)
			return
		}
		switch f.Type {
		case oap.TypeGetBlob:
			req, derr := oap.DecodeGetBlob(f.Payload)
			if derr != nil {
				s.refuse(st, "malformed", derr)
				return
			}
			if err := s.serveBlob(c, remote, req, peerMax); err != nil {
				s.log.Debug("OAP blob transfer aborted", "peer", remote.String(), "address", req.Address, "error", err)
				_ = st.Reset()
				return
			}
		case oap.TypeStat:
			addr, derr := oap.DecodeStat(f.Payload)
			if derr != nil {
				s.refuse(st, "malformed", derr)
				return
			}
			if err := s.serveStat(c, addr); err != nil {
				_ = st.Reset()
				return
			}
		default:
			s.refuse(st, "unexpected", fmt.Errorf("client sent %s", f.Type))
			return
		}
	}
}

// accept runs the server side of the handshake and returns the client's
// frame limit. The HELLO's node id must be the peer the secure channel
// authenticated.
func (s *Server) accept(c *conn, remote peer.ID) (uint32, bool) {
	_ = c.st.SetDeadline(time.Now().Add(handshakeTimeout))
	defer func() { _ = c.st.SetDeadline(time.Time{}) }()
	f, err := c.read()
	if err != nil {
		s.metrics.sessionsTotal.WithLabelValues("server", "failed").Inc()
		s.refuse(c.st, frameReason(err), err)
		return 0, false
	}
	reject := func(reason string) (uint32, bool) {
		s.metrics.sessionsTotal.WithLabelValues("server", "rejected").Inc()
		s.log.Debug("OAP handshake rejected", "peer", remote.String(), "reason", reason)
		_ = c.write(oap.TypeReject, oap.EncodeReason(reason))
		_ = c.st.Close()
		return 0, false
	}
	if f.Type != oap.TypeHello {
		s.metrics.rejectedFrames.WithLabelValues("unexpected").Inc()
		return reject("expected HELLO, got " + f.Type.String())
	}
	h, err := oap.DecodeHello(f.Payload)
	switch {
	case err != nil:
		s.metrics.rejectedFrames.WithLabelValues("malformed").Inc()
		return reject("malformed HELLO")
	case h.Version != oap.Version:
		return reject("unsupported version " + strconv.Itoa(int(h.Version)) + ", want " + strconv.Itoa(oap.Version))
	case h.NodeID != remote.String():
		return reject("node_id is not the authenticated peer")
	}
	if err := c.write(oap.TypeAccept, oap.EncodeU32(uint32(s.cfg.MaxFrameBytes))); err != nil {
		s.metrics.sessionsTotal.WithLabelValues("server", "failed").Inc()
		_ = c.st.Reset()
		return 0, false
	}
	s.metrics.sessionsTotal.WithLabelValues("server", "accepted").Inc()
	return h.MaxFrame, true
}

// refuse counts a bad frame and resets the stream.
func (s *Server) refuse(st network.Stream, reason string, err error) {
	s.metrics.rejectedFrames.WithLabelValues(reason).Inc()
	s.log.Debug("OAP stream closed on a bad frame", "peer", st.Conn().RemotePeer().String(), "reason", reason, "error", err)
	_ = st.Reset()
}

// storageGet sends method (GET or HEAD) {storage}/o/{addr}, asking for the
// bytes from offset on.
func (s *Server) storageGet(ctx context.Context, method, addr string, offset uint64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(s.cfg.StorageURL, "/")+"/o/"+addr, nil)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatUint(offset, 10)+"-")
	}
	resp, err := s.httpc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("storage %s /o/%s: %w", method, addr, err)
	}
	return resp, nil
}

// storageAnswer turns a storage response into "found, size" or the frame to
// answer instead (NOT_FOUND or ERROR).
func storageAnswer(resp *http.Response) (size int64, failType oap.Type, reason string) {
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return 0, oap.TypeNotFound, ""
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent:
		return 0, oap.TypeError, "storage answered " + strconv.Itoa(resp.StatusCode)
	case resp.ContentLength < 0:
		return 0, oap.TypeError, "storage sent no Content-Length"
	}
	return resp.ContentLength, 0, ""
}

// serveStat answers STAT with SIZE, NOT_FOUND or ERROR.
func (s *Server) serveStat(c *conn, addr string) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.FetchTimeout)
	defer cancel()
	resp, err := s.storageGet(ctx, http.MethodHead, addr, 0)
	if err != nil {
		return c.write(oap.TypeError, oap.EncodeReason("storage unreachable"))
	}
	_ = resp.Body.Close()
	size, fail, reason := storageAnswer(resp)
	if fail != 0 {
		return c.write(fail, oap.EncodeReason(reason))
	}
	return c.write(oap.TypeSize, oap.EncodeU64(uint64(size)))
}

// serveBlob answers GET_BLOB: BLOB{size}, DATA chunks carrying exactly size
// bytes read from storage (which verifies BLAKE3 as it reads), END. When
// storage fails mid-way, the error is returned and the caller resets the
// stream, so the client sees a broken transfer, never a clean END.
func (s *Server) serveBlob(c *conn, remote peer.ID, req oap.GetBlob, peerMax uint32) error {
	if !s.limits.acquire(s.limits.fetches, remote, s.cfg.MaxFetchesPerPeer) {
		return c.write(oap.TypeError, oap.EncodeReason("busy: too many fetches from this peer"))
	}
	defer s.limits.release(s.limits.fetches, remote)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	resp, err := s.storageGet(ctx, http.MethodGet, req.Address, req.Offset)
	if err != nil {
		return c.write(oap.TypeError, oap.EncodeReason("storage unreachable"))
	}
	defer resp.Body.Close()
	size, fail, reason := storageAnswer(resp)
	if fail != 0 {
		return c.write(fail, oap.EncodeReason(reason))
	}
	if err := c.write(oap.TypeBlob, oap.EncodeU64(uint64(size))); err != nil {
		return err
	}
	chunk := int64(min(uint32(s.cfg.ChunkBytes), peerMax))
	buf := make([]byte, chunk)
	for sent := int64(0); sent < size; {
		n := min(chunk, size-sent)
		if _, err := io.ReadFull(resp.Body, buf[:n]); err != nil {
			return fmt.Errorf("read storage at %d of %d: %w", sent, size, err)
		}
		_ = c.st.SetWriteDeadline(time.Now().Add(s.cfg.IOIdleTimeout))
		if err := c.write(oap.TypeData, buf[:n]); err != nil {
			return err
		}
		sent += n
	}
	return c.write(oap.TypeEnd, nil)
}
