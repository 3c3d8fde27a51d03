package mailbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkSendReceiveAck measures full message round trips over real HTTP:
// a durable send, a receive (a lease, not fsynced) and a durable ack per op, with
// 1, 16 and 64 concurrent clients (each on its own box), through the
// group-commit loop. msgs/s is the figure to compare.
func BenchmarkSendReceiveAck(b *testing.B) {
	for _, clients := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			benchRoundTrips(b, clients)
		})
	}
}

func benchRoundTrips(b *testing.B, clients int) {
	reg := prometheus.NewRegistry()
	s, err := New(Config{DataDir: b.TempDir()}, nil, reg)
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	tr := &http.Transport{MaxIdleConnsPerHost: clients * 2}
	client := &http.Client{Transport: tr}
	defer func() {
		tr.CloseIdleConnections()
		ts.Close()
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	}()
	body := bytes.Repeat([]byte("m"), 256)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := ts.URL + "/mailboxes/bench-" + fmt.Sprint(c)
			for next.Add(1) <= int64(b.N) {
				if err := roundTrip(client, base, body); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if mfs, err := reg.Gather(); err == nil {
		for _, mf := range mfs {
			if h := mf.GetMetric()[0].GetHistogram(); mf.GetName() == "macronode_mailbox_commit_ops" && h.GetSampleCount() > 0 {
				b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount()), "ops/commit")
			}
		}
	}
}

func roundTrip(c *http.Client, base string, body []byte) error {
	if _, err := post(c, base+"/messages", body, http.StatusCreated); err != nil {
		return err
	}
	out, err := post(c, base+"/receive?max=1", nil, http.StatusOK)
	if err != nil {
		return err
	}
	var rr struct{ Messages []struct{ Receipt string } }
	if err := json.Unmarshal(out, &rr); err != nil || len(rr.Messages) != 1 {
		return fmt.Errorf("receive: %d messages, %v", len(rr.Messages), err)
	}
	ack, _ := json.Marshal(map[string][]string{"receipts": {rr.Messages[0].Receipt}})
	_, err = post(c, base+"/ack", ack, http.StatusOK)
	return err
}

func post(c *http.Client, url string, body []byte, want int) ([]byte, error) {
	resp, err := c.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, out)
	}
	return out, nil
}
