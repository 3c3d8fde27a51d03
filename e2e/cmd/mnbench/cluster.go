package main

// The cluster subcommand (issue 10, "Benchmark, in make bench"): N full
// nodes on loopback, each overlay and DHT on its own fixed 127.0.0.1 TCP
// port, nodes 2..N bootstrapping from node 1. It prints the convergence
// time, provide and find-providers latency, the cross-node fetch of a
// 64 MiB blob beside a local GET of it, and the RSS of the overlay and DHT
// children. Its own flags follow "--":
//
//	mnbench cluster -bin bin -- -nodes 5 -blob-size 8MiB

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

func init() {
	commands["cluster"] = command{"N nodes on loopback: convergence, DHT latency, cross-node fetch, RSS", benchCluster}
}

// clusterOpts are the cluster subcommand's own flags.
type clusterOpts struct {
	nodes     int
	converge  time.Duration // how long to wait for convergence before reporting it missed
	provides  int           // provide rounds (each with finders lookups)
	finders   int           // nodes that look up each provided address
	blobSize  int
	blobs     int // blobs fetched across nodes, one remote GET each
	localGets int // local GETs per blob
	teardown  time.Duration
}

func parseClusterOpts(o *opts) (clusterOpts, error) {
	co := clusterOpts{}
	fs := flag.NewFlagSet("mnbench cluster --", flag.ContinueOnError)
	fs.IntVar(&co.nodes, "nodes", 20, "nodes in the cluster (2..50)")
	fs.DurationVar(&co.converge, "converge", 60*time.Second, "longest wait for convergence (a miss is reported, and the rest still measured)")
	fs.IntVar(&co.provides, "provides", o.runsOr(30, 12), "provide rounds (default -runs, else 30, quick 12)")
	fs.IntVar(&co.finders, "finders", 2, "other nodes that look up each provided address")
	size := fs.String("blob-size", "64MiB", "size of the blob fetched across nodes")
	blobs := 3
	if o.quick {
		blobs = 1
	}
	fs.IntVar(&co.blobs, "blobs", blobs, "blobs fetched across nodes (default 3, quick 1)")
	fs.IntVar(&co.localGets, "local-gets", 3, "local GETs of each blob on node 1")
	fs.DurationVar(&co.teardown, "teardown", 30*time.Second, "part of -timeout kept for stopping the nodes")
	if err := fs.Parse(o.args); err != nil {
		return co, fmt.Errorf("cluster flags: %w", err)
	}
	var err error
	if co.blobSize, err = parseSize(*size); err != nil {
		return co, fmt.Errorf("-blob-size: %w", err)
	}
	switch {
	case co.nodes < 2 || co.nodes > 50:
		return co, fmt.Errorf("-nodes must be 2..50, got %d", co.nodes)
	case co.finders < 1 || co.finders >= co.nodes:
		return co, fmt.Errorf("-finders must be 1..%d, got %d", co.nodes-1, co.finders)
	case co.provides < 1 || co.blobs < 1 || co.localGets < 1:
		return co, fmt.Errorf("-provides, -blobs and -local-gets must be at least 1")
	case co.teardown >= o.timeout:
		return co, fmt.Errorf("-teardown %s leaves nothing of -timeout %s", co.teardown, o.timeout)
	}
	return co, nil
}

// clusterNode is one node of the cluster and what the benchmark learns of it.
type clusterNode struct {
	*node
	i          int    // 1-based
	overlayP2P string // the overlay's TCP multiaddr, without /p2p
	dhtP2P     string
	id         string // node id (the overlay's peer id)
	dhtID      string // the DHT host's peer id
}

func (c *clusterNode) overlayURL(path string) string { return "http://" + c.listen["overlay"] + path }
func (c *clusterNode) dhtURL(path string) string     { return "http://" + c.listen["dht"] + path }
func (c *clusterNode) gw() string                    { return "http://" + c.listen["gateway"] }

type cluster struct {
	nodes     []*clusterNode
	lastStart time.Time // just before the last node's exec
}

// Ports follow scripts/cluster.sh: node i (1-based) listens on BASE + 100*i
// + these offsets (the overlay's libp2p port is overlay+1, the DHT's dht+1).
var portOffsets = map[string]int{"admin": 80, "gateway": 90, "storage": 30, "index": 40, "mailbox": 50, "overlay": 10, "dht": 20}

// nodePorts returns node i's admin address, its allPlanes' listen
// addresses in that order, and its overlay and DHT libp2p ports.
func nodePorts(base, i int) (addrs []string, overlayP2P, dhtP2P int) {
	at := func(off int) int { return base + 100*i + off }
	addrs = []string{"127.0.0.1:" + strconv.Itoa(at(portOffsets["admin"]))}
	for _, p := range allPlanes {
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(at(portOffsets[p])))
	}
	return addrs, at(portOffsets["overlay"] + 1), at(portOffsets["dht"] + 1)
}

