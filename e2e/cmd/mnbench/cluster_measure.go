package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"
)

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// addP99 records the 99th percentile of samples as its own row.
func addP99(t *table, name, unit string, samples []float64, note string) {
	if len(samples) == 0 {
		t.skip(name, "no samples")
		return
	}
	lo, hi := minMax(samples)
	t.push(row{section: t.section, name: name, median: percentile(samples, 99), unit: unit, runs: len(samples),
		min: lo, max: hi, note: joinNotes("nearest-rank p99", note)})
}

// randomAddress is a well-formed content address that no node stores.
func randomAddress() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "b3:" + hex.EncodeToString(b)
}

// timedCall sends one request and returns its duration and status.
func timedCall(ctx context.Context, method, url string) (time.Duration, int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	start := time.Now()
	resp, err := dataClient.Do(req)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	d := time.Since(start)
	_ = resp.Body.Close()
	if err != nil {
		return d, resp.StatusCode, b, fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	return d, resp.StatusCode, b, nil
}

// findProvider looks addr up on c's DHT and says whether the answer names
// the DHT peer want.
func findProvider(ctx context.Context, c *clusterNode, addr, query, want string) (time.Duration, bool, error) {
	d, code, b, err := timedCall(ctx, http.MethodGet, c.dhtURL("/dht/providers/"+addr+query))
	if err != nil {
		return d, false, err
	}
	if code != http.StatusOK {
		return d, false, fmt.Errorf("GET /dht/providers on node %d: %d: %s", c.i, code, bytes.TrimSpace(b))
	}
	return d, bytes.Contains(b, []byte(`"peer_id":"`+want+`"`)), nil
}

// measureDHT provides a fresh address on one node at a time (?sync=1:
// answered once the closest peers have the record), then looks it up on
// finders other nodes, as the gateway does (default limit) and with
// ?limit=1 (answered at the first provider).
func measureDHT(ctx context.Context, t *table, cl *cluster, co clusterOpts) error {
	n := len(cl.nodes)
	var prov, find, find1 []float64
	misses, lookups := 0, 0
	var runErr error
	for r := range co.provides {
		p := cl.nodes[r%n]
		addr := randomAddress()
		d, code, b, err := timedCall(ctx, http.MethodPost, p.dhtURL("/dht/providers/"+addr+"?sync=1"))
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("POST /dht/providers?sync=1 on node %d: %d: %s", p.i, code, bytes.TrimSpace(b))
		}
		if err != nil {
			runErr = err
			break
		}
		prov = append(prov, ms(d))
		for f := 1; f <= co.finders; f++ {
			q := cl.nodes[(r+f*n/(co.finders+1))%n]
			for _, lk := range []struct {
				query string
				out   *[]float64
			}{{"", &find}, {"?limit=1", &find1}} {
				d, ok, err := findProvider(ctx, q, addr, lk.query, p.dhtID)
				if err != nil {
					runErr = err
					break
				}
				lookups++
				if !ok {
					misses++
					continue
				}
				*lk.out = append(*lk.out, ms(d))
			}
		}
		if runErr != nil {
			break
		}
	}
	note := errNote(runErr)
	missNote := fmt.Sprintf("%d of %d lookups did not name the provider (not counted)", misses, lookups)
	t.add("provide (POST /dht/providers?sync=1)", "ms", prov, note)
	addP99(t, "provide p99", "ms", prov, note)
	t.add("find-providers (GET /dht/providers, as the gateway asks)", "ms", find, joinNotes(missNote, "target median <= 50 ms"))
	addP99(t, "find-providers p99", "ms", find, "")
	t.add("find-providers ?limit=1", "ms", find1, "answered at the first provider")
	addP99(t, "find-providers ?limit=1 p99", "ms", find1, "")
	return runErr
}

// getResult is one timed GET of a blob.
type getResult struct {
	ttfb, total time.Duration
	source      string
}

