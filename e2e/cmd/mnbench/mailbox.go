package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// cycleRun runs conc workers doing one cycle (send, receive, ack) at a
// time until dur has passed, and returns completed cycles per second.
func cycleRun(ctx context.Context, conc int, dur time.Duration, newWorker func(w int) (cycle func() error, done func(), err error)) (float64, error) {
	var cycles atomic.Int64
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) { errOnce.Do(func() { firstErr = err }) }
	workers := make([]func() error, conc)
	for w := range conc {
		c, done, err := newWorker(w)
		if err != nil {
			return 0, err
		}
		defer done()
		workers[w] = c
	}
	var wg sync.WaitGroup
	start := time.Now()
	for _, cycle := range workers {
		wg.Go(func() {
			for time.Since(start) < dur && ctx.Err() == nil {
				if err := cycle(); err != nil {
					fail(err)
					return
				}
				cycles.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(cycles.Load()) / time.Since(start).Seconds(), nil
}

// mailboxCycle sends one message to box, receives one (any worker's), and
// acks it, with do.
func mailboxCycle(ctx context.Context, do postFunc, base, box string, body []byte) error {
	if err := mbSendOnly(ctx, do, base, box, body); err != nil {
		return err
	}
	for {
		resp, err := do(ctx, base+"/mailboxes/"+box+"/receive?max=1&visibility=30s&wait=1s", "", nil)
		if err != nil {
			return err
		}
		if resp.code != http.StatusOK {
			return fmt.Errorf("receive: %d %s", resp.code, resp.body)
		}
		var got struct {
			Messages []struct {
				Receipt string `json:"receipt"`
				Body    []byte `json:"body"` // standard base64, decoded by encoding/json
			} `json:"messages"`
		}
		if err := json.Unmarshal(resp.body, &got); err != nil {
			return fmt.Errorf("receive: decode %q: %w", resp.body, err)
		}
		if len(got.Messages) == 0 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // another worker took it: ours is on its way
		}
		m := got.Messages[0]
		if len(m.Body) != len(body) {
			return fmt.Errorf("receive: body of %d bytes, sent %d", len(m.Body), len(body))
		}
		ack, _ := json.Marshal(map[string][]string{"receipts": {m.Receipt}})
		resp, err = do(ctx, base+"/mailboxes/"+box+"/ack", "application/json", ack)
		if err != nil {
			return err
		}
		var res struct {
			Acked int `json:"acked"`
		}
		if resp.code != http.StatusOK || json.Unmarshal(resp.body, &res) != nil || res.Acked != 1 {
			return fmt.Errorf("ack: %d %s", resp.code, resp.body)
		}
		return nil
	}
}

type httpResp struct {
	code int
	body []byte
}

func post(ctx context.Context, url, ctype string, body []byte) (httpResp, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return httpResp{}, fmt.Errorf("request: %w", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := dataClient.Do(req)
	if err != nil {
		return httpResp{}, fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return httpResp{}, fmt.Errorf("POST %s: read: %w", url, err)
	}
	return httpResp{code: resp.StatusCode, body: b}, nil
}

// redisCycle is the Redis reliable-queue pattern: LPUSH, BLMOVE to a
// processing list, LREM from it once handled.
func redisCycle(rc *respConn, q, proc string, body []byte) error {
	stamp(body)
	if _, err := rc.do([]byte("LPUSH"), []byte(q), body); err != nil {
		return err
	}
	for {
		rep, err := rc.cmd("BLMOVE", q, proc, "RIGHT", "LEFT", "1")
		if err != nil {
			return err
		}
		if rep.null {
			continue // timed out: another client took ours, its message is coming
		}
		if len(rep.str) != len(body) {
			return fmt.Errorf("BLMOVE: %d bytes, pushed %d", len(rep.str), len(body))
		}
		rem, err := rc.do([]byte("LREM"), []byte(proc), []byte("1"), rep.str)
		if err != nil {
			return err
		}
		if rem.num != 1 {
			return fmt.Errorf("LREM removed %d", rem.num)
		}
		return nil
	}
}

var redisVersion = regexp.MustCompile(`v=(\d+)\.(\d+)\.(\d+)`)

// startRedis runs redis-server with AOF and fsync on every write; why is
// non-empty when Redis cannot be used.
func startRedis(ctx context.Context, o *opts) (addr, note, why string) {
	if o.redis == "" {
		return "", "", "-redis is empty"
	}
	bin, err := exec.LookPath(o.redis)
	if err != nil {
		return "", "", o.redis + " not found (install redis-server)"
	}
	out, _ := exec.CommandContext(ctx, bin, "--version").Output()
	m := redisVersion.FindStringSubmatch(string(out))
	if m == nil {
		return "", "", fmt.Sprintf("cannot read the version of %s: %q", bin, out)
	}
	maj, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if maj < 6 || maj == 6 && minor < 2 {
		return "", "", "Redis " + strings.TrimPrefix(m[0], "v=") + " has no BLMOVE (needs >= 6.2)"
	}
	note = "Redis " + strings.TrimPrefix(m[0], "v=") + ", appendonly yes, appendfsync always"
	addrs, err := freeAddrs(1)
	if err != nil {
		return "", "", err.Error()
	}
	dir := filepath.Join(o.tmp, "redis")
	port := addrs[0][strings.LastIndexByte(addrs[0], ':')+1:]
	argv := []string{bin, "--port", port, "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
		"--protected-mode", "yes", "--loglevel", "warning"}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Sprintf("make %s: %v", dir, err)
	}
	p, err := startProc("redis-server", argv, nil, filepath.Join(o.tmp, "redis.log"))
	if err != nil {
		return "", "", err.Error()
	}
	err = eventually(ctx, 15*time.Second, "redis PING", func() (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("redis-server exited: %v (see %s)", p.err, filepath.Join(o.tmp, "redis.log"))
		}
		rc, err := dialRESP(addrs[0], time.Second)
		if err != nil {
			return false, err
		}
		defer rc.Close()
		rep, err := rc.cmd("PING")
		return err == nil && string(rep.str) == "PONG", err
	})
	if err != nil {
		return "", "", err.Error()
	}
	return addrs[0], note, ""
}

// mbPath is one way to reach svc-mailbox: directly or through the gateway.
type mbPath struct{ name, base string }

func benchMailbox(ctx context.Context, o *opts) error {
	sizes := splitList(o.msgSizes)
	clients, err := parseInts(o.clients)
	if err != nil {
		return err
	}
	runs := o.runsOr(3, 2)
	dur := o.durOr(o.runDur, 1500*time.Millisecond, time.Second)
	var paths []mbPath
	var mbWhy string
	// The gateway's per-client rate limit is for the public; one load
	// generator on loopback must not hit it.
	n, err := startReadyNode(ctx, o, nodeOpts{planes: []string{"gateway", "mailbox"},
		config: "services:\n  gateway:\n    args: [\"--rate\", \"0\"]\n"})
	if err != nil {
		mbWhy = err.Error()
		progress("svc-mailbox: skipped: %s", mbWhy)
		paths = []mbPath{{"svc-mailbox", ""}, {"gateway", ""}}
	} else {
		defer func() { _ = n.stop() }()
		paths = []mbPath{{"svc-mailbox", "http://" + n.listen["mailbox"]}, {"gateway", "http://" + n.listen["gateway"]}}
	}
	redisAddr, redisNote, redisWhy := startRedis(ctx, o)
	if redisWhy != "" {
		progress("redis: skipped: %s", redisWhy)
		redisNote = "Redis skipped"
	}
	t := newTable(o, "Mailbox", fmt.Sprintf("durable send+receive+ack per second (one message = one cycle: svc-mailbox send, receive max=1, ack, direct and through the gateway with its rate limit off; Redis LPUSH, BLMOVE, LREM; batch rows: %d messages per request or pipeline), %d runs of %s each; %s",
		batchSize, runs, dur, redisNote))
	g := newGrid("Mailbox at a glance: msgs/s medians; (x / Redis)", "svc-mailbox", "gateway", "Redis")
	defer func() { t.print(); g.print() }()
	rng := rand.NewChaCha8([32]byte{2, byte(uniqNonce)})
	for _, name := range sizes {
		size, err := parseSize(name)
		if err != nil {
			return err
		}
		var cases []mbCase
		for _, c := range clients {
			label := fmt.Sprintf("%s, %d clients", name, c)
			if c == 1 {
				label = name + ", 1 client"
			}
			cases = append(cases, mbCase{label: label, clients: c})
		}
		cases = append(cases, mbCase{label: fmt.Sprintf("%s, %d clients, batches of %d", name, batchClients, batchSize),
			clients: batchClients, batch: true})
		for _, k := range cases {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			bodies := make([][]byte, k.clients)
			for w := range bodies {
				bodies[w] = randBuf(rng, size)
			}
			var rd row
			if redisWhy != "" {
				rd = t.skip("redis "+k.label, redisWhy)
			} else {
				samples, err := repeat(runs, func() (float64, error) { return redisRun(ctx, redisAddr, k, dur, name, bodies) })
				rd = t.add("redis "+k.label, "msgs/s", samples, errNote(err))
				progress("  redis %s: %.0f msgs/s", k.label, rd.median)
			}
			g.set(k.label, "Redis", rd, nil)
			for _, p := range paths {
				var mb row
				if mbWhy != "" {
					mb = t.skip(p.name+" "+k.label, mbWhy)
				} else {
					samples, err := repeat(runs, func() (float64, error) { return mailboxRun(ctx, p.base, k, dur, name, bodies) })
					mb = t.add(p.name+" "+k.label, "msgs/s", samples, errNote(err))
					progress("  %s %s: %.0f msgs/s", p.name, k.label, mb.median)
				}
				if redisWhy != "" {
					g.set(k.label, p.name, mb, nil)
					continue
				}
				ratio := t.ratio("ratio "+p.name+"/redis "+k.label, mb, rd, "")
				g.set(k.label, p.name, mb, &ratio)
			}
		}
	}
	return nil
}

// mbCase is one row group: clients, one message or batches per cycle.
type mbCase struct {
	label   string
	clients int
	batch   bool
}

var mbRun atomic.Int64 // makes every run's box or queue name unique

// mailboxRun measures msgs/s of one case against base.
func mailboxRun(ctx context.Context, base string, k mbCase, dur time.Duration, size string, bodies [][]byte) (float64, error) {
	box := fmt.Sprintf("bench-%s-c%d-r%d", size, k.clients, mbRun.Add(1))
	per := 1.0
	if k.batch {
		per = batchSize
	}
	rate, err := cycleRun(ctx, k.clients, dur, func(w int) (func() error, func(), error) {
		hc, err := newHTTPConn(base, 2*time.Minute)
		if err != nil {
			return nil, nil, err
		}
		done := func() { _ = hc.Close() }
		if k.batch {
			return func() error { return mailboxBatchCycle(ctx, hc.post, base, box, bodies[w]) }, done, nil
		}
		return func() error { return mailboxCycle(ctx, hc.post, base, box, bodies[w]) }, done, nil
	})
	return rate * per, err
}

// redisRun measures msgs/s of one case against Redis.
func redisRun(ctx context.Context, addr string, k mbCase, dur time.Duration, size string, bodies [][]byte) (float64, error) {
	q := fmt.Sprintf("bench:%s:c%d:r%d", size, k.clients, mbRun.Add(1))
	per := 1.0
	if k.batch {
		per = batchSize
	}
	rate, err := cycleRun(ctx, k.clients, dur, func(w int) (func() error, func(), error) {
		rc, err := dialRESP(addr, 10*time.Second)
		if err != nil {
			return nil, nil, err
		}
		if k.batch {
			return func() error { return redisBatchCycle(rc, q, q+":processing", bodies[w]) }, func() { _ = rc.Close() }, nil
		}
		return func() error { return redisCycle(rc, q, q+":processing", bodies[w]) }, func() { _ = rc.Close() }, nil
	})
	return rate * per, err
}

func joinNotes(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}

// startMailbox runs svc-mailbox alone (no parent) on a fresh data dir; why
// is non-empty when it cannot run.
func startMailbox(ctx context.Context, o *opts) (base, why string) {
	if err := needBins(o.binDir, "svc-mailbox"); err != nil {
		return "", err.Error()
	}
	addrs, err := freeAddrs(1)
	if err != nil {
		return "", err.Error()
	}
	bin, err := filepath.Abs(filepath.Join(o.binDir, "svc-mailbox"))
	if err != nil {
		return "", err.Error()
	}
	log := filepath.Join(o.tmp, "svc-mailbox.log")
	p, err := startProc("svc-mailbox", []string{bin, "--listen", addrs[0],
		"--data-dir", filepath.Join(o.tmp, "mailbox-data"), "--log-level", "warn"}, nil, log)
	if err != nil {
		return "", err.Error()
	}
	base = "http://" + addrs[0]
	if _, err := waitCode(ctx, base+"/readyz", http.StatusOK, 5*time.Millisecond, 20*time.Second); err != nil {
		_ = p.stop(5 * time.Second)
		return "", fmt.Sprintf("svc-mailbox not ready (log %s): %v", log, err)
	}
	return base, ""
}
