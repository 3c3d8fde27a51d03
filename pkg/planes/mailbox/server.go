package mailbox

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// Server is the mailbox plane: the HTTP API over the in-memory index and,
// unless Amnesia is set, its log.
type Server struct {
	cfg Config
	log hclog.Logger

	mu sync.Mutex // guards ix; never held across I/O
	ix *index

	st  *store     // nil in amnesia
	com *committer // nil in amnesia
	met *metrics

	// lazy holds the messages whose newest delivery count is not on disk
	// yet (guarded by mu). Every commit carries them; a message in it is
	// not leased again before a commit wrote it (see receive).
	lazy map[uint64]struct{}

	kickCh    chan struct{}
	closing   chan struct{}
	draining  chan struct{} // closed by Drain: long polls answer now
	drainOnce sync.Once
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup

	// persistFault, when set (by tests), fails commits as a full or
	// broken disk would: its error replaces the commit.
	persistFault atomic.Pointer[func(refs []ref) error]
}

// New opens the store (migrating an earlier bbolt file), rebuilds the
// in-memory index and starts the lease sweeper. Metrics are registered on
// reg when it is not nil.
func New(cfg Config, log hclog.Logger, reg prometheus.Registerer) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("mailbox config: %w", err)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		kickCh:   make(chan struct{}, 1),
		closing:  make(chan struct{}),
		draining: make(chan struct{}),
		lazy:     make(map[uint64]struct{}),
	}
	s.ix = newIndex(cfg, s.kick)
	s.met = newMetrics(s)
	if !cfg.Amnesia {
		if err := s.openDurable(); err != nil {
			return nil, err
		}
	}
	if reg != nil {
		if err := s.met.register(reg); err != nil {
			s.shutdownStore()
			return nil, fmt.Errorf("register mailbox metrics: %w", err)
		}
	}
	s.wg.Add(1)
	go s.sweep()
	return s, nil
}

func (s *Server) openDurable() error {
	st, err := openStore(s.cfg.DataDir, s.log, s.cfg.SegmentBytes, s.cfg.CompactFreeRatio)
	if err != nil {
		return err
	}
	s.st = st
	s.rebuild()
	s.com = newCommitter(st, s.materialize, func(n int) { s.met.commitOps.Observe(float64(n)) },
		func(n int, err error) {
			s.met.compactions.Add(float64(n))
			if err != nil {
				s.log.Error("log compaction failed", "error", err)
			}
		})
	return s.persistRebuild()
}

// rebuild loads every stored message into the index. Leases are not
// durable: every stored message is ready, or delayed by a nack, or
// dead-lettered when its deliveries are used up.
func (s *Server) rebuild() {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.ix
	hi := s.st.load(func(seq uint64, r record) {
		b := x.boxes[r.box]
		if b == nil {
			// Stored boxes are loaded even beyond max_boxes: never hide data.
			b = &box{name: r.box, all: newAllHeap(), ready: newReadyHeap(), notify: make(chan struct{})}
			if x.labelled < x.metricsMaxBoxes {
				b.c, b.labelled = &counters{}, true
				x.labelled++
			} else {
				b.c = &x.overflow
			}
			x.boxes[r.box] = b
		}
		m := &message{seq: seq, box: b, enqueuedAt: time.Unix(0, r.enqueuedAt),
			visibleAt: time.Unix(0, r.visibleAt), deliveries: r.deliveries, qidx: -1, aidx: -1}
		x.msgs[seq] = m
		b.all.push(m)
		if m.visibleAt.After(now) && r.receipt == "" {
			x.setTimed(m, stateDelayed, m.visibleAt)
		} else {
			m.visibleAt = now
			x.makeReady(m)
		}
	}, func(key string, created time.Time, seq uint64) {
		x.idem[key] = &idemEntry{seq: seq, created: created, done: closedChan}
	})
	x.nextSeq = hi + 1
}

