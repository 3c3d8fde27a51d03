package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// Benchmarks measure the figures that tests never gate on. Run with
// `go test -run XXX -bench . -benchtime 5x ./...` from e2e/.

// BenchmarkNodeStartToReady: `macronode run` with all six planes to /readyz 200.
func BenchmarkNodeStartToReady(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		n := startNode(b, nodeOpts{})
		total += time.Since(start)
		b.StopTimer()
		n.stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-ready/op")
}

// BenchmarkStorageKillToReady: kill -9 svc-storage (stable, so restarted at
// once) to /readyz 200 with a new pid.
func BenchmarkStorageKillToReady(b *testing.B) {
	n := startNode(b, nodeOpts{config: "services:\n  storage:\n    stable_after: 100ms\n"})
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		old := childPID(b, n, "storage")
		// Wait until the child counts as stable so the restart is immediate.
		eventually(b, restartTimeout, func() (bool, string) {
			st, err := n.status()
			return err == nil && st.Services["storage"].UptimeSeconds >= 0.15, "storage not yet stable"
		})
		b.StartTimer()
		start := time.Now()
		signalChild(b, old, "svc-storage", syscall.SIGKILL)
		eventually(b, restartTimeout, func() (bool, string) {
			code, _, err := n.readyz()
			if err != nil || code != 200 {
				return false, fmt.Sprint(code, err)
			}
			st, err := n.status()
			return err == nil && st.Services["storage"].PID != old, "old pid"
		})
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-kill-to-ready/op")
}
