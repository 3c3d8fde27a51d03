package mailbox

import (
	"errors"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// newTestCommitter commits puts of empty messages to a fresh store and
// records the size of every group commit.
func newTestCommitter(t *testing.T) (*committer, *store, func() []int) {
	t.Helper()
	st, err := openStore(t.TempDir(), hclog.NewNullLogger(), DefaultSegmentBytes, DefaultCompactFreeRatio)
	if err != nil {
		t.Fatal(err)
	}
	meta := record{box: "c"}.encode()
	var mu sync.Mutex
	var sizes []int
	com := newCommitter(st, func(refs []ref) []write {
		ws := make([]write, len(refs))
		for i, r := range refs {
			ws[i] = write{seq: r.seq, meta: meta, body: []byte{}, putBody: true}
		}
		return ws
	}, func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }, func(int, error) {})
	t.Cleanup(func() { _ = st.close() })
	return com, st, func() []int { mu.Lock(); defer mu.Unlock(); return append([]int(nil), sizes...) }
}

// Every op of many concurrent committers is written and answered, each in
// exactly one group commit, and close refuses later ones.
func TestCommitterConcurrent(t *testing.T) {
	com, st, sizes := newTestCommitter(t)
	const workers, each = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				errs <- com.commit([]ref{{seq: uint64(w*each + i + 1)}})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	total := 0
	for _, n := range sizes() {
		if n < 1 || n > maxOpsPerCommit {
			t.Fatalf("a group commit carried %d ops", n)
		}
		total += n
	}
	if total != workers*each {
		t.Fatalf("group commits carried %d ops, want %d", total, workers*each)
	}
	st.mu.RLock()
	stored := len(st.msgs)
	st.mu.RUnlock()
	if stored != workers*each {
		t.Fatalf("%d messages stored, want %d", stored, workers*each)
	}
	com.close()
	if err := com.commit([]ref{{seq: 1 << 40}}); !errors.Is(err, errClosing) {
		t.Fatalf("commit after close: %v, want errClosing", err)
	}
}

// close waits for the commits queued before it.
func TestCommitterCloseWaitsForQueued(t *testing.T) {
	com, st, _ := newTestCommitter(t)
	const n = 64
	var wg sync.WaitGroup
	started := make(chan struct{}, n)
	results := make([]error, n)
	for i := range n {
		wg.Go(func() {
			started <- struct{}{}
			results[i] = com.commit([]ref{{seq: uint64(i + 1)}})
		})
	}
	for range n {
		<-started
	}
	com.close()
	// Nothing is written after close returns.
	st.mu.RLock()
	stored := len(st.msgs)
	st.mu.RUnlock()
	wg.Wait()
	committed := 0
	for _, err := range results {
		switch {
		case err == nil:
			committed++
		case !errors.Is(err, errClosing):
			t.Fatalf("commit: %v", err)
		}
	}
	if stored != committed {
		t.Fatalf("%d messages stored when close returned, %d commits answered nil", stored, committed)
	}
}
