package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"time"
)

// commandOutput runs name with args and returns its combined output.
func commandOutput(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// benchGateway: a 4 KiB GET /o/{addr} with wrk at 1 and 16 connections,
// straight to svc-storage, through svc-gateway (rate limit off) and through
// nginx proxy_pass with upstream keepalive in front of the same svc-storage.
// The three targets take turns within each run, so machine load hits them
// alike; each row prints its ratio to direct.
func benchGateway(ctx context.Context, o *opts) error {
	runs := o.runsOr(5, 3)
	dur := o.durOr(o.runDur, 3*time.Second, 2*time.Second).Round(time.Second) // wrk takes whole seconds
	dur = max(dur, time.Second)
	t := newTable(o, "Gateway", fmt.Sprintf("4 KiB GET req/s with wrk: direct vs svc-gateway vs nginx proxy_pass (keepalive 64), %d runs of %s", runs, dur))
	defer t.print()
	if err := needBins(o.binDir, "svc-storage", "svc-gateway"); err != nil {
		t.skip("gateway GET", err.Error())
		return nil
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		t.skip("gateway GET", "wrk is not installed (Debian package wrk)")
		return nil
	}
	st, err := startStandalone(ctx, o, "storage")
	if err != nil {
		return err
	}
	defer func() { _ = st.p.stop(10 * time.Second) }()
	gw, err := startStandalone(ctx, o, "gateway", "--rate", "0", "--storage-addr", st.addr)
	if err != nil {
		return err
	}
	defer func() { _ = gw.p.stop(10 * time.Second) }()
	targets := []struct{ name, addr string }{{"direct", st.addr}, {"gateway", gw.addr}}
	if ng, addr, err := startNginx(ctx, o, st.addr); err != nil {
		t.skip("nginx GET", err.Error())
	} else {
		defer func() { _ = ng.stop(10 * time.Second) }()
		targets = append(targets, struct{ name, addr string }{"nginx", addr})
	}
	blob := randBuf(rand.NewChaCha8([32]byte{byte(uniqNonce), 9}), smallBlobSize)
	stamp(blob)
	addr, err := putObject(ctx, "http://"+st.addr, blob)
	if err != nil {
		return err
	}
	for _, c := range smallConcs {
		samples := make([][]float64, len(targets))
		var runErr error
		for r := 0; r < runs && runErr == nil; r++ {
			for i, tg := range targets {
				v, err := wrkRate(ctx, "http://"+tg.addr+"/o/"+addr, c, dur)
				if err != nil {
					runErr = errors.Join(runErr, err)
					continue
				}
				samples[i] = append(samples[i], v)
			}
		}
		rows := make([]row, len(targets))
		for i, tg := range targets {
			rows[i] = t.add(fmt.Sprintf("GET 4KiB c%d %s", c, tg.name), "req/s", samples[i], errNote(runErr))
		}
		for i, tg := range targets[1:] {
			rr := t.ratio(fmt.Sprintf("ratio GET c%d %s/direct", c, tg.name), rows[i+1], rows[0], "")
			progress("GET 4KiB c%d %s: %.0f req/s (%.2fx direct)", c, tg.name, rows[i+1].median, rr.median)
		}
	}
	return nil
}
