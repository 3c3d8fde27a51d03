package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// blake3Line matches `BenchmarkBlake3/4KiB-2   123   4567 ns/op   897.01 MB/s`.
var blake3Line = regexp.MustCompile(`^BenchmarkBlake3/(\S+?)(?:-\d+)?\s+\d+\s+[\d.]+ ns/op\s+([\d.]+) MB/s`)

// hashRates returns the raw BLAKE3 rate (MB/s samples) per size name: from
// the storage plane's BenchmarkBlake3 if it runs, else from `b3sum` with one
// thread on a 256 MiB file (the same rate for every size), else nothing.
func hashRates(ctx context.Context, o *opts, sizes []string) (map[string][]float64, string) {
	count := o.runsOr(5, 3)
	progress("BLAKE3: go test -bench BenchmarkBlake3 ./pkg/planes/storage/ (-count %d)", count)
	tctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(tctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkBlake3$",
		"-count", strconv.Itoa(count), "-benchtime", "200ms", "./pkg/planes/storage/")
	cmd.Dir = o.root
	out, err := cmd.CombinedOutput()
	got := map[string][]float64{}
	for _, line := range strings.Split(string(out), "\n") {
		if m := blake3Line.FindStringSubmatch(line); m != nil {
			if v, err := strconv.ParseFloat(m[2], 64); err == nil {
				got[m[1]] = append(got[m[1]], v)
			}
		}
	}
	if len(got) > 0 {
		return got, "go test BenchmarkBlake3 (zeebo/blake3, one core)"
	}
	progress("BLAKE3: go test gave no figures (%v); trying b3sum", err)
	b3, lerr := exec.LookPath("b3sum")
	if lerr != nil {
		return nil, "no BenchmarkBlake3 figures and no b3sum"
	}
	file := filepath.Join(o.tmp, "b3.bin")
	const n = 256 << 20
	r := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, n)
	_, _ = r.Read(buf)
	if err := os.WriteFile(file, buf, 0o600); err != nil {
		return nil, fmt.Sprintf("write b3sum input: %v", err)
	}
	defer os.Remove(file)
	var samples []float64
	for range count {
		start := time.Now()
		if err := exec.CommandContext(tctx, b3, "--num-threads", "1", "--no-names", file).Run(); err != nil {
			return nil, fmt.Sprintf("b3sum failed: %v", err)
		}
		samples = append(samples, n/time.Since(start).Seconds()/1e6)
	}
	for _, s := range sizes {
		got[s] = samples
	}
	return got, "b3sum --num-threads 1 on a 256MiB file (page cache), for every size"
}