// pickBase finds a BASE, a multiple of 100 below the kernel's ephemeral port
// range (so that no outgoing connection of the 7N processes can take a port
// before its owner binds it), at which every port of n nodes is free now.
func pickBase(n int) (int, error) {
	ephemeral := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				ephemeral = v
			}
		}
	}
	const lowest = 10000
	slots := (ephemeral - lowest - 100*(n+1)) / 100
	if slots < 1 {
		return 0, fmt.Errorf("no room for %d nodes between port %d and the ephemeral range at %d", n, lowest, ephemeral)
	}
	var lastErr error
	for range 20 {
		base := lowest + 100*mrand.IntN(slots)
		if lastErr = portsFree(base, n); lastErr == nil {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no base port with %d nodes' ports free after 20 tries: %w", n, lastErr)
}

// portsFree binds every port of n nodes at base, then lets them go.
func portsFree(base, n int) error {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for i := 1; i <= n; i++ {
		addrs, op, dp := nodePorts(base, i)
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(op), "127.0.0.1:"+strconv.Itoa(dp))
		for _, a := range addrs {
			l, err := net.Listen("tcp", a)
			if err != nil {
				return fmt.Errorf("port %s: %w", a, err)
			}
			ls = append(ls, l)
		}
	}
	return nil
}

// startCluster starts node 1, waits until it is ready and names itself,
// then starts nodes 2..N with node 1 as their bootstrap peer. It does not
// wait for nodes 2..N.
func startCluster(ctx context.Context, o *opts, co clusterOpts) (*cluster, error) {
	if err := needBins(o.binDir, append([]string{"macronode"}, binNames(allPlanes)...)...); err != nil {
		return nil, err
	}
	base, err := pickBase(co.nodes)
	if err != nil {
		return nil, err
	}
	progress("ports: BASE %d, as scripts/cluster.sh lays them out", base)
	cl := &cluster{}
	boot := ""
	for i := range co.nodes {
		addrs, op, dp := nodePorts(base, i+1)
		c := &clusterNode{i: i + 1}
		c.overlayP2P = "/ip4/127.0.0.1/tcp/" + strconv.Itoa(op)
		c.dhtP2P = "/ip4/127.0.0.1/tcp/" + strconv.Itoa(dp)
		env := []string{"RON_OVERLAY_P2P_ADDR=" + c.overlayP2P, "RON_DHT_P2P_ADDR=" + c.dhtP2P}
		if boot != "" {
			env = append(env, "RON_BOOTSTRAP="+boot)
		}
		if c.node, err = startNode(o, nodeOpts{planes: allPlanes, env: env, addrs: addrs}); err != nil {
			return cl, fmt.Errorf("start node %d: %w", i+1, err)
		}
		cl.nodes = append(cl.nodes, c)
		cl.lastStart = c.started
		if i > 0 {
			continue
		}
		if _, err := c.waitReady(ctx, 60*time.Second, 20*time.Millisecond); err != nil {
			return cl, fmt.Errorf("node 1: %w", err)
		}
		var info struct {
			NodeID string `json:"node_id"`
		}
		if err := getJSON(ctx, c.overlayURL("/overlay/info"), &info); err != nil {
			return cl, fmt.Errorf("node 1: %w", err)
		}
		c.id = info.NodeID
		boot = c.overlayP2P + "/p2p/" + c.id
	}
	return cl, nil
}

// stop stops every node at once (each parent drains its children) and
// reports how long that took.
func (cl *cluster) stop() time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cl.nodes {
		wg.Go(func() {
			if err := c.stop(); err != nil {
				progress("stop node %d: %v", c.i, err)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// getJSON GETs url and decodes a 200 answer into v.
func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", url, err)
	}
	return nil
}

// benchCluster runs the phases in order; a phase that fails is reported as
// skipped with its reason and the next one still runs, so that every figure
// that can be measured is printed.
func benchCluster(ctx context.Context, o *opts) error {
	co, err := parseClusterOpts(o)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	t0 := time.Now()
	t := newTable(o, "Cluster", fmt.Sprintf("%d nodes on 127.0.0.1 (six planes each), nodes 2..%d bootstrap from node 1", co.nodes, co.nodes))
	defer t.print()
	if l, err := loadAvg(); err == nil {
		t.add("host load average (1 min) at the start", "", []float64{l}, fmt.Sprintf("%d cores; what else runs here skews every figure", runtime.NumCPU()))
	}
	mctx, cancel := context.WithTimeout(ctx, o.timeout-co.teardown)
	defer cancel()

	cl, err := startCluster(mctx, o, co)
	if cl != nil {
		defer func() {
			progress("stopping %d nodes", len(cl.nodes))
			d := cl.stop()
			t.add("stop every node (SIGTERM, in parallel)", "s", []float64{d.Seconds()}, "")
			t.add("section wall time", "s", []float64{time.Since(t0).Seconds()}, "budget 180 s")
		}()
	}
	if err != nil {
		t.skip("convergence", err.Error())
		return err
	}
	progress("%d nodes started; waiting for convergence", co.nodes)
	phases := []struct {
		name string
		run  func() error
	}{
		{"convergence", func() error { return measureConvergence(mctx, t, cl, co) }},
		{"provide / find-providers", func() error { return measureDHT(mctx, t, cl, co) }},
		{"cross-node fetch", func() error { return measureFetch(mctx, t, cl, co) }},
		{"RSS", func() error { return measureRSS(mctx, t, cl) }},
	}
	for _, p := range phases {
		if err := mctx.Err(); err != nil {
			t.skip(p.name, fmt.Sprintf("not run: %v", err))
			continue
		}
		progress("%s", p.name)
		if err := p.run(); err != nil {
			t.skip(p.name, err.Error())
		}
	}
	return nil
}

// loadAvg is the host's 1-minute load average.
func loadAvg() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, fmt.Errorf("read load average: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("read load average: empty /proc/loadavg")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("parse load average: %w", err)
	}
	return v, nil
}
