package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// healload: a steady client load on svc-storage while its stable child is
// killed with SIGKILL, under macronode (which holds the listening socket
// across the restart) and under runsv (the child binds its own socket, so
// connects are refused until the new one has bound). Every request opens a
// new connection, so each one meets the socket as it is at that moment.

// healClients is the number of concurrent clients of the load.
const healClients = 4

// healPace is the pause between two requests of one client.
const healPace = 2 * time.Millisecond

// reqSample is one request of the load.
type reqSample struct {
	start   time.Time
	took    time.Duration
	failed  bool
	refused bool
}

// loadRecorder keeps every request's sample.
type loadRecorder struct {
	mu      sync.Mutex
	samples []reqSample
}

func (l *loadRecorder) add(s reqSample) {
	l.mu.Lock()
	l.samples = append(l.samples, s)
	l.mu.Unlock()
}

// window returns the samples of requests started in [from, to).
func (l *loadRecorder) window(from, to time.Time) []reqSample {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []reqSample
	for _, s := range l.samples {
		if !s.start.Before(from) && s.start.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// steadyLoad runs healClients clients GETting url until ctx ends; the
// returned func waits for them.
func steadyLoad(ctx context.Context, url string) (*loadRecorder, func()) {
	rec := &loadRecorder{}
	var wg sync.WaitGroup
	for range healClients {
		wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
			for ctx.Err() == nil {
				t0 := time.Now()
				resp, err := c.Get(url)
				s := reqSample{start: t0}
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					s.failed = resp.StatusCode != http.StatusOK
				} else {
					s.failed, s.refused = true, errors.Is(err, syscall.ECONNREFUSED)
				}
				s.took = time.Since(t0)
				if ctx.Err() == nil {
					rec.add(s)
				}
				if sleepCtx(ctx, healPace) != nil {
					return
				}
			}
		})
	}
	return rec, wg.Wait
}

// healRun is what one kill did to the load.
type healRun struct {
	failed, refused float64
	p50, p99, max   float64 // ms, successful requests started in the window
	heal            float64 // ms, kill -> readyURL answers 200
	requests        int
}

// killUnderLoad kills pid, waits until readyURL answers 200 again, and
// reports the requests started from the kill until 100ms after that.
func killUnderLoad(ctx context.Context, rec *loadRecorder, pid int, readyURL string) (healRun, error) {
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return healRun{}, fmt.Errorf("kill -9 %d: %w", pid, err)
	}
	back, err := waitCode(ctx, readyURL, http.StatusOK, time.Millisecond, 30*time.Second)
	if err != nil {
		return healRun{}, err
	}
	end := back.Add(100 * time.Millisecond)
	if err := sleepCtx(ctx, time.Until(end)+healPace+50*time.Millisecond); err != nil {
		return healRun{}, err
	}
	r := healRun{heal: ms(back.Sub(t0))}
	var lat []float64
	for _, s := range rec.window(t0, end) {
		r.requests++
		switch {
		case s.refused:
			r.refused++
			r.failed++
		case s.failed:
			r.failed++
		default:
			lat = append(lat, ms(s.took))
		}
	}
	r.p50, r.p99, r.max = percentile(lat, 50), percentile(lat, 99), percentile(lat, 100)
	return r, nil
}

func benchHealLoad(ctx context.Context, o *opts) error {
	runs := o.runsOr(10, 4)
	wait, how := stableWait(o)
	t := newTable(o, "Supervisor", fmt.Sprintf("kill -9 of a stable svc-storage under a steady load of %d clients (new connection per GET, %s apart; %s)",
		healClients, healPace, how))
	defer t.print()

	progress("macronode: %d kills of svc-storage under load", runs)
	mres, merr := macronodeHealLoad(ctx, o, runs, wait)
	addHealRows(t, "macronode", mres, merr)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if o.noRunsv {
		t.skip("runsv: failed requests per kill", "-no-runsv")
		return nil
	}
	progress("runsv: %d kills of svc-storage under load", runs)
	rres, why, rerr := runsvHealLoad(ctx, o, runs, wait)
	if why != "" {
		t.skip("runsv: failed requests per kill", why)
		return nil
	}
	addHealRows(t, "runsv", rres, rerr)
	return nil
}

