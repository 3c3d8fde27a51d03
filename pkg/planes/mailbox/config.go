package mailbox

import (
	"flag"
	"fmt"
	"time"

	"github.com/macronode/macronode/pkg/httpx"
)

// Production defaults, used by RegisterFlags and for zero Config fields.
const (
	DefaultMaxMessageBytes   = 256 << 10
	DefaultIdempotencyWindow = 5 * time.Minute
	DefaultMaxDeliveries     = 5
	DefaultMaxDepth          = 100000
	DefaultMaxBoxes          = 10000
	DefaultMetricsMaxBoxes   = 1000
	DefaultSegmentBytes      = 16 << 20
	DefaultCompactFreeRatio  = 0.5
)

// Config holds the plane's settings. DataDir and Amnesia are filled by the
// runtime from the common flags; the rest come from RegisterFlags. A zero
// numeric field means its default.
type Config struct {
	DataDir string // the plane creates it (0700) if missing
	Amnesia bool   // RAM only: write nothing under DataDir

	MaxMessageBytes   int64         // largest message body accepted
	IdempotencyWindow time.Duration // how long an Idempotency-Key is remembered
	MaxDeliveries     int           // deliveries before a message is dead-lettered
	MaxDepth          int           // messages per box (ready + delayed + leased)
	MaxBoxes          int           // known boxes, dead-letter boxes included
	MetricsMaxBoxes   int           // boxes with their own metric label; the rest share box="~other"
	SegmentBytes      int64         // a log segment is closed and a new one started past this size
	CompactFreeRatio  float64       // copy the oldest segment's live records forward once this share of it is dead
	IOIdleTimeout     time.Duration // longest a request body may make no progress (408 past it)
}

// RegisterFlags registers the mailbox flags on fs with production defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.MaxMessageBytes, "max-message-bytes", DefaultMaxMessageBytes,
		"largest message body in bytes; a larger send answers 413")
	fs.DurationVar(&c.IdempotencyWindow, "idempotency-window", DefaultIdempotencyWindow,
		"how long a send's Idempotency-Key is remembered; a repeat within it returns the original id with 200")
	fs.IntVar(&c.MaxDeliveries, "max-deliveries", DefaultMaxDeliveries,
		"deliveries after which an unacked message moves to the box {box}.dlq")
	fs.IntVar(&c.MaxDepth, "max-depth", DefaultMaxDepth,
		"most messages a box holds (ready + in flight); a send over it answers 429 box_full")
	fs.IntVar(&c.MaxBoxes, "max-boxes", DefaultMaxBoxes,
		"most boxes known at once (dead-letter boxes included); empty idle boxes are forgotten to make room, else 429 too_many_boxes")
	fs.IntVar(&c.MetricsMaxBoxes, "metrics-max-boxes", DefaultMetricsMaxBoxes,
		"boxes that get their own box label in metrics; later ones are summed under box=\"~other\"")
	fs.Int64Var(&c.SegmentBytes, "segment-bytes", DefaultSegmentBytes,
		"size past which the message log starts a new segment file; fully acked segments are deleted")
	fs.Float64Var(&c.CompactFreeRatio, "compact-free-ratio", DefaultCompactFreeRatio,
		"copy the live records of the oldest log segment forward (and delete it) once this share (0..1) of it is dead")
	fs.DurationVar(&c.IOIdleTimeout, "io-idle-timeout", httpx.DefaultIOIdleTimeout,
		"longest a request body may make no progress; a stalled body gets 408 and its connection is closed")
}

// withDefaults returns c with zero fields set to their defaults, or an error
// naming the first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.IdempotencyWindow == 0 {
		c.IdempotencyWindow = DefaultIdempotencyWindow
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = DefaultMaxDeliveries
	}
	if c.MaxDepth == 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	if c.MaxBoxes == 0 {
		c.MaxBoxes = DefaultMaxBoxes
	}
	if c.MetricsMaxBoxes == 0 {
		c.MetricsMaxBoxes = DefaultMetricsMaxBoxes
	}
	if c.CompactFreeRatio == 0 {
		c.CompactFreeRatio = DefaultCompactFreeRatio
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.IOIdleTimeout == 0 {
		c.IOIdleTimeout = httpx.DefaultIOIdleTimeout
	}
	switch {
	case c.MaxMessageBytes < 0:
		return c, fmt.Errorf("max-message-bytes %d: must be positive", c.MaxMessageBytes)
	case c.IdempotencyWindow < 0:
		return c, fmt.Errorf("idempotency-window %s: must not be negative", c.IdempotencyWindow)
	case c.MaxDeliveries < 0 || c.MaxDeliveries > 1<<20:
		return c, fmt.Errorf("max-deliveries %d: must be 1..%d", c.MaxDeliveries, 1<<20)
	case c.MaxDepth < 0:
		return c, fmt.Errorf("max-depth %d: must be positive", c.MaxDepth)
	case c.MaxBoxes < 0:
		return c, fmt.Errorf("max-boxes %d: must be positive", c.MaxBoxes)
	case c.MetricsMaxBoxes < 0:
		return c, fmt.Errorf("metrics-max-boxes %d: must be positive", c.MetricsMaxBoxes)
	case c.IOIdleTimeout < 0:
		return c, fmt.Errorf("io-idle-timeout %s: must not be negative", c.IOIdleTimeout)
	case c.CompactFreeRatio < 0 || c.CompactFreeRatio > 1:
		return c, fmt.Errorf("compact-free-ratio %g: must be in 0..1", c.CompactFreeRatio)
	case c.SegmentBytes < 0:
		return c, fmt.Errorf("segment-bytes %d: must be positive", c.SegmentBytes)
	case !c.Amnesia && c.DataDir == "":
		return c, fmt.Errorf("data dir: required unless amnesia is set")
	}
	return c, nil
}
