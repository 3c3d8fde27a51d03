package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// convergePoll is how often every node is asked for its view.
const convergePoll = 100 * time.Millisecond

// nodeView is what the last poll of one node returned.
type nodeView struct {
	ready bool
	id    string   // node id, from GET /overlay/info
	dhtID string   // DHT peer id, from GET /dht/info
	peers []string // node ids in GET /overlay/peers
	rt    int      // routing_table of GET /dht/info
	err   error    // the last poll's first error
}

// pollNode asks one node for readiness, its ids, its overlay peers and its
// routing table size. It keeps what v already knows and sets err on a failed
// request; a node that is still starting is simply not converged yet.
func pollNode(ctx context.Context, c *clusterNode, v nodeView) nodeView {
	v.err = nil
	if !v.ready {
		v.ready = getCode(ctx, apiClient, c.url("/readyz")) == http.StatusOK
	}
	if v.id == "" {
		var info struct {
			NodeID string `json:"node_id"`
		}
		if err := getJSON(ctx, c.overlayURL("/overlay/info"), &info); err != nil {
			v.err = err
			return v
		}
		v.id = info.NodeID
	}
	var peers struct {
		Peers []struct {
			NodeID string `json:"node_id"`
		} `json:"peers"`
	}
	if err := getJSON(ctx, c.overlayURL("/overlay/peers"), &peers); err != nil {
		v.err = err
		return v
	}
	v.peers = v.peers[:0]
	for _, p := range peers.Peers {
		v.peers = append(v.peers, p.NodeID)
	}
	var info struct {
		PeerID       string `json:"peer_id"`
		RoutingTable int    `json:"routing_table"`
	}
	if err := getJSON(ctx, c.dhtURL("/dht/info"), &info); err != nil {
		v.err = err
		return v
	}
	v.dhtID, v.rt = info.PeerID, info.RoutingTable
	return v
}

// missingPeers counts the node ids of all, other than self, that peers
// does not list.
func missingPeers(self string, peers, all []string) int {
	seen := make(map[string]bool, len(peers))
	for _, p := range peers {
		seen[p] = true
	}
	n := 0
	for _, id := range all {
		if id != self && !seen[id] {
			n++
		}
	}
	return n
}

// overlayComplete: every node's id is known and the node's overlay lists
// all others.
func overlayComplete(v nodeView, all []string) bool {
	for _, id := range all {
		if id == "" {
			return false
		}
	}
	return v.id != "" && missingPeers(v.id, v.peers, all) == 0
}

// dhtComplete: the node's routing table holds at least wantRT peers.
func dhtComplete(v nodeView, wantRT int) bool { return v.rt >= wantRT }

// measureConvergence polls every node until each is converged (its overlay
// lists all others, its DHT routing table holds min(N-1, 20) peers) and
// ready, and reports the times from the last node's start: to all ready, to
// all overlays complete, to all DHT tables complete, to each node converged,
// and to the last one converged (the convergence time). It fills in the
// nodes' ids, which the later phases need.
func measureConvergence(ctx context.Context, t *table, cl *cluster, co clusterOpts) error {
	n := len(cl.nodes)
	wantRT := min(n-1, 20)
	views := make([]nodeView, n)
	readyAt := make([]time.Time, n)
	overlayAt := make([]time.Time, n)
	dhtAt := make([]time.Time, n)
	done := func(i int) bool { return !overlayAt[i].IsZero() && !dhtAt[i].IsZero() }
	deadline := cl.lastStart.Add(co.converge)
	ids := make([]string, n)
	for {
		var wg sync.WaitGroup
		for i, c := range cl.nodes {
			if done(i) && !readyAt[i].IsZero() {
				continue
			}
			wg.Go(func() {
				views[i] = pollNode(ctx, c, views[i])
				if views[i].ready && readyAt[i].IsZero() {
					readyAt[i] = time.Now()
				}
			})
		}
		wg.Wait()
		now := time.Now()
		for i := range views {
			ids[i] = views[i].id
		}
		left := 0
		for i, v := range views {
			if overlayAt[i].IsZero() && overlayComplete(v, ids) {
				overlayAt[i] = now
			}
			if dhtAt[i].IsZero() && dhtComplete(v, wantRT) {
				dhtAt[i] = now
			}
			if !done(i) || readyAt[i].IsZero() {
				left++
			}
		}
		for i, c := range cl.nodes {
			c.id, c.dhtID = views[i].id, views[i].dhtID
			if c.proc.exited() {
				return fmt.Errorf("node %d exited (%v); log: %s", c.i, c.proc.err, c.tail())
			}
		}
		if left == 0 {
			break
		}
		if now.After(deadline) || ctx.Err() != nil {
			break
		}
		if err := sleepCtx(ctx, convergePoll); err != nil {
			break
		}
	}
	reportReady(t, cl, readyAt)
	for i := range n {
		if !done(i) {
			return fmt.Errorf("not within %s of the last start: %s", co.converge, convergeState(views, ids, wantRT))
		}
	}
	var per []float64
	var lastOverlay, lastDHT time.Duration
	for i := range n {
		o, d := overlayAt[i].Sub(cl.lastStart), dhtAt[i].Sub(cl.lastStart)
		per = append(per, max(o, d).Seconds())
		lastOverlay, lastDHT = max(lastOverlay, o), max(lastDHT, d)
	}
	t.add("overlays: all see all others, after the last start", "s", []float64{lastOverlay.Seconds()}, "")
	t.add(fmt.Sprintf("DHT: all routing tables >= %d, after the last start", wantRT), "s", []float64{lastDHT.Seconds()}, "")
	t.add("node converged, after the last start (per node)", "s", per, fmt.Sprintf("polled every %s", convergePoll))
	t.add("convergence (both of the above)", "s", []float64{max(lastOverlay, lastDHT).Seconds()},
		"from the last node's start; target <= 10 s")
	return nil
}

// reportReady adds the time from the last start to the last node's
// /readyz 200 (skipped if a node never got there).
func reportReady(t *table, cl *cluster, readyAt []time.Time) {
	last := time.Duration(0)
	for i, r := range readyAt {
		if r.IsZero() {
			t.skip("all nodes ready, after the last start", fmt.Sprintf("node %d never answered /readyz 200", i+1))
			return
		}
		last = max(last, r.Sub(cl.lastStart))
	}
	t.add("all nodes ready, after the last start", "s", []float64{last.Seconds()}, fmt.Sprintf("%d parents + %d children", len(cl.nodes), 6*len(cl.nodes)))
}

// convergeState says how far the cluster got, for a missed convergence.
func convergeState(views []nodeView, ids []string, wantRT int) string {
	overlays, tables, fewest, smallest := 0, 0, len(ids), -1
	var firstErr error
	for _, v := range views {
		if miss := missingPeers(v.id, v.peers, ids); v.id != "" && miss == 0 {
			overlays++
		} else {
			fewest = min(fewest, len(ids)-1-miss)
		}
		if v.rt >= wantRT {
			tables++
		}
		if smallest < 0 || v.rt < smallest {
			smallest = v.rt
		}
		if firstErr == nil && v.err != nil {
			firstErr = v.err
		}
	}
	if overlays == len(views) {
		fewest = len(ids) - 1
	}
	s := fmt.Sprintf("%d/%d overlays see all others (fewest seen: %d), %d/%d DHT tables >= %d (smallest: %d)",
		overlays, len(views), fewest, tables, len(views), wantRT, smallest)
	if firstErr != nil {
		s += "; last error: " + firstErr.Error()
	}
	return s
}
