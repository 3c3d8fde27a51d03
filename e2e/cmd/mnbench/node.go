package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// allPlanes are the six planes, in the default start order.
var allPlanes = []string{"storage", "index", "mailbox", "overlay", "dht", "gateway"}

// nodeOpts describe one `macronode run`.
type nodeOpts struct {
	planes []string // RON_SERVICES
	config string   // YAML written to a file and passed with --config ("" = none)
	log    string   // where the parent's stdout+stderr go; "" = a file in the node dir
	env    []string // extra environment
	addrs  []string // admin then allPlanes' listen addresses (nil = fresh free ports)
}

// node is one running parent.
type node struct {
	proc    *proc
	dir     string
	admin   string            // admin address
	listen  map[string]string // plane -> listen address
	started time.Time         // just before exec
	logPath string
}

var nodeSeq atomic.Int64

// startNode execs `macronode run` with fresh ports, run dir and data dir. It
// does not wait for readiness.
func startNode(o *opts, no nodeOpts) (*node, error) {
	bins := []string{"macronode"}
	for _, p := range no.planes {
		bins = append(bins, "svc-"+p)
	}
	if no.config == "" {
		if err := needBins(o.binDir, bins...); err != nil {
			return nil, err
		}
	} else if err := needBins(o.binDir, "macronode"); err != nil {
		return nil, err
	}
	dir := filepath.Join(o.tmp, "n"+strconv.FormatInt(nodeSeq.Add(1), 10))
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, fmt.Errorf("make node dir: %w", err)
	}
	addrs := no.addrs
	if addrs == nil {
		var err error
		if addrs, err = freeAddrs(1 + len(allPlanes)); err != nil {
			return nil, err
		}
	} else if len(addrs) != 1+len(allPlanes) {
		return nil, fmt.Errorf("nodeOpts.addrs: want %d addresses, got %d", 1+len(allPlanes), len(addrs))
	}
	n := &node{dir: dir, admin: addrs[0], listen: map[string]string{}, logPath: no.log}
	if n.logPath == "" {
		n.logPath = filepath.Join(dir, "macronode.log")
	}
	services := strings.Join(no.planes, ",")
	if services == "" {
		services = "none"
	}
	env := []string{
		"RON_HTTP_ADDR=" + n.admin,
		"RON_RUN_DIR=" + filepath.Join(dir, "run"),
		"RON_SERVICES=" + services,
		"RON_LOG_FORMAT=json",
	}
	for i, p := range allPlanes {
		n.listen[p] = addrs[1+i]
		env = append(env, "RON_"+strings.ToUpper(p)+"_ADDR="+addrs[1+i])
	}
	env = append(env, no.env...)
	abs, err := filepath.Abs(filepath.Join(o.binDir, "macronode"))
	if err != nil {
		return nil, fmt.Errorf("resolve macronode path: %w", err)
	}
	// --data-dir puts the unique temp path in the parent's command line, so
	// that the script's safety net can find every process of this run.
	argv := []string{abs, "run", "--data-dir", filepath.Join(dir, "data")}
	if no.config != "" {
		cfg := filepath.Join(dir, "macronode.yaml")
		if err := os.WriteFile(cfg, []byte(no.config), 0o600); err != nil {
			return nil, fmt.Errorf("write config: %w", err)
		}
		argv = append(argv, "--config", cfg)
	}
	n.started = time.Now()
	p, err := startProc("macronode", argv, env, n.logPath)
	if err != nil {
		return nil, err
	}
	n.proc = p
	return n, nil
}

// startReadyNode starts a node and waits for /readyz 200.
func startReadyNode(ctx context.Context, o *opts, no nodeOpts) (*node, error) {
	n, err := startNode(o, no)
	if err != nil {
		return nil, err
	}
	if _, err := n.waitReady(ctx, 30*time.Second, 5*time.Millisecond); err != nil {
		_ = n.stop()
		return nil, err
	}
	return n, nil
}

func (n *node) url(path string) string { return "http://" + n.admin + path }

// waitReady polls /readyz until 200, failing early if the parent exits.
func (n *node) waitReady(ctx context.Context, timeout, every time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		if getCode(ctx, pollClient, n.url("/readyz")) == http.StatusOK {
			return time.Now(), nil
		}
		if n.proc.exited() {
			return time.Time{}, fmt.Errorf("macronode exited before ready (%v); log: %s", n.proc.err, n.tail())
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("macronode not ready within %s; log: %s", timeout, n.tail())
		}
		if err := sleepCtx(ctx, every); err != nil {
			return time.Time{}, err
		}
	}
}

// stop shuts the parent down with SIGTERM (it drains its children).
func (n *node) stop() error { return n.proc.stop(30 * time.Second) }

// tail returns the last lines of the parent's log, for error messages.
func (n *node) tail() string {
	f, err := os.Open(n.logPath)
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 6 {
			lines = lines[1:]
		}
	}
	return n.logPath + ":\n  " + strings.Join(lines, "\n  ")
}

// svcStatus is the part of /api/v1/status mnbench reads.
type svcStatus struct {
	State         string  `json:"state"`
	PID           int     `json:"pid"`
	Restarts      int     `json:"restarts"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	Ready         bool    `json:"ready"`
	Listen        string  `json:"listen"`
}

type nodeStatus struct {
	Ready    bool                 `json:"ready"`
	Services map[string]svcStatus `json:"services"`
}

func (n *node) status(ctx context.Context) (nodeStatus, error) {
	var st nodeStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url("/api/v1/status"), nil)
	if err != nil {
		return st, fmt.Errorf("status request: %w", err)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("GET /api/v1/status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /api/v1/status: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("decode /api/v1/status: %w", err)
	}
	return st, nil
}

// service returns one service's status, or an error if it is not listed.
func (n *node) service(ctx context.Context, name string) (svcStatus, error) {
	st, err := n.status(ctx)
	if err != nil {
		return svcStatus{}, err
	}
	s, ok := st.Services[name]
	if !ok {
		return svcStatus{}, fmt.Errorf("status lists no service %q", name)
	}
	return s, nil
}

// metrics scrapes /metrics and sums the samples of each metric name whose
// labels contain every one of match (e.g. `service="overlay"`).
func (n *node) metrics(ctx context.Context, match ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url("/metrics"), nil)
	if err != nil {
		return nil, fmt.Errorf("metrics request: %w", err)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		series, val := line[:sp], line[sp+1:]
		ok := true
		for _, m := range match {
			if !strings.Contains(series, m) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		name, _, _ := strings.Cut(series, "{")
		out[name] += v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /metrics: %w", err)
	}
	return out, nil
}
