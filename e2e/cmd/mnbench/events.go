package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The events stream figures: fault -> ready through the admin API, events
// delivered per second to 100 SSE clients, and the parent's CPU with 1,000
// idle SSE clients.
func init() {
	commands["faultready"] = command{"POST fault kill -> events stream shows ready of the new pid", benchFaultReady}
	commands["eventsfanout"] = command{"events/s delivered to 100 SSE clients while storage is killed in a loop", benchEventsFanout}
	commands["ssecpu"] = command{"parent CPU with 1,000 idle SSE clients", benchSSECPU}
}

// storageNode starts a ready node running storage only, restarted at once
// after a kill once it has been up for -stable-after. Without the binaries
// it records figure as skipped and returns a nil node.
func storageNode(ctx context.Context, o *opts, t *table, figure string) (*node, error) {
	if err := needBins(o.binDir, "macronode", "svc-storage"); err != nil {
		t.skip(figure, err.Error())
		return nil, nil
	}
	planes := []string{"storage"}
	return startReadyNode(ctx, o, nodeOpts{planes: planes, config: supervisedConfig(planes, o.stable)})
}

// eventChan streams the node's events into a channel until ctx ends.
func eventChan(ctx context.Context, n *node) (<-chan sseEvent, error) {
	resp, err := openEvents(ctx, n)
	if err != nil {
		return nil, err
	}
	evs := make(chan sseEvent, 1024)
	go func() {
		defer close(evs)
		defer resp.Body.Close()
		readEvents(resp.Body, func(ev sseEvent) {
			select {
			case evs <- ev:
			case <-ctx.Done():
			}
		})
	}()
	return evs, nil
}

// nextReady waits for a ready event of storage from a pid other than old.
func nextReady(ctx context.Context, evs <-chan sseEvent, old int, timeout time.Duration) (int, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				return 0, errors.New("event stream ended")
			}
			if ev.Type == "ready" && ev.Service == "storage" && ev.Data.PID != old {
				return ev.Data.PID, nil
			}
		case <-t.C:
			return 0, fmt.Errorf("no ready event from a new storage pid within %s", timeout)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func benchFaultReady(ctx context.Context, o *opts) error {
	runs := o.runsOr(10, 5)
	t := newTable(o, "Events", fmt.Sprintf("fault -> ready through the API: POST fault kill, then the events stream's ready of the new pid (%d rounds)", runs))
	defer t.print()
	n, err := storageNode(ctx, o, t, "fault -> ready")
	if err != nil || n == nil {
		return err
	}
	defer func() { _ = n.stop() }()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs, err := eventChan(sctx, n)
	if err != nil {
		return err
	}

	wait, note := stableWait(o)
	var samples []float64
	prev := 0
	for i := range runs {
		pid, err := waitStable(ctx, n, "storage", prev, wait)
		if err != nil {
			return fmt.Errorf("round %d: %w", i+1, err)
		}
		for len(evs) > 0 { // events of the previous round
			<-evs
		}
		t0 := time.Now()
		if err := postFault(ctx, n, "storage"); err != nil {
			return fmt.Errorf("round %d: %w", i+1, err)
		}
		next, err := nextReady(ctx, evs, pid, 30*time.Second)
		if err != nil {
			return fmt.Errorf("round %d: %w", i+1, err)
		}
		d := time.Since(t0)
		samples = append(samples, ms(d))
		progress("  round %d/%d: fault -> ready %.2fms (pid %d -> %d)", i+1, runs, ms(d), pid, next)
		prev = pid
	}
	t.add("fault kill -> ready event of the new pid", "ms", samples, note)
	return nil
}

// openClients opens count event streams (waiting out the per-IP rate limit)
// and counts the events each delivers; cancel ctx to close them.
func openClients(ctx context.Context, n *node, count int, received *atomic.Int64) (*sync.WaitGroup, error) {
	var wg sync.WaitGroup
	for i := range count {
		resp, err := openEvents(ctx, n)
		if err != nil {
			return &wg, fmt.Errorf("client %d: %w", i+1, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			readEvents(resp.Body, func(sseEvent) { received.Add(1) })
		}()
	}
	return &wg, nil
}

func benchEventsFanout(ctx context.Context, o *opts) error {
	const clients = 100
	window := o.durOr(0, 20*time.Second, 8*time.Second)
	t := newTable(o, "Events", fmt.Sprintf("events delivered to %d SSE clients while storage is killed in a loop (%s)", clients, window))
	defer t.print()
	n, err := storageNode(ctx, o, t, "events delivered")
	if err != nil || n == nil {
		return err
	}
	defer func() { _ = n.stop() }()
	sctx, cancel := context.WithCancel(ctx)
	var received atomic.Int64
	wg, err := openClients(sctx, n, clients, &received)
	defer func() { cancel(); wg.Wait() }()
	if err != nil {
		return err
	}
	// One more stream paces the faults: the next kill follows the ready
	// of the previous new child, so every round is a full restart.
	evs, err := eventChan(sctx, n)
	if err != nil {
		return err
	}

	st, err := n.service(ctx, "storage")
	if err != nil {
		return err
	}
	pid, rounds := st.PID, 0
	start, before := time.Now(), received.Load()
	for time.Since(start) < window {
		if err := postFault(ctx, n, "storage"); err != nil {
			return err
		}
		if pid, err = nextReady(ctx, evs, pid, 30*time.Second); err != nil {
			return err
		}
		rounds++
	}
	// The last round's events reach every client within a moment; count
	// them before stopping the clock.
	if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
		return err
	}
	elapsed, got := time.Since(start), received.Load()-before
	perSec := float64(got) / elapsed.Seconds()
	t.add("events delivered, all clients together", "events/s", []float64{perSec},
		fmt.Sprintf("%d events over %s, %d kill->ready rounds, %.1f events per client", got, elapsed.Round(time.Millisecond), rounds, float64(got)/clients))
	t.add("events delivered per client", "events/s", []float64{perSec / clients}, "one window")
	return nil
}

func benchSSECPU(ctx context.Context, o *opts) error {
	const clients = 1000
	window := o.durOr(0, 60*time.Second, 30*time.Second)
	t := newTable(o, "Events", fmt.Sprintf("the parent's CPU with %d idle SSE clients over %s", clients, window))
	defer t.print()
	n, err := storageNode(ctx, o, t, "parent CPU")
	if err != nil || n == nil {
		return err
	}
	defer func() { _ = n.stop() }()
	sctx, cancel := context.WithCancel(ctx)
	var received atomic.Int64
	t0 := time.Now()
	wg, err := openClients(sctx, n, clients, &received)
	defer func() { cancel(); wg.Wait() }()
	if err != nil {
		return err
	}
	progress("  %d clients connected in %s", clients, time.Since(t0).Round(time.Millisecond))
	if err := sleepCtx(ctx, 2*time.Second); err != nil { // let the connection burst settle
		return err
	}
	pid := n.proc.pid()
	first, err := readProcStat(pid)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := sleepCtx(ctx, window); err != nil {
		return err
	}
	last, err := readProcStat(pid)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	t.add("parent CPU (utime+stime)", "% of a core", []float64{100 * float64(last.cpu-first.cpu) / float64(elapsed)},
		fmt.Sprintf("total %.0fms over %s; heartbeats every 15s", ms(last.cpu-first.cpu), elapsed.Round(time.Second)))
	t.add("parent RSS with the clients connected", "MiB", []float64{float64(last.rssKiB) / 1024}, "one sample, at the end")
	return nil
}
