package dht

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	mh "github.com/multiformats/go-multihash"

	"github.com/macronode/macronode/internal/testutil"
)

// BenchmarkSweepProvide measures how many keys per second one node's
// SweepingProvider provides into a 6-node loopback DHT: the rate a
// restarted node's walk of storage is worked off at. Figures only.
func BenchmarkSweepProvide(b *testing.B) {
	const keys = 20000
	nodes := startCluster(b, 6)
	n := nodes[0]
	testutil.Eventually(b, 30*time.Second, "the reprovider to be online", func() bool {
		st, err := n.prov.Stats(context.Background())
		return err == nil && st.Connectivity.Status == "online"
	})
	b.ResetTimer()
	for round := 0; round < b.N; round++ {
		hs := make([]mh.Multihash, keys)
		for i := range hs {
			c, err := KeyFor(testAddr(round*keys + i + 1_000_000))
			if err != nil {
				b.Fatal(err)
			}
			hs[i] = c.Hash()
		}
		before := provided(b, n)
		start := time.Now()
		if err := n.prov.StartProviding(false, hs...); err != nil {
			b.Fatal(err)
		}
		testutil.Eventually(b, 5*time.Minute, "every key to be provided", func() bool {
			return provided(b, n)-before >= keys
		})
		b.ReportMetric(float64(keys)/time.Since(start).Seconds(), "provides/s")
	}
}

func provided(tb testing.TB, n *testNode) int64 {
	st, err := n.prov.Stats(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return st.Operations.Past.KeysProvided
}

// BenchmarkProvideFind20 measures provide (sync) and find-providers latency
// through the HTTP API in a 20-node loopback DHT. Figures only.
func BenchmarkProvideFind20(b *testing.B) {
	const rounds = 50
	nodes := startCluster(b, 20)
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		var prov, find []time.Duration
		for r := range rounds {
			addr := testAddr(2_000_000 + iter*rounds + r)
			from, to := nodes[r%len(nodes)], nodes[(r+7)%len(nodes)]
			start := time.Now()
			if code := do(b, from.Server, http.MethodPost, "/dht/providers/"+addr+"?sync=1", nil); code != http.StatusOK {
				b.Fatalf("provide: %d", code)
			}
			prov = append(prov, time.Since(start))
			start = time.Now()
			var body providersBody
			if code := do(b, to.Server, http.MethodGet, "/dht/providers/"+addr+"?limit=1", &body); code != http.StatusOK || len(body.Providers) == 0 {
				b.Fatalf("find: %d %v", code, body)
			}
			find = append(find, time.Since(start))
		}
		report(b, "provide", prov)
		report(b, "find", find)
	}
}

func report(b *testing.B, what string, ds []time.Duration) {
	slices.Sort(ds)
	p50, p99 := ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)]
	b.ReportMetric(float64(p50.Microseconds())/1000, what+"-p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, what+"-p99-ms")
	b.Logf("%s: median %s, p99 %s over %d", what, p50, p99, len(ds))
}
