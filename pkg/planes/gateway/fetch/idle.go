package fetch

import (
	"io"
	"sync"
	"time"
)

// idleReader cancels a transfer whose source makes no progress for idle.
type idleReader struct {
	r      io.Reader
	idle   time.Duration
	timer  *time.Timer
	mu     sync.Mutex
	count  int64
	fired  bool
	cancel func()
}

func newIdleReader(r io.Reader, idle time.Duration, cancel func()) *idleReader {
	ir := &idleReader{r: r, idle: idle, cancel: cancel}
	ir.timer = time.AfterFunc(idle, ir.fire)
	return ir
}

func (ir *idleReader) fire() {
	ir.mu.Lock()
	ir.fired = true
	ir.mu.Unlock()
	ir.cancel()
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.timer.Reset(ir.idle)
		ir.mu.Lock()
		ir.count += int64(n)
		ir.mu.Unlock()
	}
	return n, err
}

func (ir *idleReader) stop() { ir.timer.Stop() }

func (ir *idleReader) stalled() bool {
	ir.mu.Lock()
	defer ir.mu.Unlock()
	return ir.fired
}

func (ir *idleReader) n() int64 {
	ir.mu.Lock()
	defer ir.mu.Unlock()
	return ir.count
}
