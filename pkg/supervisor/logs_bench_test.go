package supervisor

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/macronode/macronode/pkg/logging"
)

// floodBlock is n hclog-style JSON lines, as a flooding child writes them.
func floodBlock(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		b.WriteString(`{"@level":"info","@message":"flood line","@module":"svc-storage","@timestamp":"2026-12-01T05:42:49.123456Z","n":`)
		b.WriteString(strconv.Itoa(i))
		b.WriteString("}\n")
	}
	return b.Bytes()
}

// repeatReader returns block left times, in reads of at most 64 KiB (a
// pipe's worth).
type repeatReader struct {
	block     []byte
	left, off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 64<<10)], r.block[r.off:])
	r.off += n
	if r.off == len(r.block) {
		r.off = 0
		r.left--
	}
	return n, nil
}

// BenchmarkChildLogPath is the parent's whole line path for one flooding
// child: read, crash detection, ring, formatting, and the batched writes to
// a file (JSON, as under a service manager). kept-lines/s counts the lines
// that reached the file.
func BenchmarkChildLogPath(b *testing.B) {
	for _, format := range []string{"json", "text"} {
		b.Run(format, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "out.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = f.Close() }()
			out, err := logging.NewOutput(f, format, "")
			if err != nil {
				b.Fatal(err)
			}
			m := newMetrics()
			sink := newLogSink("storage", 1000, out, m)
			const perBlock = 1000
			block := floodBlock(perBlock)
			b.SetBytes(int64(len(block) / perBlock))
			b.ResetTimer()
			readLines(&repeatReader{block: block, left: (b.N + perBlock - 1) / perBlock}, "stderr", sink, &crashDetector{})
			_ = out.Close()
			b.StopTimer()
			total := float64((b.N + perBlock - 1) / perBlock * perBlock)
			dropped := testutil.ToFloat64(m.dropped.WithLabelValues("storage"))
			b.ReportMetric((total-dropped)/b.Elapsed().Seconds(), "kept-lines/s")
			b.ReportMetric(dropped/total, "dropped-frac")
		})
	}
}
