package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// mailboxlong registers itself here rather than in main.go's table, which
// every section edits.
func init() {
	commands["mailboxlong"] = command{"steady send/ack for 10 min: mailbox log disk size vs live data", benchMailboxLong}
}

// benchMailboxLong runs a steady send/receive/ack load against svc-mailbox
// with a standing backlog, and reports the log's disk size against its live
// data: at the end and the worst sample during the run (goal: at most 2x).
// 10 minutes; 30 s with BENCH_QUICK=1.
func benchMailboxLong(ctx context.Context, o *opts) error {
	const (
		clients = 16
		size    = 1024
		backlog = 20000 // messages kept in the box the whole run (~20 MiB)
	)
	dur := o.durOr(o.runDur, 10*time.Minute, 30*time.Second)
	t := newTable(o, "Mailbox log", fmt.Sprintf("steady send+receive+ack for %s at %d clients, %d B messages, %d-message backlog: log disk size vs live data (goal <= 2x)",
		dur, clients, size, backlog))
	defer t.print()
	base, why := startMailbox(ctx, o)
	if why != "" {
		t.skip("steady msgs/s", why)
		return nil
	}
	logDir := filepath.Join(o.tmp, "mailbox-data", "log")
	rng := rand.NewChaCha8([32]byte{3, byte(uniqNonce)})
	body := randBuf(rng, size)
	const box = "steady"
	progress("mailboxlong: filling a backlog of %d messages", backlog)
	var filled atomic.Int64
	if _, err := cycleRun(ctx, clients, time.Hour, func(int) (func() error, func(), error) {
		return func() error {
			if filled.Add(1) > backlog {
				return errDone
			}
			return mbSendOnly(ctx, post, base, box, body)
		}, func() {}, nil
	}); err != nil && !errors.Is(err, errDone) {
		return err
	}
	var worst float64
	sample := func() {
		disk := dirBytes(logDir)
		m, err := scrape(ctx, base+"/metrics")
		if err == nil && m["macronode_mailbox_live_bytes"] > 0 {
			worst = max(worst, float64(disk)/m["macronode_mailbox_live_bytes"])
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				sample()
			}
		}
	}()
	progress("mailboxlong: steady load for %s", dur)
	rate, err := cycleRun(ctx, clients, dur, func(int) (func() error, func(), error) {
		return func() error { return mailboxCycle(ctx, post, base, box, body) }, func() {}, nil
	})
	close(stop)
	<-done
	t.add("steady msgs/s", "msgs/s", []float64{rate}, errNote(err))
	if err != nil {
		return err
	}
	m, err := scrape(ctx, base+"/metrics")
	if err != nil {
		t.skip("disk / live data at the end", err.Error())
		return nil
	}
	disk, live := float64(dirBytes(logDir)), m["macronode_mailbox_live_bytes"]
	t.add("log disk size at the end", "MiB", []float64{disk / (1 << 20)}, "")
	t.add("live data at the end", "MiB", []float64{live / (1 << 20)}, "")
	if live > 0 {
		t.add("disk / live data at the end", "x", []float64{disk / live}, "goal <= 2")
	}
	t.add("disk / live data, worst 1 s sample", "x", []float64{worst}, "goal <= 2; the active segment counts")
	t.add("segments deleted by compaction", "count", []float64{m["macronode_mailbox_compactions_total"]}, "")
	return nil
}

var errDone = errors.New("done")

// mbSendOnly sends one (freshly stamped) message to box with do.
func mbSendOnly(ctx context.Context, do postFunc, base, box string, body []byte) error {
	stamp(body)
	resp, err := do(ctx, base+"/mailboxes/"+box+"/messages", "application/octet-stream", body)
	if err != nil {
		return err
	}
	if resp.code != http.StatusCreated {
		return fmt.Errorf("send: %d %s", resp.code, resp.body)
	}
	return nil
}

// dirBytes sums the sizes of the files under dir (0 if it is missing).
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// scrape reads a Prometheus text page into name -> value (unlabelled
// samples, and the sum of labelled ones).
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics request: %w", err)
	}
	resp, err := dataClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		sp := strings.LastIndexByte(line, ' ')
		if line == "" || line[0] == '#' || sp < 0 {
			continue
		}
		name := line[:sp]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		if v, err := strconv.ParseFloat(line[sp+1:], 64); err == nil {
			out[name] += v
		}
	}
	return out, sc.Err()
}
