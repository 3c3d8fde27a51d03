package fetch

import (
	"context"
	"io"
	"net/http"
	"time"
)

// announceTimeout bounds one POST /dht/providers/{addr}.
const announceTimeout = 30 * time.Second

// Announce queues addr to be provided through the DHT. It never blocks: a
// full queue drops the address and counts it (the DHT's reprovide walk of
// local storage covers it later).
func (f *Fetcher) Announce(addr string) {
	select {
	case f.queue <- addr:
	default:
		f.m.announces.WithLabelValues("dropped").Inc()
	}
}

// announcer posts queued announces one at a time until Close.
func (f *Fetcher) announcer() {
	defer close(f.done)
	for {
		select {
		case <-f.stop:
			return
		case addr := <-f.queue:
			f.announce(addr)
		}
	}
}

func (f *Fetcher) announce(addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), announceTimeout)
	defer cancel()
	go func() { // Close cancels an announce in flight
		select {
		case <-f.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.cfg.DHT+"/dht/providers/"+addr, nil)
	if err != nil {
		f.m.announces.WithLabelValues("error").Inc()
		return
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.m.announces.WithLabelValues("error").Inc()
		f.log.Debug("announce failed", "address", addr, "error", err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		f.m.announces.WithLabelValues("error").Inc()
		f.log.Debug("announce refused", "address", addr, "status", resp.StatusCode)
		return
	}
	f.m.announces.WithLabelValues("ok").Inc()
}
