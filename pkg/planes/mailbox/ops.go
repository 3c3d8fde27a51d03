package mailbox

import (
	"context"
	"errors"
	"sort"
	"time"
)

// delivery is one message handed to a receiver.
type delivery struct {
	ID         string `json:"id"`
	Body       []byte `json:"body"` // encoding/json writes it as standard base64
	Receipt    string `json:"receipt"`
	Deliveries uint32 `json:"deliveries"`
	EnqueuedAt string `json:"enqueued_at"`

	seq     uint64
	missing bool // acked by someone else before its body was read
}

// receiptResult is the outcome for one receipt of an ack, nack or extend.
type receiptResult struct {
	Receipt string `json:"receipt"`
	Status  string `json:"status"`
}

func (s *Server) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

func (s *Server) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// send stores body in box name and returns its id once durable. created is
// false when an Idempotency-Key replay returned an earlier message's id.
func (s *Server) send(ctx context.Context, name, key string, body []byte) (id string, created bool, err error) {
	ikey := ""
	if key != "" {
		ikey = name + "\x00" + key
	}
	for {
		now := time.Now()
		s.mu.Lock()
		if e := s.ix.idem[ikey]; ikey != "" && e != nil && now.Sub(e.created) < s.cfg.IdempotencyWindow {
			s.mu.Unlock()
			select {
			case <-e.done:
			case <-ctx.Done():
				return "", false, ctx.Err()
			case <-s.closing:
				return "", false, errClosing
			}
			if e.failed {
				continue // the first send failed: this one becomes the send
			}
			return formatID(e.seq), false, nil
		}
		if s.isClosing() {
			s.mu.Unlock()
			return "", false, errClosing
		}
		b, err := s.ix.ensureBox(name)
		if err != nil {
			s.mu.Unlock()
			return "", false, err
		}
		m, err := s.ix.addPending(b, body, now)
		if err != nil {
			s.mu.Unlock()
			return "", false, err
		}
		refs := []ref{{seq: m.seq}}
		var e *idemEntry
		if ikey != "" {
			e = &idemEntry{seq: m.seq, created: now, done: make(chan struct{})}
			s.ix.idem[ikey] = e
			refs = append(refs, ref{idem: ikey})
		}
		s.mu.Unlock()
		return s.finishSend(m, e, ikey, s.persist(refs))
	}
}

// finishSend publishes a committed send (or forgets a failed one) and
// releases idempotent replays waiting on it.
func (s *Server) finishSend(m *message, e *idemEntry, ikey string, err error) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e != nil {
		defer close(e.done)
	}
	if err != nil {
		s.ix.dropPending(m)
		if e != nil {
			e.failed = true
			if s.ix.idem[ikey] == e {
				delete(s.ix.idem, ikey)
			}
		}
		return "", false, err
	}
	if s.st != nil {
		m.body = nil // on disk now; read back at receive
	}
	s.ix.makeReady(m)
	m.box.c.sends++
	return formatID(m.seq), true, nil
}

// receive leases up to p.Max messages of box name, long-polling up to
// p.Wait for the first one. A lease is not durable: its delivery count is
// written lazily by the next commit, unless a message's previous delivery
// is still unwritten; then this receive waits for a commit, so a crash
// forgets at most one delivery per message.
func (s *Server) receive(ctx context.Context, name string, p receiveParams) ([]delivery, error) {
	var deadline time.Time
	var timeout <-chan time.Time
	if p.Wait > 0 {
		deadline = time.Now().Add(p.Wait)
		t := time.NewTimer(p.Wait)
		defer t.Stop()
		timeout = t.C
	}
	s.mu.Lock()
	b := s.ix.boxes[name]
	if b == nil && p.Wait > 0 {
		var err error
		if b, err = s.ix.ensureBox(name); err != nil {
			s.mu.Unlock()
			return nil, err
		}
	}
	for {
		// A client that went away gets nothing leased for it, even when
		// its wake-up and its cancellation arrived together.
		if err := ctx.Err(); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		now := time.Now()
		dirty := s.ix.expire(now)
		var got []*message
		sync := false
		if b != nil {
			var moved []uint64
			got, moved = s.ix.lease(b, p.Max, p.Visibility, now)
			dirty = append(dirty, moved...)
			for _, m := range got {
				if _, ok := s.lazy[m.seq]; ok {
					sync = true
				}
				if s.st != nil {
					s.lazy[m.seq] = struct{}{}
				}
			}
		}
		if len(got) > 0 || p.Wait == 0 || !now.Before(deadline) || s.isClosing() || s.isDraining() {
			out := make([]delivery, len(got))
			for i, m := range got {
				out[i] = delivery{ID: formatID(m.seq), Receipt: m.receipt, Deliveries: m.deliveries,
					EnqueuedAt: m.enqueuedAt.UTC().Format(time.RFC3339Nano), seq: m.seq, Body: m.body}
			}
			s.mu.Unlock()
			if len(dirty) > 0 || sync {
				if err := s.commitWithLazy(seqRefs(dirty)); err != nil {
					s.abandon(out, true)
					return nil, err
				}
			}
			return s.fillBodies(out)
		}
		ch := b.notify
		b.waiters++
		s.mu.Unlock()
		if err := s.persist(seqRefs(dirty)); err != nil {
			s.log.Error("persist dead-letter moves", "error", err)
		}
		var gone error
		select {
		case <-ch:
		case <-timeout:
		case <-ctx.Done():
			gone = ctx.Err()
		case <-s.closing:
		case <-s.draining:
		}
		s.mu.Lock()
		b.waiters--
		if gone != nil {
			s.mu.Unlock()
			return nil, gone
		}
	}
}

