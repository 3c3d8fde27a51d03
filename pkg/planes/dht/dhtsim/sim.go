package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/zeebo/blake3"

	"github.com/macronode/macronode/pkg/address"
	"github.com/macronode/macronode/pkg/planes/dht"
)

// provided is a key whose provide has completed, and who provides it.
type provided struct {
	key      cid.Cid
	provider peer.ID
}

// sim runs the phases on one network.
type sim struct {
	c   config
	net *network

	mu        sync.Mutex
	keys      []provided
	providers map[peer.ID]bool // providers never leave: their keys stay findable
	nextKey   int
}

func newSim(c config) *sim {
	n := newNetwork(c.seed, c.join)
	n.mn.SetLinkDefaults(mocknet.LinkOptions{Latency: c.latency})
	return &sim{c: c, net: n, providers: map[peer.ID]bool{}}
}

// keyFor is the DHT key of the i-th simulated blob: the CIDv1(raw,
// blake3) the plane uses for a content address.
func keyFor(i int) (cid.Cid, error) {
	digest := blake3.Sum256(fmt.Appendf(nil, "dhtsim blob %d", i))
	return dht.KeyFor(address.Format(digest))
}

// parallel runs fn(i) for i in [0, n) on at most workers goroutines and
// stops handing out work once ctx is done.
func parallel(ctx context.Context, n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// build starts the seeds one by one, then the other nodes -parallel at a
// time, within -build-share of the deadline.
func (s *sim) build(ctx context.Context, rep reporter) error {
	if s.c.cpuProfile != "" {
		f, err := os.Create(s.c.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	start := time.Now()
	for range s.c.seeds {
		if err := s.net.addSeed(ctx); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	bctx, cancel := context.WithTimeout(ctx, time.Duration(float64(s.c.timeout)*s.c.buildShare))
	defer cancel()
	var errs, done atomic.Int64
	var firstErr atomic.Value
	step := int64(max(1, s.c.nodes/5))
	parallel(bctx, s.c.nodes-s.c.seeds, s.c.parallel, func(int) {
		nd, err := s.net.add()
		if err == nil {
			err = s.net.join(bctx, nd)
		}
		if d := done.Add(1); d%step == 0 {
			fmt.Printf("  ... %d of %d joins done after %.0fs\n", d, s.c.nodes-s.c.seeds, time.Since(start).Seconds())
		}
		if err != nil && bctx.Err() == nil {
			errs.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}
	})
	if e, ok := firstErr.Load().(error); ok {
		fmt.Printf("  note: %d joins failed, the first: %v\n", errs.Load(), e)
	}
	live := s.net.liveCount()
	if live < s.c.nodes {
		fmt.Printf("  note: only %d of %d nodes joined within %.0f%% of the %s budget; going on with them\n",
			live, s.c.nodes, 100*s.c.buildShare, s.c.timeout)
	}
	if live < 2 {
		return errors.New("fewer than two nodes joined")
	}
	rep.figure("nodes joined", float64(live), "nodes", 1, math.NaN(), math.NaN(), "bootstrapped from the seeds")
	rep.figure("bootstrap time", time.Since(start).Seconds(), "s", 1, math.NaN(), math.NaN(),
		fmt.Sprintf("all joins, %d at a time", s.c.parallel))
	var rt, conns []float64
	for _, nd := range s.net.snapshot() {
		rt = append(rt, float64(nd.kad.RoutingTable().Size()))
		conns = append(conns, float64(len(nd.h.Network().Peers())))
	}
	rep.distribution("connected peers", conns, "peers", "per node, after the joins")
	rep.distribution("routing table size", rt, "peers", "after the joins")
	rep.figure("routing table size min", slices.Min(rt), "peers", len(rt), math.NaN(), math.NaN(), "")
	if s.c.memProfile != "" {
		if err := writeHeapProfile(s.c.memProfile); err != nil {
			fmt.Fprintf(os.Stderr, "dhtsim: %v\n", err)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("  after the joins: %d goroutines, heap in use %d MiB, stacks %d MiB, runtime total %d MiB\n",
		runtime.NumGoroutine(), ms.HeapInuse>>20, ms.StackInuse>>20, ms.Sys>>20)
	if rss, _, err := memory(); err == nil {
		rep.figure("rss after joins", rss, "MiB", 1, rss, rss, fmt.Sprintf("%.2f MiB per node", rss/float64(live)))
	}
	return nil
}

// provideOne provides the next key from a random live node that is not
// leaving, and returns how long the provide took.
func (s *sim) provideOne(ctx context.Context, canProvide func(*node) bool) (time.Duration, error) {
	// Marked as a provider while the network is locked, so that no churn
	// turn can take it off the network between the pick and the mark.
	nd := s.net.pick(func(nd *node) bool {
		if !canProvide(nd) {
			return false
		}
		s.mu.Lock()
		s.providers[nd.h.ID()] = true
		s.mu.Unlock()
		return true
	})
	if nd == nil {
		return 0, errors.New("no live node may provide")
	}
	s.mu.Lock()
	i := s.nextKey
	s.nextKey++
	s.mu.Unlock()
	key, err := keyFor(i)
	if err != nil {
		return 0, err
	}
	pctx, cancel := context.WithTimeout(ctx, s.c.lookupTimeout)
	defer cancel()
	start := time.Now()
	if err := nd.kad.Provide(pctx, key, true); err != nil {
		return 0, fmt.Errorf("provide %s: %w", key, err)
	}
	d := time.Since(start)
	s.mu.Lock()
	s.keys = append(s.keys, provided{key: key, provider: nd.h.ID()})
	s.mu.Unlock()
	return d, nil
}

// provideMany provides n keys, -parallel at a time, and returns the
// latencies in milliseconds and the number of failed provides.
func (s *sim) provideMany(ctx context.Context, n int, canProvide func(*node) bool) ([]float64, int) {
	var mu sync.Mutex
	var ms []float64
	failed := 0
	parallel(ctx, n, s.c.parallel, func(int) {
		d, err := s.provideOne(ctx, canProvide)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed++
			return
		}
		ms = append(ms, float64(d)/float64(time.Millisecond))
	})
	return ms, failed
}

func (s *sim) provideInitial(ctx context.Context, rep reporter) error {
	ms, failed := s.provideMany(ctx, s.c.keys, func(*node) bool { return true })
	rep.distribution("provide latency", ms, "ms", fmt.Sprintf("%d provides before churn, %d failed", len(ms), failed))
	if len(ms) == 0 {
		return errors.New("no key could be provided")
	}
	return nil
}

// lookupOne looks up a random provided key from a random live node other
// than its provider.
func (s *sim) lookupOne(ctx context.Context, i int) (lookupResult, bool) {
	s.mu.Lock()
	if len(s.keys) == 0 {
		s.mu.Unlock()
		return lookupResult{}, false
	}
	k := s.keys[(i*7919)%len(s.keys)]
	s.mu.Unlock()
	from := s.net.pick(func(nd *node) bool { return nd.h.ID() != k.provider })
	if from == nil {
		return lookupResult{}, false
	}
	r := s.net.findProvider(ctx, from, k.key, k.provider, s.c.lookupTimeout)
	if s.net.lookup(from.h.ID()) == nil {
		return lookupResult{}, false // the looker left during its lookup: not a routing failure
	}
	return r, true
}

// lookupRound runs n lookups, -parallel at a time.
func (s *sim) lookupRound(ctx context.Context, n int) *phaseStats {
	return s.lookups(ctx, ctx, n, s.c.parallel)
}

// lookups runs up to n lookups, workers at a time, and starts no new one
// once until is done; a lookup under way runs on to its end or ctx's.
func (s *sim) lookups(ctx, until context.Context, n, workers int) *phaseStats {
	var mu sync.Mutex
	st := &phaseStats{}
	parallel(until, n, workers, func(i int) {
		r, ok := s.lookupOne(ctx, i)
		if !ok || ctx.Err() != nil {
			return
		}
		mu.Lock()
		st.add(r)
		mu.Unlock()
	})
	return st
}

// churnWorkers splits -parallel between the churn turns and the lookups
// that run beside them.
func churnWorkers(parallel int) int { return max(1, parallel/2) }

// churnPhase makes churn*nodes nodes leave, one at a time, each followed
// by a new node joining (several turns at a time), while half again as many keys are provided and
// lookups run without pause.
func (s *sim) churnPhase(ctx context.Context, rep reporter) (*phaseStats, error) {
	turns := int(math.Round(s.c.churn * float64(s.c.nodes)))
	seeds := map[peer.ID]bool{}
	for _, sd := range s.net.seeds {
		seeds[sd.ID] = true
	}
	isProvider := func(nd *node) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.providers[nd.h.ID()]
	}
	start := time.Now()
	cctx, stopLookups := context.WithCancel(ctx)
	defer stopLookups()
	var (
		wg                   sync.WaitGroup
		left, joined, failed int
		churnErr             error
		provMS               []float64
		provFailed           int
	)
	wg.Go(func() {
		defer stopLookups()
		var pwg sync.WaitGroup
		pwg.Go(func() {
			provMS, provFailed = s.provideMany(cctx, max(1, s.c.keys/2), func(nd *node) bool { return !seeds[nd.h.ID()] })
		})
		var mu sync.Mutex
		parallel(ctx, turns, churnWorkers(s.c.parallel), func(int) {
			gone, err := s.net.leaveRandom(func(nd *node) bool { return !seeds[nd.h.ID()] && !isProvider(nd) })
			if err != nil {
				fmt.Printf("  note: leave: %v\n", err)
			}
			if !gone {
				mu.Lock()
				churnErr = errors.New("no node may leave (all are seeds or providers)")
				mu.Unlock()
				return
			}
			nd, err := s.net.add()
			if err == nil {
				err = s.net.join(ctx, nd)
			}
			mu.Lock()
			defer mu.Unlock()
			left++
			if err != nil {
				failed++
				return
			}
			joined++
		})
		pwg.Wait()
	})
	st := s.lookups(ctx, cctx, math.MaxInt32, churnWorkers(s.c.parallel))
	wg.Wait()
	if churnErr != nil {
		return nil, churnErr
	}
	rep.figure("churn nodes left", float64(left), "nodes", 1, math.NaN(), math.NaN(), "no seed, no provider")
	rep.figure("churn nodes joined", float64(joined), "nodes", 1, math.NaN(), math.NaN(), fmt.Sprintf("%d joins failed", failed))
	rep.figure("churn time", time.Since(start).Seconds(), "s", 1, math.NaN(), math.NaN(), fmt.Sprintf("each turn one leave then one join, %d turns at a time", churnWorkers(s.c.parallel)))
	rep.distribution("provide latency during churn", provMS, "ms", fmt.Sprintf("%d provides, %d failed", len(provMS), provFailed))
	return st, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	return nil
}
