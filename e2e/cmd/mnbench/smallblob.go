package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// smallBlobSize is the object size of the smallput and gateway sections.
const smallBlobSize = 4 << 10

// smallConcs are the client counts of both sections (issue #13: 1 and 16).
var smallConcs = []int{1, 16}

// standalone is one svc-* binary run by hand (no parent): the smallput and
// gateway sections measure the plane and the proxy, not the supervisor.
type standalone struct {
	p    *proc
	addr string
}

// startStandalone runs bin/svc-<plane> on a free loopback port with args and
// waits until its /readyz answers 200.
func startStandalone(ctx context.Context, o *opts, plane string, args ...string) (*standalone, error) {
	addrs, err := freeAddrs(1)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.tmp, plane)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("make %s: %w", dir, err)
	}
	argv := append([]string{filepath.Join(o.binDir, "svc-"+plane), "--listen", addrs[0],
		"--data-dir", filepath.Join(dir, "data"), "--log-level", "warn"}, args...)
	p, err := startProc("svc-"+plane, argv, nil, filepath.Join(dir, "log"))
	if err != nil {
		return nil, err
	}
	s := &standalone{p: p, addr: addrs[0]}
	if _, err := waitCode(ctx, "http://"+s.addr+"/readyz", 200, 20*time.Millisecond, 15*time.Second); err != nil {
		_ = p.stop(5 * time.Second)
		return nil, fmt.Errorf("svc-%s: %w", plane, err)
	}
	return s, nil
}

// durableWrite is the small-blob baseline of issue #13: the durable steps a
// PUT takes, without HTTP or hashing: a temp file in dir, write, fsync,
// close, rename to its final name in the same dir, fsync the dir.
func durableWrite(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, ".tmp-"+name)
	if err := writeFsync(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// benchSmallPut: 4 KiB POST /o straight to svc-storage at 1 and 16 clients,
// beside durableWrite of the same unique 4 KiB contents in the same run
// (interleaved, so load on the machine hits both alike). Figures are ops/s.
func benchSmallPut(ctx context.Context, o *opts) error {
	runs := o.runsOr(5, 3)
	dur := o.durOr(o.runDur, 2*time.Second, time.Second)
	t := newTable(o, "Small blobs", fmt.Sprintf("4 KiB PUT (POST /o to svc-storage) vs temp+write+fsync+rename+dir fsync, ops/s, %d runs of %s", runs, dur))
	defer t.print()
	if err := needBins(o.binDir, "svc-storage"); err != nil {
		t.skip("small PUT", err.Error())
		return nil
	}
	st, err := startStandalone(ctx, o, "storage")
	if err != nil {
		return err
	}
	defer func() { _ = st.p.stop(10 * time.Second) }()
	base := "http://" + st.addr
	rng := rand.NewChaCha8([32]byte{byte(uniqNonce), 7})
	wfDir := filepath.Join(o.tmp, "durable")
	var seq atomic.Int64
	for _, c := range smallConcs {
		bufs := make([][]byte, c)
		for w := range bufs {
			bufs[w] = randBuf(rng, smallBlobSize)
		}
		ops := func(op func(w int) error) (float64, error) {
			mbs, err := timedRun(ctx, c, dur, 1<<40, smallBlobSize, op)
			return mbs * 1e6 / smallBlobSize, err
		}
		var wf, put []float64
		var wfErr, putErr error
		for range runs {
			if err := os.MkdirAll(wfDir, 0o700); err != nil {
				return fmt.Errorf("make %s: %w", wfDir, err)
			}
			v, err := ops(func(w int) error {
				stamp(bufs[w])
				return durableWrite(wfDir, strconv.FormatInt(seq.Add(1), 10), bufs[w])
			})
			_ = os.RemoveAll(wfDir)
			if err != nil {
				wfErr = err
				break
			}
			wf = append(wf, v)
			if v, err = ops(func(w int) error {
				stamp(bufs[w])
				_, err := putObject(ctx, base, bufs[w])
				return err
			}); err != nil {
				putErr = err
				break
			}
			put = append(put, v)
		}
		cs := fmt.Sprintf("4KiB c%d", c)
		wr := t.add("durable write "+cs, "ops/s", wf, errNote(wfErr))
		pr := t.add("PUT direct "+cs, "ops/s", put, errNote(putErr))
		t.ratio("ratio PUT/durable write "+cs, pr, wr, "goal >= 0.7")
		progress("small PUT %s: %.0f ops/s vs durable write %.0f ops/s", cs, pr.median, wr.median)
	}
	return nil
}

// gatewayNginxConf is nginx in front of svc-storage as issue #13 asks:
// proxy_pass with upstream keepalive, HTTP/1.1 to the upstream.
const gatewayNginxConf = `worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/cb; proxy_temp_path %[1]s/pt; fastcgi_temp_path %[1]s/ft;
  uwsgi_temp_path %[1]s/ut; scgi_temp_path %[1]s/st;
  upstream storage { server %[2]s; keepalive 64; }
  server {
    listen %[3]s;
    location / {
      proxy_pass http://storage;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`

// startNginx runs nginx (from PATH or /usr/sbin) as a proxy_pass to
// upstream on a free loopback port and returns that address.
func startNginx(ctx context.Context, o *opts, upstream string) (*proc, string, error) {
	bin := "nginx"
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		bin = "/usr/sbin/nginx"
	}
	addrs, err := freeAddrs(1)
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(o.tmp, "nginx")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("make %s: %w", dir, err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(gatewayNginxConf, dir, upstream, addrs[0])), 0o600); err != nil {
		return nil, "", fmt.Errorf("write nginx config: %w", err)
	}
	p, err := startProc("nginx", []string{bin, "-c", conf, "-p", dir}, nil, filepath.Join(dir, "log"))
	if err != nil {
		return nil, "", err
	}
	// nginx answers storage's own /healthz once it is up.
	if _, err := waitCode(ctx, "http://"+addrs[0]+"/healthz", 200, 20*time.Millisecond, 10*time.Second); err != nil {
		_ = p.stop(5 * time.Second)
		return nil, "", fmt.Errorf("nginx: %w", err)
	}
	return p, addrs[0], nil
}

// wrkRate runs wrk with conns connections on url for dur and returns its
// Requests/sec; any non-2xx answer or socket error fails the run.
func wrkRate(ctx context.Context, url string, conns int, dur time.Duration) (float64, error) {
	threads := min(conns, 2)
	out, err := commandOutput(ctx, "wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", max(1, int(dur.Seconds()))), url)
	if err != nil {
		return 0, fmt.Errorf("wrk %s: %w: %s", url, err, out)
	}
	if strings.Contains(out, "Non-2xx") || strings.Contains(out, "Socket errors") {
		return 0, fmt.Errorf("wrk %s: errors: %s", url, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Requests/sec:"); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("wrk %s: no Requests/sec in %q", url, out)
}