// fillBodies sets each delivery's body, read from disk unless in amnesia
// (a stored body is never changed, so the index's slice is used as is).
// Deliveries whose message vanished meanwhile are dropped. An empty body
// is a non-nil slice, so that it encodes as "" rather than null.
func (s *Server) fillBodies(out []delivery) ([]delivery, error) {
	if len(out) == 0 {
		return out, nil
	}
	if s.st == nil {
		for i := range out {
			if out[i].Body == nil {
				out[i].Body = []byte{}
			}
		}
		return out, nil
	}
	for i := range out {
		body, ok, err := s.st.readBody(out[i].seq)
		if err != nil {
			s.abandon(out, false)
			return nil, err
		}
		out[i].missing = !ok
		out[i].Body = body
	}
	kept := out[:0]
	for _, d := range out {
		if !d.missing {
			kept = append(kept, d)
		}
	}
	return kept, nil
}

// abandon ends the leases of deliveries that could not be handed out.
// uncommitted says the commit the receive needed failed: their delivery is
// then not counted either, so a message is not dead-lettered for a
// delivery nobody got. Dead-letter moves it causes
// are persisted best-effort (a restart redoes them anyway).
func (s *Server) abandon(out []delivery, uncommitted bool) {
	now := time.Now()
	var dirty []uint64
	s.mu.Lock()
	for _, d := range out {
		if m := s.ix.msgs[d.seq]; m != nil && m.state == stateLeased && m.receipt == d.Receipt {
			if uncommitted && m.deliveries > 0 {
				m.deliveries--
			}
			if s.ix.release(m, now) {
				dirty = append(dirty, m.seq)
			}
		}
	}
	s.mu.Unlock()
	if err := s.persist(seqRefs(dirty)); err != nil && !errors.Is(err, errClosing) {
		s.log.Error("persist dead-letter moves", "error", err)
	}
}

// settle acks, nacks (d = delay) or extends (d = visibility) the messages
// the receipts name, durably, and reports per receipt. When the commit
// fails nothing happened: every message is put back under its lease (unless
// something else changed it meanwhile), so a retry of the same call works
// and lease expiry still redelivers.
func (s *Server) settle(name string, receipts []string, kind receiptsKind, d time.Duration) (int, []receiptResult, error) {
	now := time.Now()
	results := make([]receiptResult, len(receipts))
	var refs []ref
	var undos []settleUndo
	done := 0
	s.mu.Lock()
	for i, r := range receipts {
		results[i].Receipt = r
		m, st := s.ix.resolve(name, r, now)
		if m == nil {
			results[i].Status = st
			continue
		}
		u := snapshot(m)
		switch kind {
		case kindAck:
			s.ix.remove(m)
			st = statusAcked
		case kindNack:
			if d == 0 {
				s.ix.release(m, now)
			} else {
				m.box.inFlight--
				m.receipt = ""
				s.ix.setTimed(m, stateDelayed, now.Add(d))
			}
			st = statusNacked
		case kindExtend:
			s.ix.setTimed(m, stateLeased, now.Add(d))
			st = statusExtended
		}
		results[i].Status = st
		done++
		if kind == kindExtend {
			continue // a lease is not durable: nothing to write
		}
		u.settled(kind == kindAck)
		undos = append(undos, u)
		refs = append(refs, ref{seq: m.seq})
	}
	s.mu.Unlock()
	if kind == kindExtend {
		return done, results, nil
	}
	if err := s.persist(refs); err != nil {
		s.mu.Lock()
		for i := len(undos) - 1; i >= 0; i-- { // newest first: a receipt may repeat
			s.ix.rollback(undos[i])
		}
		s.mu.Unlock()
		return 0, nil, err
	}
	if kind == kindAck { // counted once durable
		s.mu.Lock()
		for _, u := range undos {
			b := s.ix.boxes[u.box.name]
			if b == nil {
				b = u.box // forgotten meanwhile: its figures went with it
			}
			b.c.acks++
		}
		s.mu.Unlock()
	}
	return done, results, nil
}

// BoxInfo is the GET /mailboxes/{box} answer.
type BoxInfo struct {
	Box              string  `json:"box"`
	Depth            int     `json:"depth"`
	InFlight         int     `json:"in_flight"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	DLQDepth         int     `json:"dlq_depth"`
}

// BoxSummary is one entry of the GET /mailboxes answer.
type BoxSummary struct {
	Box      string `json:"box"`
	Depth    int    `json:"depth"`
	InFlight int    `json:"in_flight"`
}

func oldestAge(b *box, now time.Time) float64 {
	if m := b.all.peek(); m != nil {
		return max(now.Sub(m.enqueuedAt).Seconds(), 0)
	}
	return 0
}

// boxInfo describes box name; ok is false when the box is not known.
func (s *Server) boxInfo(name string) (BoxInfo, bool) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.ix.boxes[name]
	if b == nil {
		return BoxInfo{}, false
	}
	info := BoxInfo{Box: name, Depth: b.depth(), InFlight: b.inFlight, OldestAgeSeconds: oldestAge(b, now)}
	if d := s.ix.boxes[name+DLQSuffix]; d != nil && !isDLQ(name) {
		info.DLQDepth = d.total()
	}
	return info, true
}

// listBoxes summarises every known box, sorted by name.
func (s *Server) listBoxes() []BoxSummary {
	s.mu.Lock()
	out := make([]BoxSummary, 0, len(s.ix.boxes))
	for _, b := range s.ix.boxes {
		out = append(out, BoxSummary{Box: b.name, Depth: b.depth(), InFlight: b.inFlight})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Box < out[j].Box })
	return out
}