// timedGet GETs url into got (which is len(want) long), timing the first
// body byte and the last, then checks the body is exactly want.
func timedGet(ctx context.Context, url string, want, got []byte) (getResult, error) {
	var res getResult
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return res, fmt.Errorf("GET %s: %w", url, err)
	}
	start := time.Now()
	resp, err := dataClient.Do(req)
	if err != nil {
		return res, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	res.source = resp.Header.Get("X-Macronode-Source")
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return res, fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	if _, err := io.ReadFull(resp.Body, got[:1]); err != nil {
		return res, fmt.Errorf("GET %s: first byte: %w", url, err)
	}
	res.ttfb = time.Since(start)
	if _, err := io.ReadFull(resp.Body, got[1:]); err != nil {
		return res, fmt.Errorf("GET %s: body: %w", url, err)
	}
	res.total = time.Since(start)
	if k, err := resp.Body.Read(make([]byte, 1)); k != 0 || !errors.Is(err, io.EOF) {
		return res, fmt.Errorf("GET %s: body longer than %d bytes", url, len(want))
	}
	if !bytes.Equal(got, want) {
		return res, fmt.Errorf("GET %s: 200 with %d bytes that are not the blob", url, len(got))
	}
	return res, nil
}

// measureFetch PUTs blobs on node 1, waits until node N's DHT names node 1
// as their provider, GETs each once from node N's gateway (the remote
// fetch: verified and stored before the first byte is sent), streams it
// once through node N's overlay API from node 1, then GETs it from node
// 1's gateway (local).
func measureFetch(ctx context.Context, t *table, cl *cluster, co clusterOpts) error {
	src, dst := cl.nodes[0], cl.nodes[len(cl.nodes)-1]
	if src.id == "" || src.dhtID == "" {
		return errors.New("node 1's ids are unknown (convergence phase failed early)")
	}
	rng := mrand.NewChaCha8([32]byte{'m', 'n', 'b'})
	want := randBuf(rng, co.blobSize)
	got := make([]byte, len(want))
	var fs fetchSamples
	var runErr error
	for range co.blobs {
		stamp(want)
		if runErr = fs.fetchOne(ctx, src, dst, co.localGets, want, got); runErr != nil {
			break
		}
	}
	note := errNote(runErr)
	size := fmtSize(len(want))
	t.add("announce visible: POST /o on node 1 -> node N's DHT names it", "ms", fs.visible, joinNotes("gateway announce queue + provide", note))
	rr := t.add("cross-node GET "+size+" (node N <- node 1, first GET)", "MB/s", fs.remote, "whole blob fetched and verified before the first byte")
	t.add("cross-node GET time to first byte", "ms", fs.remoteTTFB, "")
	t.add("overlay stream "+size+" node N <- node 1 (GET /overlay/blobs)", "MB/s", fs.overlay, "OAP/1 over libp2p alone: no lookup, no spool, no gateway")
	lr := t.add("local GET "+size+" on node 1 (same blob)", "MB/s", fs.local, fmt.Sprintf("%d per blob", co.localGets))
	t.add("local GET time to first byte", "ms", fs.localTTFB, "")
	t.ratio("cross-node / local GET", rr, lr, "target >= 0.5x")
	return runErr
}

// fetchSamples are the samples of measureFetch: ms, or MB/s for remote and local.
type fetchSamples struct {
	visible, remote, remoteTTFB, local, localTTFB, overlay []float64
}

