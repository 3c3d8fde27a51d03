package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// svlogdResult is one flood under runsv with svlogd as its log service.
type svlogdResult struct {
	childRate float64 // lines/s the child got into the pipe
	kept      float64 // lines/s that reached svlogd's current file
}

// svlogdRun runs the same flood child under runit: runsv starts it with
// its stdout (and stderr, 2>&1) piped to svlogd, which writes every line to
// its current file (no rotation, no timestamps: the lines as they came).
// svlogd drops nothing, so a full pipe blocks the child: its write rate is
// svlogd's pace. why is non-empty when runit is not installed.
func svlogdRun(ctx context.Context, o *opts, exe string, d time.Duration, i int) (r svlogdResult, why string, err error) {
	runsv, err1 := exec.LookPath("runsv")
	svlogd, err2 := exec.LookPath("svlogd")
	if err1 != nil || err2 != nil {
		return r, "runsv or svlogd not found (install runit)", nil
	}
	base := filepath.Join(o.tmp, "svlogd-"+strconv.Itoa(i))
	dir, logDir := filepath.Join(base, "sv", "flood"), filepath.Join(base, "log")
	defer func() { _ = os.RemoveAll(base) }()
	for _, d := range []string{filepath.Join(dir, "log"), logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return r, "", fmt.Errorf("svlogd: %w", err)
		}
	}
	out := filepath.Join(base, "flood.json")
	files := map[string]string{
		filepath.Join(dir, "run"): "#!/bin/sh\nexec 2>&1\nexec env " + envRole + "=" + roleFloodChild + " " + envFloodFor + "=" + d.String() +
			" " + envFloodOut + "=" + shQuote(out) + " " + shQuote(exe) + "\n",
		filepath.Join(dir, "log", "run"): "#!/bin/sh\nexec " + shQuote(svlogd) + " " + shQuote(logDir) + "\n",
		filepath.Join(logDir, "config"):  "s0\nn0\n", // one file, never rotated
	}
	for path, text := range files {
		if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
			return r, "", fmt.Errorf("svlogd: %w", err)
		}
	}
	p, err := startProc("runsv", []string{runsv, dir}, nil, filepath.Join(base, "runsv.log"))
	if err != nil {
		return r, "", err
	}
	defer stopFloodRunsv(p, dir)

	var res floodResult
	err = eventually(ctx, d+30*time.Second, "svlogd flood child result", func() (bool, error) {
		b, err := os.ReadFile(out)
		if err != nil {
			return false, nil
		}
		return json.Unmarshal(b, &res) == nil, nil
	})
	if err != nil {
		return r, "", err
	}
	// svlogd has written everything once its file stops growing.
	current := filepath.Join(logDir, "current")
	var size int64 = -1
	lastChange, stable := time.Now(), time.Now()
	for time.Since(stable) < 300*time.Millisecond {
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return r, "", err
		}
		st, err := os.Stat(current)
		if err != nil {
			return r, "", fmt.Errorf("svlogd: %w", err)
		}
		if st.Size() != size {
			size, lastChange, stable = st.Size(), time.Now(), time.Now()
		}
		if time.Since(lastChange) > 60*time.Second {
			return r, "", errors.New("svlogd: current still growing after 60s")
		}
	}
	kept, err := countLines(current, []byte(`"flood line"`))
	if err != nil {
		return r, "", err
	}
	childDur := time.Duration(res.EndNS - res.StartNS)
	dur := max(lastChange.Sub(time.Unix(0, res.StartNS)), childDur)
	r.childRate = float64(res.Lines) / childDur.Seconds()
	r.kept = kept / dur.Seconds()
	if int64(kept) != res.Lines {
		return r, "", fmt.Errorf("svlogd kept %.0f of %d lines", kept, res.Lines)
	}
	return r, "", nil
}

// stopFloodRunsv takes the flood service down and makes runsv exit (with
// its log service), then stops whatever is left.
func stopFloodRunsv(p *proc, dir string) {
	runsvControl(dir, "dx")
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	_ = p.stop(2 * time.Second)
}

// countLines counts the lines of the file at path that contain substr.
func countLines(path string, substr []byte) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("count lines: %w", err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var n float64
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), substr) {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("count lines in %s: %w", path, err)
	}
	return n, nil
}
