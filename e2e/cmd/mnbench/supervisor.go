package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// killTimes are the latencies after one kill -9, measured from just before
// the kill syscall.
type killTimes struct {
	child200  time.Duration // the new child's own /readyz answers 200
	parent503 time.Duration // the parent's /readyz first answers 503
	parent200 time.Duration // the parent's /readyz answers 200 again
}

// measureKill SIGKILLs pid and polls, every millisecond and on a new
// connection each time, the child's readyz URL (if not "") for 200 and the
// parent's (if not "") for 503 and then 200. With only503 it stops at the
// parent's 503.
func measureKill(ctx context.Context, pid int, childURL, parentURL string, only503 bool, timeout time.Duration) (killTimes, error) {
	var kt killTimes
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	childDone := make(chan struct{})
	var childErr, parentErr error
	var wg sync.WaitGroup
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return kt, fmt.Errorf("kill -9 %d: %w", pid, err)
	}
	if childURL != "" {
		wg.Go(func() {
			defer close(childDone)
			for {
				if getCode(ctx, pollClient, childURL) == http.StatusOK {
					kt.child200 = time.Since(t0)
					return
				}
				if sleepCtx(ctx, time.Millisecond) != nil {
					childErr = fmt.Errorf("%s: no 200 within %s of the kill", childURL, timeout)
					return
				}
			}
		})
	} else {
		close(childDone)
	}
	if parentURL != "" {
		wg.Go(func() {
			seen503 := false
			for {
				code := getCode(ctx, pollClient, parentURL)
				now := time.Since(t0)
				if code == http.StatusServiceUnavailable && !seen503 {
					seen503, kt.parent503 = true, now
					if only503 {
						return
					}
				}
				if code == http.StatusOK && !only503 {
					select {
					case <-childDone:
						kt.parent200 = now
						return
					default:
						if seen503 {
							kt.parent200 = now
							return
						}
					}
				}
				if sleepCtx(ctx, time.Millisecond) != nil {
					parentErr = fmt.Errorf("%s: did not go 503 (then 200) within %s of the kill (saw 503: %v)", parentURL, timeout, seen503)
					return
				}
			}
		})
	}
	wg.Wait()
	if childErr != nil {
		return kt, childErr
	}
	return kt, parentErr
}

// supervisedConfig is the config file for the kill benchmarks: a high crash
// budget (20 kills in a minute must not trip the circuit breaker) and, when
// stable > 0, a shorter stable_after so that each kill restarts at once.
func supervisedConfig(planes []string, stable time.Duration) string {
	s := "services:\n"
	for _, p := range planes {
		s += "  " + p + ":\n    max_restarts: 1000\n    restart_window: 60s\n"
		if stable > 0 {
			s += "    stable_after: " + stable.String() + "\n"
		}
	}
	return s
}

// stableWait is how long a child must have been up before a kill, so that
// the restart is immediate (not a backoff delay).
func stableWait(o *opts) (time.Duration, string) {
	if o.stable > 0 {
		return o.stable + 300*time.Millisecond,
			fmt.Sprintf("stable_after=%s set in a config file; each kill waits %s of uptime", o.stable, o.stable+300*time.Millisecond)
	}
	return 5*time.Second + 300*time.Millisecond, "stable_after=5s (default); each kill waits 5.3s of uptime"
}

// waitStable waits until service is running, ready, and up for at least
// wait; it returns its pid.
func waitStable(ctx context.Context, n *node, service string, notPID int, wait time.Duration) (int, error) {
	var pid int
	err := eventually(ctx, wait+20*time.Second, service+" running, ready and stable", func() (bool, error) {
		s, err := n.service(ctx, service)
		if err != nil {
			return false, err
		}
		pid = s.PID
		ok := s.State == "running" && s.Ready && s.PID > 0 && s.PID != notPID && s.UptimeSeconds >= wait.Seconds()
		return ok, fmt.Errorf("state %s ready %v pid %d uptime %.2fs", s.State, s.Ready, s.PID, s.UptimeSeconds)
	})
	return pid, err
}

