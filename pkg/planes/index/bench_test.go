package index

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkPutParallel measures durable PUTs from concurrent clients; bbolt's
// Batch lets them share fsyncs, so writes/s grows with concurrency.
func BenchmarkPutParallel(b *testing.B) {
	srv, err := New(Config{DataDir: b.TempDir()}, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/names/bench/%d", ts.URL, n), strings.NewReader(putBodyFor(addrN(int(n)))))
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}