// persistRebuild dead-letters what rebuild found exhausted and drops expired
// idempotency keys, durably.
func (s *Server) persistRebuild() error {
	now := time.Now()
	s.mu.Lock()
	var refs []ref
	for _, b := range s.ix.boxes {
		var exhausted []*message
		for _, m := range b.ready.items {
			if s.ix.shouldDLQ(m) {
				exhausted = append(exhausted, m)
			}
		}
		for _, m := range exhausted {
			if s.ix.release(m, now) {
				refs = append(refs, ref{seq: m.seq})
			}
		}
	}
	refs = append(refs, s.ix.pruneIdem(now, s.cfg.IdempotencyWindow)...)
	s.mu.Unlock()
	if err := s.persist(refs); err != nil {
		s.shutdownStore()
		return fmt.Errorf("persist recovered state: %w", err)
	}
	return nil
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// pruneIdem forgets idempotency keys older than window and returns refs to
// delete them from disk.
func (x *index) pruneIdem(now time.Time, window time.Duration) []ref {
	var refs []ref
	for k, e := range x.idem {
		select {
		case <-e.done:
		default:
			continue // its send is still committing
		}
		if now.Sub(e.created) >= window {
			delete(x.idem, k)
			refs = append(refs, ref{idem: k})
		}
	}
	return refs
}

// materialize returns the writes that store the current in-memory state of
// refs. It holds s.mu only to copy that state. A leased message is stored
// as visible (leases are not durable), with its delivery count.
func (s *Server) materialize(refs []ref) []write {
	ws := make([]write, 0, len(refs))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range refs {
		if r.idem != "" {
			w := write{idemKey: r.idem}
			if e := s.ix.idem[r.idem]; e != nil && !e.failed {
				w.idemVal = encodeIdem(e.created, e.seq)
			}
			ws = append(ws, w)
			continue
		}
		w := write{seq: r.seq}
		if m := s.ix.msgs[r.seq]; m != nil {
			rec := record{box: m.box.name, enqueuedAt: m.enqueuedAt.UnixNano(),
				visibleAt: m.visibleAt.UnixNano(), deliveries: m.deliveries}
			if m.state == stateLeased {
				rec.visibleAt = rec.enqueuedAt
			}
			w.meta = rec.encode()
			if m.state == statePending {
				w.body, w.putBody = m.body, true
			}
		}
		ws = append(ws, w)
	}
	return ws
}

// persist makes refs durable, together with every lazily kept delivery
// count; a no-op in amnesia. With no refs it writes nothing: the lazy
// counts wait for a commit that happens anyway (a send, an ack), so a lease
// costs no fsync of its own (see flushLazy for when one is needed).
func (s *Server) persist(refs []ref) error {
	if len(refs) == 0 {
		return nil
	}
	return s.commitWithLazy(refs)
}

// flushLazy makes every lazily kept delivery count durable now.
func (s *Server) flushLazy() error { return s.commitWithLazy(nil) }

func (s *Server) commitWithLazy(refs []ref) error {
	if s.com == nil {
		return nil
	}
	s.mu.Lock()
	var lazy []uint64
	for seq := range s.lazy {
		lazy = append(lazy, seq)
		refs = append(refs, ref{seq: seq})
	}
	clear(s.lazy)
	s.mu.Unlock()
	if len(refs) == 0 {
		return nil
	}
	start := time.Now()
	var err error
	if fault := s.persistFault.Load(); fault != nil {
		err = (*fault)(refs)
	}
	if err == nil {
		err = s.com.commit(refs)
	}
	s.met.commitSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		s.mu.Lock()
		for _, seq := range lazy { // still not on disk
			if s.ix.msgs[seq] != nil {
				s.lazy[seq] = struct{}{}
			}
		}
		s.mu.Unlock()
		if errors.Is(err, errClosing) || errors.Is(err, errStoreClosed) {
			return errClosing
		}
		s.met.storeErrors.Inc()
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// kick wakes the sweeper because the earliest lease deadline moved earlier.
func (s *Server) kick() {
	select {
	case s.kickCh <- struct{}{}:
	default:
	}
}

// sweep ends leases when they expire (waking receivers) and prunes
// idempotency keys.
func (s *Server) sweep() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	pruneEvery := min(max(s.cfg.IdempotencyWindow/4, time.Second), time.Minute)
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	for {
		now := time.Now()
		s.mu.Lock()
		dirty := s.ix.expire(now)
		next := time.Hour
		if m := s.ix.timed.peek(); m != nil {
			next = max(m.visibleAt.Sub(now), 0)
		}
		s.mu.Unlock()
		if err := s.persist(seqRefs(dirty)); err != nil && !errors.Is(err, errClosing) {
			s.log.Error("persist dead-letter moves", "error", err)
		}
		timer.Reset(next)
		select {
		case <-s.closing:
			return
		case <-timer.C:
		case <-s.kickCh:
		case <-prune.C:
			s.mu.Lock()
			refs := s.ix.pruneIdem(time.Now(), s.cfg.IdempotencyWindow)
			s.mu.Unlock()
			if err := s.persist(refs); err != nil && !errors.Is(err, errClosing) {
				s.log.Error("persist idempotency pruning", "error", err)
			}
		}
	}
}

// Ready reports nil when the plane can serve.
func (s *Server) Ready() error {
	select {
	case <-s.closing:
		return errClosing
	default:
	}
	return nil
}

// Drain ends every long poll now (each answers with what it has, usually an
// empty list) and makes later receives return at once, so that an HTTP
// drain is not held up to 20s by waiting consumers. Sends, acks and the
// store keep working until Close. The child runtime calls it when a drain
// begins.
func (s *Server) Drain() {
	s.drainOnce.Do(func() { close(s.draining) })
}

// Close wakes long polls, stops the sweeper, commits queued writes and
// closes the store. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.wg.Wait()
		s.closeErr = s.shutdownStore()
	})
	return s.closeErr
}

func (s *Server) shutdownStore() error {
	if s.com != nil {
		if err := s.flushLazy(); err != nil && !errors.Is(err, errClosing) {
			s.log.Warn("write delivery counts at close", "error", err)
		}
		s.com.close()
	}
	if s.st != nil {
		return s.st.close()
	}
	return nil
}
