package dht

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
	mh "github.com/multiformats/go-multihash"
)

// maxListBody caps one page of storage's listing (1000 addresses are about
// 70 KB).
const maxListBody = 16 << 20

// listPage is one page of GET {storage}/o?after=&limit=.
type listPage struct {
	Addresses []string `json:"addresses"`
	Next      string   `json:"next"`
}

// storageLister pages through storage's listing of stored addresses.
type storageLister struct {
	client *http.Client
	base   string // storage URL
	limit  int
}

// page fetches the addresses after cursor ("" for the first page).
func (l storageLister) page(ctx context.Context, after string) (listPage, error) {
	q := url.Values{"limit": {strconv.Itoa(l.limit)}}
	if after != "" {
		q.Set("after", after)
	}
	var p listPage
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.base+"/o?"+q.Encode(), nil)
	if err != nil {
		return p, fmt.Errorf("list storage: %w", err)
	}
	res, err := l.client.Do(req)
	if err != nil {
		return p, fmt.Errorf("list storage: %w", err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		return p, fmt.Errorf("list storage after %q: status %s", after, res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxListBody+1))
	if err != nil {
		return p, fmt.Errorf("list storage after %q: read: %w", after, err)
	}
	if len(body) > maxListBody {
		return p, fmt.Errorf("list storage after %q: page over %d bytes", after, maxListBody)
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return p, fmt.Errorf("list storage after %q: decode: %w", after, err)
	}
	if p.Next != "" && p.Next <= after {
		// A cursor that does not advance would loop forever.
		return p, fmt.Errorf("list storage after %q: next cursor %q does not advance", after, p.Next)
	}
	return p, nil
}

// walk calls fn with the multihash of every address storage lists, a page
// at a time, and returns how many it passed and how many malformed
// addresses it skipped. A failed page is retried with backoff by the
// caller: walk returns the cursor it reached so the retry resumes there.
func (l storageLister) walk(ctx context.Context, after string, fn func([]mh.Multihash) error) (cursor string, keys, skipped int, err error) {
	cursor = after
	for {
		p, err := l.page(ctx, cursor)
		if err != nil {
			return cursor, keys, skipped, err
		}
		batch := make([]mh.Multihash, 0, len(p.Addresses))
		for _, a := range p.Addresses {
			c, err := KeyFor(a)
			if err != nil {
				skipped++
				continue
			}
			batch = append(batch, c.Hash())
		}
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return cursor, keys, skipped, err
			}
			keys += len(batch)
		}
		if p.Next == "" || len(p.Addresses) == 0 {
			return "", keys, skipped, nil
		}
		cursor = p.Next
	}
}

// provideStored runs once after a start: it walks storage's listing and
// hands every stored address to the reprovider, which provides the ones its
// keystore did not hold yet and keeps all of them on its schedule. Storage
// may start after the DHT, so failed pages are retried with backoff (from
// where the walk stopped) until the walk completes or the plane closes.
func (s *Server) provideStored(ctx context.Context) {
	if s.cfg.StorageURL == "" {
		return
	}
	l := storageLister{client: s.client, base: s.cfg.StorageURL, limit: s.cfg.ListPageSize}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = 500*time.Millisecond, time.Minute, 0
	start := time.Now()
	var cursor string
	var total, skipped int
	op := func() error {
		c, n, sk, err := l.walk(ctx, cursor, func(keys []mh.Multihash) error {
			return s.prov.StartProviding(false, keys...)
		})
		cursor, total, skipped = c, total+n, skipped+sk
		if err != nil && ctx.Err() == nil {
			s.log.Debug("walk of storage's listing stopped; retrying", "after", cursor, "error", err)
		}
		return err
	}
	if err := backoff.Retry(op, backoff.WithContext(bo, ctx)); err != nil {
		return
	}
	s.metrics.walkedKeys.Add(float64(total))
	s.log.Info("handed every stored address to the reprovider", "addresses", total, "malformed_skipped", skipped,
		"took", time.Since(start).String())
}