// macronodeKills kills the first plane's child runs times and returns the
// latencies; with only503 it measures the parent's 503 only.
func macronodeKills(ctx context.Context, o *opts, planes []string, runs int, only503 bool) ([]killTimes, error) {
	wait, _ := stableWait(o)
	n, err := startReadyNode(ctx, o, nodeOpts{planes: planes, config: supervisedConfig(planes, o.stable)})
	if err != nil {
		return nil, err
	}
	defer func() { _ = n.stop() }()
	target := planes[0]
	childURL := "http://" + n.listen[target] + "/readyz"
	if only503 {
		childURL = ""
	}
	out := make([]killTimes, 0, runs)
	prev := 0
	for i := range runs {
		pid, err := waitStable(ctx, n, target, prev, wait)
		if err != nil {
			return out, fmt.Errorf("run %d: %w", i+1, err)
		}
		kt, err := measureKill(ctx, pid, childURL, n.url("/readyz"), only503, 30*time.Second)
		if err != nil {
			return out, fmt.Errorf("run %d: %w", i+1, err)
		}
		out = append(out, kt)
		prev = pid
		progress("  run %d/%d: %s", i+1, runs, fmtKill(kt, only503))
	}
	return out, nil
}

func fmtKill(kt killTimes, only503 bool) string {
	if only503 {
		return fmt.Sprintf("parent 503 after %.2fms", ms(kt.parent503))
	}
	return fmt.Sprintf("child ready %.2fms, parent 503 %.2fms, parent ready %.2fms",
		ms(kt.child200), ms(kt.parent503), ms(kt.parent200))
}

func benchRestart(ctx context.Context, o *opts) error {
	runs := o.runsOr(20, 6)
	_, how := stableWait(o)
	t := newTable(o, "Supervisor", "kill -9 svc-storage -> ready again ("+how+")")
	defer t.print()
	var child, parent200, parent503 []float64
	progress("macronode: %d kills of svc-storage", runs)
	kts, err := macronodeKills(ctx, o, []string{"storage"}, runs, false)
	for _, kt := range kts {
		child = append(child, ms(kt.child200))
		parent503 = append(parent503, ms(kt.parent503))
		parent200 = append(parent200, ms(kt.parent200))
	}
	note := ""
	if err != nil {
		note = "incomplete: " + err.Error()
		progress("macronode: %v", err)
	}
	mc := t.add("macronode: kill -> new child /readyz 200", "ms", child, note)
	t.add("macronode: kill -> parent /readyz 503", "ms", parent503, note)
	t.add("macronode: kill -> parent /readyz 200", "ms", parent200, note)

	if ctx.Err() != nil {
		return ctx.Err()
	}
	if o.noRunsv {
		t.skip("runsv: kill -> new child /readyz 200", "-no-runsv")
		return nil
	}
	progress("runsv: %d kills of svc-storage", runs)
	rs, why, err := runsvKills(ctx, o, runs)
	switch {
	case why != "":
		t.skip("runsv: kill -> new child /readyz 200", why)
		return nil
	case err != nil:
		progress("runsv: %v", err)
	}
	rnote := ""
	if err != nil {
		rnote = "incomplete: " + err.Error()
	}
	rr := t.add("runsv: kill -> new child /readyz 200", "ms", rs, rnote)
	t.ratio("ratio macronode/runsv (child /readyz 200)", mc, rr, ">1: macronode slower")
	return nil
}

func benchExit503(ctx context.Context, o *opts) error {
	runs := o.runsOr(20, 6)
	planes := splitList(o.services)
	if len(planes) == 0 {
		return fmt.Errorf("-services is empty")
	}
	_, how := stableWait(o)
	t := newTable(o, "Supervisor", fmt.Sprintf("kill -9 svc-%s -> parent /readyz 503 (planes %v; %s)", planes[0], planes, how))
	defer t.print()
	progress("macronode: %d kills of svc-%s", runs, planes[0])
	kts, err := macronodeKills(ctx, o, planes, runs, true)
	var v []float64
	for _, kt := range kts {
		v = append(v, ms(kt.parent503))
	}
	note := ""
	if err != nil {
		note = "incomplete: " + err.Error()
	}
	t.add("kill -9 svc-"+planes[0]+" -> parent /readyz 503", "ms", v, note)
	return nil
}

