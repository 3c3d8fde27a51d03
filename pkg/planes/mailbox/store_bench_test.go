package mailbox

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/go-hclog"
)

// The store candidates measured side by side: a durable put of a message
// and then its durable delete (a send and an ack), from concurrent clients,
// each commit fsynced before it returns. msgs/s is the figure to compare.
//
//	go test -run '^$' -bench BenchmarkStore -benchtime 3s ./pkg/planes/mailbox
func BenchmarkStore(b *testing.B) {
	for _, size := range []int{256, 4096} {
		for _, clients := range []int{1, 16, 64} {
			name := fmt.Sprintf("size=%d/clients=%d", size, clients)
			b.Run("log/"+name, func(b *testing.B) { benchLog(b, size, clients) })
			b.Run("pebble/"+name, func(b *testing.B) { benchPebble(b, size, clients) })
		}
	}
}

// runClients runs b.N ops split over clients goroutines and reports msgs/s.
func runClients(b *testing.B, clients int, op func(seq uint64) error) {
	var next atomic.Uint64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	b.ResetTimer()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seq := next.Add(1)
				if seq > uint64(b.N) {
					return
				}
				if err := op(seq); err != nil {
					failed.Store(&err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
}

func benchLog(b *testing.B, size, clients int) {
	st, err := openStore(b.TempDir(), hclog.NewNullLogger(), DefaultSegmentBytes, DefaultCompactFreeRatio)
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, size)
	meta := record{box: "bench"}.encode()
	// ref.idem "del" deletes ref.seq, any other ref puts it.
	com := newCommitter(st, func(refs []ref) []write {
		ws := make([]write, len(refs))
		for i, r := range refs {
			ws[i] = write{seq: r.seq}
			if r.idem == "" {
				ws[i] = write{seq: r.seq, meta: meta, body: body, putBody: true}
			}
		}
		return ws
	}, func(int) {}, func(int, error) {})
	defer func() { com.close(); _ = st.close() }()
	runClients(b, clients, func(seq uint64) error {
		if err := com.commit([]ref{{seq: seq}}); err != nil {
			return err
		}
		return com.commit([]ref{{seq: seq, idem: "del"}})
	})
}

func benchPebble(b *testing.B, size, clients int) {
	db, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	body := make([]byte, size)
	runClients(b, clients, func(seq uint64) error {
		k := u64(seq)
		if err := db.Set(k, body, pebble.Sync); err != nil {
			return err
		}
		return db.Delete(k, pebble.Sync)
	})
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
