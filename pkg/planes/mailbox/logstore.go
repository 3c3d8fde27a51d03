package mailbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/macronode/macronode/pkg/fsx"
)

// LogDir is the directory of the message log under Config.DataDir.
const LogDir = "log"

const segSuffix = ".seg"

var errStoreClosed = errors.New("mailbox store is closed")

// segment is one file of the log, named by its id in 16 hex digits.
type segment struct {
	id     uint64
	f      *os.File
	size   int64 // bytes of records written and fsynced (the append offset)
	filled int64 // the file is zero-filled up to here (see prefill)
	live   int64 // bytes of records that still describe current state
}

// msgLoc is where a stored message lives: its body in the recPut record of
// segment seg, its newest meta in segment metaSeg (its own recMeta) or in
// the put record itself (metaSeg 0).
type msgLoc struct {
	seg     uint64
	bodyOff int64
	bodyLen int
	putLen  int64
	meta    []byte
	metaSeg uint64
	metaLen int64
}

// idemLoc is where an idempotency key's newest record lives.
type idemLoc struct {
	seg uint64
	val []byte // created(8) seq(8)
	n   int64
}

// store is a segmented append-only log. The commit leader is its only
// writer; mu guards the maps and the segment table against the readers of
// bodies, and is held shared across a body's pread (a page-cache read)
// so that compaction cannot close the file under it.
type store struct {
	dir       string
	log       hclog.Logger
	segBytes  int64
	deadRatio float64
	torn      atomic.Int64 // torn or corrupt tails truncated at open

	mu     sync.RWMutex
	segs   map[uint64]*segment
	order  []uint64 // segment ids, oldest first; the last is the active one
	msgs   map[uint64]*msgLoc
	idem   map[string]*idemLoc
	hiSeq  uint64
	closed bool

	// replayed holds the state found at open until load hands it over.
	replayed map[uint64]*msgLoc
}

// openStore opens (creating or migrating if needed) the log under dir and
// replays it.
func openStore(dir string, log hclog.Logger, segBytes int64, deadRatio float64) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	if err := migrateBolt(dir, log); err != nil {
		return nil, err
	}
	ldir := filepath.Join(dir, LogDir)
	if err := os.MkdirAll(ldir, 0o700); err != nil {
		return nil, fmt.Errorf("create log dir %s: %w", ldir, err)
	}
	st := &store{dir: ldir, log: log, segBytes: segBytes, deadRatio: deadRatio,
		segs: make(map[uint64]*segment), msgs: make(map[uint64]*msgLoc), idem: make(map[string]*idemLoc)}
	if err := st.replay(); err != nil {
		st.closeFiles()
		return nil, err
	}
	if len(st.order) == 0 {
		if err := st.rotate(); err != nil {
			st.closeFiles()
			return nil, err
		}
	}
	// The log dir may be new: make its entry durable before any send is
	// acknowledged.
	if err := fsx.SyncDir(dir); err != nil {
		st.closeFiles()
		return nil, err
	}
	return st, nil
}

func segName(id uint64) string { return fmt.Sprintf("%016x%s", id, segSuffix) }