func addHealRows(t *table, who string, runs []healRun, err error) {
	note := ""
	if err != nil {
		note = "incomplete: " + err.Error()
		progress("%s: %v", who, err)
	}
	col := func(f func(healRun) float64) []float64 {
		out := make([]float64, 0, len(runs))
		for _, r := range runs {
			out = append(out, f(r))
		}
		return out
	}
	t.add(who+": failed requests per kill", "req", col(func(r healRun) float64 { return r.failed }), note)
	t.add(who+": refused connects per kill", "req", col(func(r healRun) float64 { return r.refused }), note)
	t.add(who+": p50 latency, kill -> ready+100ms", "ms", col(func(r healRun) float64 { return r.p50 }), note)
	t.add(who+": p99 latency, kill -> ready+100ms", "ms", col(func(r healRun) float64 { return r.p99 }), note)
	t.add(who+": kill -> /readyz 200 under the load", "ms", col(func(r healRun) float64 { return r.heal }), note)
	t.add(who+": requests in the window", "req", col(func(r healRun) float64 { return float64(r.requests) }), note)
}

// putBlobDirect stores a small blob on storage at base and returns its address.
func putBlobDirect(ctx context.Context, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/o", strings.NewReader("heal under load"))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := apiClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("store a blob: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("store a blob: %d %s", resp.StatusCode, b)
	}
	_, rest, ok := strings.Cut(string(b), `"address":"`)
	addr, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 {
		return "", fmt.Errorf("store a blob: no address in %s", b)
	}
	return addr, nil
}

func macronodeHealLoad(ctx context.Context, o *opts, runs int, wait time.Duration) ([]healRun, error) {
	n, err := startReadyNode(ctx, o, nodeOpts{planes: []string{"storage"}, config: supervisedConfig([]string{"storage"}, o.stable)})
	if err != nil {
		return nil, err
	}
	defer func() { _ = n.stop() }()
	base := "http://" + n.listen["storage"]
	addr, err := putBlobDirect(ctx, base)
	if err != nil {
		return nil, err
	}
	lctx, stop := context.WithCancel(ctx)
	rec, done := steadyLoad(lctx, base+"/o/"+addr)
	defer func() { stop(); done() }()
	var out []healRun
	prev := 0
	for i := range runs {
		pid, err := waitStable(ctx, n, "storage", prev, wait)
		if err != nil {
			return out, fmt.Errorf("run %d: %w", i+1, err)
		}
		r, err := killUnderLoad(ctx, rec, pid, base+"/readyz")
		if err != nil {
			return out, fmt.Errorf("run %d: %w", i+1, err)
		}
		out = append(out, r)
		prev = pid
		progress("  run %d/%d: %s", i+1, runs, fmtHeal(r))
	}
	return out, nil
}

func runsvHealLoad(ctx context.Context, o *opts, runs int, wait time.Duration) (out []healRun, why string, err error) {
	sv, why, err := startRunsvStorage(o)
	if why != "" || err != nil {
		return nil, why, err
	}
	defer sv.stop()
	base := "http://" + sv.addr
	if _, err := waitCode(ctx, base+"/readyz", http.StatusOK, 5*time.Millisecond, 20*time.Second); err != nil {
		return nil, "", err
	}
	addr, err := putBlobDirect(ctx, base)
	if err != nil {
		return nil, "", err
	}
	lctx, stop := context.WithCancel(ctx)
	rec, done := steadyLoad(lctx, base+"/o/"+addr)
	defer func() { stop(); done() }()
	prev := 0
	for i := range runs {
		var pid int
		werr := eventually(ctx, 20*time.Second, "runsv: svc-storage up", func() (bool, error) {
			pid = runsvPID(sv.dir)
			return pid > 0 && pid != prev && isBinary(pid, "svc-storage") &&
				getCode(ctx, pollClient, base+"/readyz") == 200, fmt.Errorf("pid %d", pid)
		})
		if werr != nil {
			return out, "", fmt.Errorf("run %d: %w", i+1, werr)
		}
		if err := sleepCtx(ctx, wait); err != nil { // the same uptime as under macronode
			return out, "", err
		}
		r, err := killUnderLoad(ctx, rec, pid, base+"/readyz")
		if err != nil {
			return out, "", fmt.Errorf("run %d: %w", i+1, err)
		}
		out = append(out, r)
		prev = pid
		progress("  run %d/%d: %s", i+1, runs, fmtHeal(r))
	}
	return out, "", nil
}

func fmtHeal(r healRun) string {
	return fmt.Sprintf("ready after %.2fms; %d requests, %.0f failed (%.0f refused), p50 %.2fms p99 %.2fms max %.2fms",
		r.heal, r.requests, r.failed, r.refused, r.p50, r.p99, r.max)
}