// fetchOne does one blob: PUT on src, wait for the announce, one remote GET
// on dst, localGets local GETs on src.
func (fs *fetchSamples) fetchOne(ctx context.Context, src, dst *clusterNode, localGets int, want, got []byte) error {
	mb := float64(len(want)) / 1e6
	addr, err := putObject(ctx, src.gw(), want)
	if err != nil {
		return err
	}
	put := time.Now()
	err = eventually(ctx, 30*time.Second, "node "+fmt.Sprint(dst.i)+" finds node 1 as provider", func() (bool, error) {
		_, ok, err := findProvider(ctx, dst, addr, "?limit=1", src.dhtID)
		return ok, err
	})
	if err != nil {
		return err
	}
	fs.visible = append(fs.visible, ms(time.Since(put)))
	res, err := timedGet(ctx, dst.gw()+"/o/"+addr, want, got)
	if err != nil {
		return err
	}
	if res.source != "peer "+src.id {
		return fmt.Errorf("node %d's first GET says X-Macronode-Source %q, want %q", dst.i, res.source, "peer "+src.id)
	}
	fs.remote = append(fs.remote, mb/res.total.Seconds())
	fs.remoteTTFB = append(fs.remoteTTFB, ms(res.ttfb))
	// The same transfer without the gateway and the spool into storage:
	// node N's overlay streams the blob from node 1's over OAP/1.
	if res, err = timedGet(ctx, dst.overlayURL("/overlay/blobs/"+addr+"?from="+src.id), want, got); err != nil {
		return err
	}
	fs.overlay = append(fs.overlay, mb/res.total.Seconds())
	for range localGets {
		res, err := timedGet(ctx, src.gw()+"/o/"+addr, want, got)
		if err != nil {
			return err
		}
		if res.source != "local" {
			return fmt.Errorf("node 1's GET says X-Macronode-Source %q, want local", res.source)
		}
		fs.local = append(fs.local, mb/res.total.Seconds())
		fs.localTTFB = append(fs.localTTFB, ms(res.ttfb))
	}
	return nil
}

// fmtSize prints n bytes as MiB or KiB when it divides evenly.
func fmtSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// measureRSS reads VmRSS of every overlay and DHT child, and of every
// process of the cluster, from /proc.
func measureRSS(ctx context.Context, t *table, cl *cluster) error {
	var overlay, dht []float64
	var all, peak procStat
	var missing []string // children without a pid (restarting) or gone
	for _, c := range cl.nodes {
		st, err := c.status(ctx)
		if err != nil {
			return fmt.Errorf("node %d: %w", c.i, err)
		}
		pids := []int{c.proc.pid()}
		for _, name := range allPlanes {
			s, ok := st.Services[name]
			if !ok || s.PID == 0 {
				missing = append(missing, fmt.Sprintf("node %d %s", c.i, name))
				continue
			}
			pids = append(pids, s.PID)
			ps, err := readProcStat(s.PID)
			if err != nil {
				missing = append(missing, fmt.Sprintf("node %d %s", c.i, name))
				continue
			}
			switch name {
			case "overlay":
				overlay = append(overlay, float64(ps.rssKiB)/1024)
			case "dht":
				dht = append(dht, float64(ps.rssKiB)/1024)
			}
		}
		for _, p := range pids {
			if ps, err := readProcStat(p); err == nil {
				all.rssKiB += ps.rssKiB
				peak.rssKiB += ps.hwmKiB
			}
		}
	}
	sum := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s
	}
	when := "VmRSS after the fetches"
	if len(missing) > 0 {
		when += fmt.Sprintf("; %d children not running, not counted: %s", len(missing), strings.Join(missing, ", "))
	}
	t.add("overlay child RSS (per child)", "MiB", overlay, when)
	t.add("overlay children RSS (sum)", "MiB", []float64{sum(overlay)}, fmt.Sprintf("%d children", len(overlay)))
	t.add("dht child RSS (per child)", "MiB", dht, when)
	t.add("dht children RSS (sum)", "MiB", []float64{sum(dht)}, fmt.Sprintf("%d children", len(dht)))
	t.add("every process RSS (sum)", "MiB", []float64{float64(all.rssKiB) / 1024},
		fmt.Sprintf("%d parents + %d children; budget 8 GiB", len(cl.nodes), 6*len(cl.nodes)-len(missing)))
	t.add("every process peak RSS (sum of VmHWM)", "MiB", []float64{float64(peak.rssKiB) / 1024}, "an upper bound of the peak")
	return nil
}