// segmentIDs lists the segment files of dir in id order.
func segmentIDs(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var ids []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(name, 16, 64)
		if err != nil || id == 0 {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// replay reads every segment in order, truncating a torn or corrupt tail,
// and rebuilds msgs, idem and the live byte counts.
func (st *store) replay() error {
	ids, err := segmentIDs(st.dir)
	if err != nil {
		return err
	}
	for _, id := range ids {
		path := filepath.Join(st.dir, segName(id))
		f, err := os.OpenFile(path, os.O_RDWR, 0o600)
		if err != nil {
			return fmt.Errorf("open segment %s: %w", path, err)
		}
		seg := &segment{id: id, f: f}
		st.segs[id] = seg
		st.order = append(st.order, id)
		data, err := io.ReadAll(f)
		if err != nil {
			return fmt.Errorf("read segment %s: %w", path, err)
		}
		good := st.replaySegment(id, data)
		seg.size, seg.filled = int64(good), int64(len(data))
		// Past the records a prefilled segment holds zeros; anything
		// else there is a torn or corrupt tail.
		if end := lastNonZero(data[good:]); end > 0 {
			st.torn.Add(1)
			st.log.Warn("cutting off a torn or corrupt log tail", "segment", path,
				"offset", good, "dropped_bytes", end)
			if err := cutBack(f, int64(good), end, seg.filled); err != nil {
				return fmt.Errorf("cut off the torn tail of %s: %w", path, err)
			}
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				return fmt.Errorf("fsync %s after cutting its tail: %w", path, err)
			}
		}
	}
	for _, l := range st.msgs {
		st.segs[l.seg].live += l.putLen
		if l.metaSeg != 0 {
			st.segs[l.metaSeg].live += l.metaLen
		}
	}
	for _, l := range st.idem {
		st.segs[l.seg].live += l.n
	}
	st.replayed = st.msgs
	return nil
}

// replaySegment applies the records of one segment and returns the length
// of its valid prefix.
func (st *store) replaySegment(id uint64, data []byte) int {
	off := 0
	for off < len(data) {
		kind, p, n, err := parseRecord(data[off:])
		if err == nil {
			err = st.replayRecord(id, int64(off), kind, p, n)
		}
		if err != nil {
			st.log.Debug("log replay stops", "segment", id, "offset", off, "error", err)
			return off
		}
		off += n
	}
	return off
}

func (st *store) replayRecord(id uint64, off int64, kind byte, p []byte, n int) error {
	switch kind {
	case recPut:
		seq, meta, bodyAt, err := decodePut(p)
		if err != nil {
			return err
		}
		st.msgs[seq] = &msgLoc{seg: id, bodyOff: off + recHeader + int64(bodyAt), bodyLen: len(p) - bodyAt,
			putLen: int64(n), meta: append([]byte(nil), meta...)}
		st.hiSeq = max(st.hiSeq, seq)
	case recMeta, recDel, recSeq:
		if len(p) < 8 {
			return fmt.Errorf("%w: kind %d of %d bytes", errBadRecord, kind, len(p))
		}
		seq := beU64(p)
		switch kind {
		case recSeq:
			st.hiSeq = max(st.hiSeq, seq)
		case recDel:
			delete(st.msgs, seq)
		case recMeta:
			if l := st.msgs[seq]; l != nil {
				l.meta, l.metaSeg, l.metaLen = append([]byte(nil), p[8:]...), id, int64(n)
			}
		}
	case recIdem, recIdemDel:
		key, rest, err := decodeKey(p)
		if err != nil {
			return err
		}
		if kind == recIdemDel {
			delete(st.idem, key)
			return nil
		}
		if len(rest) != 16 {
			return fmt.Errorf("%w: idempotency value of %d bytes", errBadRecord, len(rest))
		}
		st.idem[key] = &idemLoc{seg: id, val: append([]byte(nil), rest...), n: int64(n)}
	default:
		return fmt.Errorf("%w: unknown kind %d", errBadRecord, kind)
	}
	return nil
}

// rotate starts a new active segment whose first record is the highest seq
// used so far, and makes its directory entry durable.
func (st *store) rotate() error {
	var id uint64 = 1
	if len(st.order) > 0 {
		id = st.order[len(st.order)-1] + 1
	}
	path := filepath.Join(st.dir, segName(id))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create segment %s: %w", path, err)
	}
	st.mu.RLock()
	hi := st.hiSeq
	st.mu.RUnlock()
	seg := &segment{id: id, f: f}
	rec := appendRecord(nil, recSeq, u64(hi))
	if err := st.writeSync(seg, rec); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	if err := fsx.SyncDir(st.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	st.mu.Lock()
	seg.size = int64(len(rec))
	st.segs[id] = seg
	st.order = append(st.order, id)
	st.mu.Unlock()
	return nil
}

// fillChunk is how far ahead of the append offset a segment is
// zero-filled.
const fillChunk = 1 << 20

var zeroChunk = make([]byte, fillChunk)

// grow zero-fills seg at least one chunk past end, ahead of an append
// that ends there. The append's fdatasync then makes the new size durable
// once per chunk; every other fdatasync overwrites allocated blocks and
// flushes data only, not the size and extent changes of a growing file
// (the reason write-ahead logs recycle their files). When the disk has no
// room for the zeros the append grows the file itself.
func (st *store) grow(seg *segment, end int64) {
	// The file holds records up to size and zeros up to filled; an
	// append that grew the file itself may have left filled below size.
	from := max(seg.filled, seg.size)
	to := min((end/fillChunk+1)*fillChunk, st.segBytes)
	if to <= max(from, end) {
		return // no room ahead within the segment: the append grows the file
	}
	for off := from; off < to; off += fillChunk {
		if _, err := seg.f.WriteAt(zeroChunk[:min(fillChunk, to-off)], off); err != nil {
			_ = seg.f.Truncate(from)
			return
		}
	}
	st.mu.Lock()
	seg.filled = to
	st.mu.Unlock()
}

// lastNonZero returns the length of b up to its last non-zero byte.
func lastNonZero(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return i + 1
		}
	}
	return 0
}

