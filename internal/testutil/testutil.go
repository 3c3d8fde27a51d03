// Package testutil holds the few helpers that many of macronode's test
// suites share: polling with a deadline (never sleeping to synchronize) and
// a goroutine-safe buffer for capturing logs, and reading one metric sample
// from a registry. It is imported only by tests.
package testutil

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// pollInterval is how often Eventually re-checks its condition.
const pollInterval = 5 * time.Millisecond

// Eventually polls cond until it holds, failing tb once d has passed; what
// names the awaited condition in the failure message.
func Eventually(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(pollInterval)
	}
}

// SyncBuffer is a bytes.Buffer that is safe to read while other goroutines
// (or a child process's output copier) write to it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Contains reports whether s has been written.
func (b *SyncBuffer) Contains(s string) bool { return strings.Contains(b.String(), s) }
