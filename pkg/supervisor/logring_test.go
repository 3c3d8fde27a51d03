package supervisor

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/logging"
)

// The arena ring against a model (the newest size lines as strings), with
// line lengths that force wraps at the arena's end, growth, empty lines and
// lines longer than the whole initial arena.
func TestRingArenaMatchesModel(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		lengths func(i int, rnd *rand.Rand) int
	}{
		{"short lines", 10, func(_ int, rnd *rand.Rand) int { return rnd.IntN(20) }},
		{"empty lines", 5, func(int, *rand.Rand) int { return 0 }},
		{"mixed, some past the arena", 8, func(_ int, rnd *rand.Rand) int {
			if rnd.IntN(10) == 0 {
				return 5000 + rnd.IntN(maxLineBytes)
			}
			return rnd.IntN(300)
		}},
		{"one slot", 1, func(_ int, rnd *rand.Rand) int { return rnd.IntN(9000) }},
		{"growing then shrinking", 16, func(i int, _ *rand.Rand) int {
			if i < 200 {
				return i * 40
			}
			return 3
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(1, uint64(tc.size)))
			r := newRing(tc.size)
			var model []string
			for i := range 2000 {
				text := fmt.Sprintf("%d:", i) + strings.Repeat(string(rune('a'+i%26)), tc.lengths(i, rnd))
				stream := []string{"stdout", "stderr"}[i%2]
				r.addBatch(time.Unix(0, int64(i)), stream, []logging.Line{{Text: []byte(text)}})
				model = append(model, text)
				if len(model) > tc.size {
					model = model[1:]
				}
				got := r.last(0)
				if len(got) != len(model) {
					t.Fatalf("after %d adds: %d lines, want %d", i+1, len(got), len(model))
				}
				for j, l := range got {
					seq := uint64(i + 1 - len(model) + 1 + j)
					if l.Text != model[j] || l.Seq != seq || l.Time.UnixNano() != int64(seq-1) || l.Stream != []string{"stdout", "stderr"}[(seq-1)%2] {
						t.Fatalf("after %d adds, line %d: %.20q seq %d %s, want %.20q seq %d", i+1, j, l.Text, l.Seq, l.Stream, model[j], seq)
					}
				}
			}
			if limit := tc.size * (maxLineBytes + len(truncatedMark) + 1); len(r.arena) > max(limit, tc.size*ringBytesPerLine, 4<<10) {
				t.Errorf("arena grew to %d bytes for %d slots", len(r.arena), tc.size)
			}
		})
	}
}

// Short lines never grow the arena, and a steady add allocates nothing.
func TestRingAddAllocates(t *testing.T) {
	r := newRing(1000)
	lines := []logging.Line{{Text: []byte(strings.Repeat("x", 100))}}
	now := time.Now()
	size := len(r.arena)
	allocs := testing.AllocsPerRun(5000, func() { r.addBatch(now, "stderr", lines) })
	if allocs != 0 || len(r.arena) != size {
		t.Errorf("allocs per add %v, arena %d -> %d bytes", allocs, size, len(r.arena))
	}
}