func benchColdstart(ctx context.Context, o *opts) error {
	runs := o.runsOr(5, 3)
	t := newTable(o, "Supervisor", "cold start: exec `macronode run` (six planes) -> /readyz 200; then SIGTERM -> exit")
	defer t.print()
	if err := needBins(o.binDir, append([]string{"macronode"}, binNames(allPlanes)...)...); err != nil {
		t.skip("exec -> /readyz 200 (six planes)", err.Error())
		return nil
	}
	var ready, stop []float64
	var firstErr error
	for i := range runs {
		n, err := startNode(o, nodeOpts{planes: allPlanes})
		if err != nil {
			firstErr = err
			break
		}
		at, err := n.waitReady(ctx, 60*time.Second, time.Millisecond)
		if err != nil {
			_ = n.stop()
			firstErr = err
			break
		}
		ready = append(ready, ms(at.Sub(n.started)))
		s := time.Now()
		if err := n.stop(); err != nil {
			firstErr = err
			break
		}
		stop = append(stop, ms(time.Since(s)))
		progress("  run %d/%d: ready after %.1fms, stopped in %.1fms", i+1, runs, ready[len(ready)-1], stop[len(stop)-1])
	}
	note := ""
	if firstErr != nil {
		note = "incomplete: " + firstErr.Error()
	}
	t.add("exec -> /readyz 200 (six planes)", "ms", ready, note)
	t.add("SIGTERM -> parent exited (six planes drained)", "ms", stop, note)
	return nil
}

func binNames(planes []string) []string {
	out := make([]string, len(planes))
	for i, p := range planes {
		out[i] = "svc-" + p
	}
	return out
}

func benchIdle(ctx context.Context, o *opts) error {
	window := o.durOr(o.idle, 60*time.Second, 10*time.Second)
	slices := 6
	if window < 12*time.Second {
		slices = 5
	}
	t := newTable(o, "Supervisor", fmt.Sprintf("idle: the parent with six idle children over %s (CPU: median of %d slices)", window, slices))
	defer t.print()
	if err := needBins(o.binDir, append([]string{"macronode"}, binNames(allPlanes)...)...); err != nil {
		t.skip("parent RSS", err.Error())
		return nil
	}
	n, err := startReadyNode(ctx, o, nodeOpts{planes: allPlanes})
	if err != nil {
		return err
	}
	defer func() { _ = n.stop() }()
	st, err := n.status(ctx)
	if err != nil {
		return err
	}
	var kids []int
	for _, s := range st.Services {
		kids = append(kids, s.PID)
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil { // let start-up work settle
		return err
	}
	pid := n.proc.pid()
	first, err := readProcStat(pid)
	if err != nil {
		return err
	}
	kidsFirst := sumStats(kids)
	var rss, cpuPct []float64
	sliceLen := window / time.Duration(slices)
	prev := first
	start := time.Now()
	for s := range slices {
		for tick := time.Second; ; tick += time.Second {
			end := start.Add(time.Duration(s)*sliceLen + min(tick, sliceLen))
			if err := sleepCtx(ctx, time.Until(end)); err != nil {
				return err
			}
			cur, err := readProcStat(pid)
			if err != nil {
				return err
			}
			rss = append(rss, float64(cur.rssKiB)/1024)
			if tick >= sliceLen {
				cpuPct = append(cpuPct, 100*float64(cur.cpu-prev.cpu)/float64(sliceLen))
				prev = cur
				break
			}
		}
	}
	elapsed := time.Since(start)
	last, err := readProcStat(pid)
	if err != nil {
		return err
	}
	kidsLast := sumStats(kids)
	t.add("parent RSS (VmRSS, sampled every 1s)", "MiB", rss, "")
	t.add("parent CPU (utime+stime)", "% of a core", cpuPct, fmt.Sprintf("total %.0fms over %s", ms(last.cpu-first.cpu), elapsed.Round(time.Second)))
	t.add("six children RSS (sum, at end)", "MiB", []float64{float64(kidsLast.rssKiB) / 1024}, "one sample")
	t.add("six children CPU (sum over the window)", "% of a core",
		[]float64{100 * float64(kidsLast.cpu-kidsFirst.cpu) / float64(elapsed)}, "one window")
	return nil
}

// sumStats adds up RSS and CPU of pids (those that vanished count as 0).
func sumStats(pids []int) procStat {
	var s procStat
	for _, p := range pids {
		if ps, err := readProcStat(p); err == nil {
			s.rssKiB += ps.rssKiB
			s.cpu += ps.cpu
		}
	}
	return s
}
