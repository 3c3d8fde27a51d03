package supervisor

import (
	"syscall"
	"testing"
	"time"
)

// BenchmarkRestartLatency measures kill -9 of a stable child to "running and
// ready" again (spawn of the test binary, hello, ready).
func BenchmarkRestartLatency(b *testing.B) {
	sp := fakeSpec(b, "bench", "good")
	sp.Policy.StableAfter = time.Millisecond
	sp.Policy.MaxRestarts = 1 << 30
	h := startHarness(b, []Spec{sp}, nil)
	st := h.waitReady("bench", 0)
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		eventually(b, 10*time.Second, "stable", func() bool { return h.status("bench").UptimeSeconds > 0.01 })
		start := time.Now()
		if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		old := st.PID
		for st = h.status("bench"); !st.Ready || st.PID == old; st = h.status("bench") {
			select {
			case <-h.changed:
			case <-time.After(10 * time.Second):
				b.Fatal("no restart within 10s")
			}
		}
		total += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/restart")
}

// BenchmarkSpawnShim is the exec shim's cost on every spawn of a child that
// inherits a held socket: fork+exec of /bin/true directly, and through the
// /bin/sh shim that sets LISTEN_PID and execs it (held.go).
func BenchmarkSpawnShim(b *testing.B) {
	for _, shim := range []bool{false, true} {
		name := "direct"
		if shim {
			name = "shim"
		}
		b.Run(name, func(b *testing.B) {
			sp := &Spec{Binary: "/bin/true"}
			for b.Loop() {
				cmd, err := childCommand(sp, shim)
				if err != nil {
					b.Fatal(err)
				}
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
