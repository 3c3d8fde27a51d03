package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// dataClient carries bulk traffic: keep-alive, enough idle connections for
// every worker.
var dataClient = &http.Client{
	Timeout: 5 * time.Minute,
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 128, DisableCompression: true,
		ResponseHeaderTimeout: 2 * time.Minute},
}

// uniq makes every stored object distinct (a deduplicated PUT would write
// nothing and fake the figure): a per-process nonce plus a global sequence.
var (
	uniqNonce = rand.Uint64()
	uniqSeq   atomic.Uint64
)

func stamp(buf []byte) {
	binary.LittleEndian.PutUint64(buf[0:8], uniqNonce)
	binary.LittleEndian.PutUint64(buf[8:16], uniqSeq.Add(1))
}

// randBuf returns n pseudo-random bytes (never less than 16, for stamp).
func randBuf(r *rand.ChaCha8, n int) []byte {
	b := make([]byte, max(n, 16))
	_, _ = r.Read(b)
	return b[:max(n, 16)]
}

// timedRun runs conc workers calling op(worker) until dur has passed or
// capBytes have moved (each worker does at least one op), and returns MB/s
// (10^6 bytes, as `go test -bench` reports).
func timedRun(ctx context.Context, conc int, dur time.Duration, capBytes int64, size int, op func(w int) error) (float64, error) {
	var total atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			for i := 0; ; i++ {
				if i > 0 && (time.Since(start) >= dur || total.Load()+int64(size) > capBytes || ctx.Err() != nil) {
					return
				}
				if err := op(w); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				total.Add(int64(size))
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(total.Load()) / time.Since(start).Seconds() / 1e6, nil
}

// repeat runs measure runs times and returns the samples (stopping at the
// first error, which it returns beside what it has).
func repeat(runs int, measure func() (float64, error)) ([]float64, error) {
	var out []float64
	for range runs {
		v, err := measure()
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

func putObject(ctx context.Context, base string, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/o", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("PUT request: %w", err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := dataClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST %s/o: %w", base, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST %s/o (%d bytes): %s (want 201 for new content): %s", base, len(body), resp.Status, strings.TrimSpace(string(b)))
	}
	var out struct {
		Address string `json:"address"`
		Size    int64  `json:"size"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Address == "" || out.Size != int64(len(body)) {
		return "", fmt.Errorf("POST %s/o: bad answer %q", base, b)
	}
	return out.Address, nil
}

func getObject(ctx context.Context, base, addr string, size int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/o/"+addr, nil)
	if err != nil {
		return fmt.Errorf("GET request: %w", err)
	}
	resp, err := dataClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s/o/%s: %w", base, addr, err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK || err != nil || n != int64(size) {
		return fmt.Errorf("GET %s/o/%s: %s, %d of %d bytes (%v)", base, addr, resp.Status, n, size, err)
	}
	return nil
}

// writeFsync is the durability baseline: create, write, fsync, close.
func writeFsync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return f.Close()
}

// parseSize reads "4KiB", "1MiB", "64MiB", "256B" or a plain byte count.
func parseSize(s string) (int, error) {
	units := []struct {
		suf string
		mul int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suf); ok {
			n, err := strconv.Atoi(num)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return n * u.mul, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func freeBytes(dir string) int64 {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return -1
	}
	return int64(st.Bavail) * st.Bsize
}

func benchStorage(ctx context.Context, o *opts) error {
	sizes := splitList(o.sizes)
	concs, err := parseInts(o.conc)
	if err != nil {
		return err
	}
	runs := o.runsOr(5, 2)
	dur := o.durOr(o.runDur, 400*time.Millisecond, 250*time.Millisecond)
	t := newTable(o, "Storage", fmt.Sprintf("PUT/GET throughput (MB/s = 10^6 B/s), %d runs of %s each, unique random content per PUT", runs, dur))
	g := newGrid("Storage at a glance: MB/s medians; (PUT / write+fsync), (GET / BLAKE3 one core)",
		"write+fsync", "PUT direct", "PUT gateway", "GET direct", "GET gateway", "BLAKE3")
	defer func() { t.print(); g.print() }()
	planes := []string{"storage", "index", "mailbox", "gateway"}
	if err := needBins(o.binDir, append([]string{"macronode"}, binNames(planes)...)...); err != nil {
		t.skip("storage throughput", err.Error())
		return nil
	}
	hash, hashNote := hashRates(ctx, o, sizes)
	rng := rand.NewChaCha8([32]byte{byte(uniqNonce), byte(uniqNonce >> 8)})
	for _, name := range sizes {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		size, err := parseSize(name)
		if err != nil {
			return err
		}
		hr := t.add("BLAKE3 hash "+name, "MB/s", hash[name], hashNote)
		maxConc := 0
		for _, c := range concs {
			maxConc = max(maxConc, c)
		}
		putCap := func(c int) int64 { return max(128<<20, int64(c*size)) }
		need := int64(2 << 30)
		for _, c := range concs {
			need += int64(runs) * 2 * putCap(c)
		}
		if free := freeBytes(o.tmp); free >= 0 && free < need {
			t.skip("size "+name, fmt.Sprintf("needs ~%d MiB free in %s, has %d MiB", need>>20, o.tmp, free>>20))
			continue
		}
		progress("storage %s: node with %v", name, planes)
		// The gateway's per-client rate limit (1000 req/s by default) is
		// for the public; one load generator on loopback must not hit it.
		cfg := "services:\n  gateway:\n    args: [\"--rate\", \"0\"]\n"
		n, err := startReadyNode(ctx, o, nodeOpts{planes: planes, config: cfg})
		if err != nil {
			return err
		}
		paths := []struct{ name, base string }{
			{"direct", "http://" + n.listen["storage"]},
			{"gateway", "http://" + n.listen["gateway"]},
		}
		bufs := make([][]byte, maxConc)
		for w := range bufs {
			bufs[w] = randBuf(rng, size)
		}
		for _, c := range concs {
			cs := fmt.Sprintf("%s c%d", name, c)
			wfDir := filepath.Join(o.tmp, "wf")
			if err := os.MkdirAll(wfDir, 0o700); err != nil {
				return fmt.Errorf("make %s: %w", wfDir, err)
			}
			seq := atomic.Int64{}
			samples, err := repeat(runs, func() (float64, error) {
				defer func() { _ = os.RemoveAll(wfDir); _ = os.MkdirAll(wfDir, 0o700) }()
				return timedRun(ctx, c, dur, putCap(c), size, func(w int) error {
					stamp(bufs[w])
					return writeFsync(filepath.Join(wfDir, strconv.FormatInt(seq.Add(1), 10)), bufs[w][:size])
				})
			})
			wf := t.add("write+fsync "+cs, "MB/s", samples, errNote(err))
			g.set(cs, "write+fsync", wf, nil)
			g.set(cs, "BLAKE3", hr, nil)
			progress("  write+fsync %s: %.1f MB/s", cs, wf.median)
			for _, p := range paths {
				samples, err := repeat(runs, func() (float64, error) {
					return timedRun(ctx, c, dur, putCap(c), size, func(w int) error {
						stamp(bufs[w])
						_, err := putObject(ctx, p.base, bufs[w][:size])
						return err
					})
				})
				put := t.add("PUT "+cs+" "+p.name, "MB/s", samples, errNote(err))
				progress("  PUT %s %s: %.1f MB/s", cs, p.name, put.median)
				pr := t.ratio("ratio PUT/write+fsync "+cs+" "+p.name, put, wf, "")
				g.set(cs, "PUT "+p.name, put, &pr)
			}
			// GET: one stored object per worker, read back whole, verified by the plane.
			addrs := make([]string, c)
			for w := range c {
				stamp(bufs[w])
				if addrs[w], err = putObject(ctx, paths[0].base, bufs[w][:size]); err != nil {
					return err
				}
			}
			for _, p := range paths {
				samples, err := repeat(runs, func() (float64, error) {
					return timedRun(ctx, c, dur, 1<<30, size, func(w int) error {
						return getObject(ctx, p.base, addrs[w], size)
					})
				})
				get := t.add("GET "+cs+" "+p.name, "MB/s", samples, errNote(err))
				progress("  GET %s %s: %.1f MB/s", cs, p.name, get.median)
				gr := t.ratio("ratio GET/BLAKE3 "+cs+" "+p.name, get, hr, "hash rate is one core")
				g.set(cs, "GET "+p.name, get, &gr)
			}
		}
		if err := n.stop(); err != nil {
			progress("stop node: %v", err)
		}
		_ = os.RemoveAll(n.dir)
	}
	return nil
}

func errNote(err error) string {
	if err == nil {
		return ""
	}
	return "incomplete: " + err.Error()
}