// cutBack removes n bytes written at off: in the zero-filled part of the
// file they are zeroed again, past it the file is truncated at off.
func cutBack(f *os.File, off int64, n int, filled int64) error {
	if off+int64(n) <= filled {
		return zeroAt(f, off, n)
	}
	return f.Truncate(off)
}

func zeroAt(f *os.File, off int64, n int) error {
	for n > 0 {
		k := min(n, fillChunk)
		if _, err := f.WriteAt(zeroChunk[:k], off); err != nil {
			return err
		}
		off, n = off+int64(k), n-k
	}
	return nil
}

// writeSync writes b at seg's append offset and fdatasyncs. On failure it
// cuts b back off the file, so a partial write never stays in front of
// later records.
func (st *store) writeSync(seg *segment, b []byte) error {
	off := seg.size
	st.grow(seg, off+int64(len(b)))
	f := seg.f
	_, err := f.WriteAt(b, off)
	if err == nil {
		if err = unix.Fdatasync(int(f.Fd())); err != nil {
			err = fmt.Errorf("fdatasync %s: %w", f.Name(), err)
		}
	} else {
		err = fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err == nil {
		return nil
	}
	cerr := cutBack(f, off, len(b), seg.filled)
	if off+int64(len(b)) > seg.filled {
		st.mu.Lock()
		seg.filled = min(seg.filled, off)
		st.mu.Unlock()
	}
	if cerr != nil {
		return errors.Join(err, fmt.Errorf("cut back %s: %w", f.Name(), cerr))
	}
	return err
}

func (st *store) active() *segment {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if len(st.order) == 0 {
		return nil
	}
	return st.segs[st.order[len(st.order)-1]]
}

// readBody returns the body of message seq; ok is false when it is not
// stored (acked meanwhile).
func (st *store) readBody(seq uint64) (body []byte, ok bool, err error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.closed {
		return nil, false, errStoreClosed
	}
	l := st.msgs[seq]
	if l == nil {
		return nil, false, nil
	}
	seg := st.segs[l.seg]
	body = make([]byte, l.bodyLen)
	if _, err := seg.f.ReadAt(body, l.bodyOff); err != nil {
		return nil, false, fmt.Errorf("read message %s: %w", formatID(seq), err)
	}
	return body, true, nil
}

// size is the bytes of every segment file on disk, zero fill included.
func (st *store) size() int64 {
	st.mu.RLock()
	defer st.mu.RUnlock()
	var n int64
	for _, s := range st.segs {
		n += max(s.size, s.filled)
	}
	return n
}

// liveBytes is the bytes of the records that still describe current state.
func (st *store) liveBytes() int64 {
	st.mu.RLock()
	defer st.mu.RUnlock()
	var n int64
	for _, s := range st.segs {
		n += s.live
	}
	return n
}

func (st *store) closeFiles() {
	for _, s := range st.segs {
		_ = s.f.Close()
	}
}

func (st *store) close() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return nil
	}
	st.closed = true
	var errs []error
	for _, s := range st.segs {
		if err := s.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close segment %d: %w", s.id, err))
		}
	}
	return errors.Join(errs...)
}

// load hands the state found at open to the caller: onMsg for every stored
// message in seq order, onIdem for every idempotency key. It returns the
// highest seq ever used. Messages whose meta does not decode are logged and
// skipped (they stay on disk).
func (st *store) load(onMsg func(seq uint64, r record), onIdem func(key string, created time.Time, seq uint64)) uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	seqs := make([]uint64, 0, len(st.replayed))
	for seq := range st.replayed {
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for _, seq := range seqs {
		r, err := decodeRecord(st.replayed[seq].meta)
		if err != nil {
			st.log.Error("skipping corrupt stored message", "id", formatID(seq), "error", err)
			continue
		}
		onMsg(seq, r)
	}
	st.replayed = nil
	for k, l := range st.idem {
		onIdem(k, time.Unix(0, int64(beU64(l.val))), beU64(l.val[8:]))
	}
	return st.hiSeq
}
