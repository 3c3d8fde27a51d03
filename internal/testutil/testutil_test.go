package testutil

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEventually(t *testing.T) {
	var n atomic.Int32
	go func() {
		for i := 0; i < 3; i++ {
			n.Add(1)
		}
	}()
	Eventually(t, 5*time.Second, "three increments", func() bool { return n.Load() == 3 })
}

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = b.Write([]byte("x"))
			_ = b.String()
		}()
	}
	wg.Wait()
	if got := b.String(); got != "xxxxxxxx" || !b.Contains("xx") {
		t.Fatalf("buffer = %q", got)
	}
}
