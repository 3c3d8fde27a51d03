package mailbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"

	"github.com/macronode/macronode/pkg/fsx"
)

// DBFile is the name of the bbolt file under Config.DataDir.
const DBFile = "mailbox.db"

var (
	bucketMeta = []byte("meta") // seq -> record
	bucketBody = []byte("body") // seq -> message bytes
	bucketIdem = []byte("idem") // box "\x00" key -> created(8) seq(8)
)

var errStoreClosed = errors.New("mailbox store is closed")

// store owns the bbolt file. mu is held shared by every transaction and
// exclusively only while compaction swaps the file.
type store struct {
	path string
	log  hclog.Logger

	mu     sync.RWMutex
	db     *bolt.DB
	broken atomic.Bool // compaction closed the file and could not reopen it
}

func boltOptions() *bolt.Options {
	return &bolt.Options{
		Timeout:      5 * time.Second, // another process holding the file lock
		NoSync:       false,
		FreelistType: bolt.FreelistMapType,
		// The free list is rebuilt by a scan at open instead of being
		// written on every commit: fewer dirty pages per fsync.
		NoFreelistSync: true,
	}
}

// openStore opens (creating if needed) DataDir/mailbox.db and its buckets.
func openStore(dir string, log hclog.Logger) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, DBFile)
	// A leftover from a compaction that crashed before its rename.
	if err := os.Remove(path + ".compact"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale compaction file: %w", err)
	}
	db, err := bolt.Open(path, 0o600, boltOptions())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketBody, bucketIdem} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	// The file may be new: make its directory entry durable too, before
	// any send is acknowledged.
	if err := fsx.SyncDir(dir); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &store{path: path, log: log, db: db}, nil
}

func (st *store) update(fn func(*bolt.Tx) error) error {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.db == nil {
		return errStoreClosed
	}
	return st.db.Update(fn)
}

func (st *store) view(fn func(*bolt.Tx) error) error {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.db == nil {
		return errStoreClosed
	}
	return st.db.View(fn)
}

func (st *store) close() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.db == nil {
		return nil
	}
	err := st.db.Close()
	st.db = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", st.path, err)
	}
	return nil
}

// size is the current file size in bytes (0 if unknown).
func (st *store) size() int64 {
	fi, err := os.Stat(st.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// record is the stored state of one message (the meta bucket value).
type record struct {
	box        string
	enqueuedAt int64 // unix nanoseconds
	visibleAt  int64 // unix nanoseconds; in the future = leased or delayed
	deliveries uint32
	receipt    string // set while leased
}

const recordVersion = 1

func (r record) encode() []byte {
	b := make([]byte, 0, 1+8+8+4+1+len(r.box)+1+len(r.receipt))
	b = append(b, recordVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(r.enqueuedAt))
	b = binary.BigEndian.AppendUint64(b, uint64(r.visibleAt))
	b = binary.BigEndian.AppendUint32(b, r.deliveries)
	b = append(b, byte(len(r.box)))
	b = append(b, r.box...)
	b = append(b, byte(len(r.receipt)))
	b = append(b, r.receipt...)
	return b
}

func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) < 1+8+8+4+1 || b[0] != recordVersion {
		return r, fmt.Errorf("record of %d bytes: bad header", len(b))
	}
	r.enqueuedAt = int64(binary.BigEndian.Uint64(b[1:]))
	r.visibleAt = int64(binary.BigEndian.Uint64(b[9:]))
	r.deliveries = binary.BigEndian.Uint32(b[17:])
	rest := b[21:]
	n := int(rest[0])
	if len(rest) < 1+n+1 {
		return r, fmt.Errorf("record of %d bytes: box name truncated", len(b))
	}
	r.box = string(rest[1 : 1+n])
	rest = rest[1+n:]
	n = int(rest[0])
	if len(rest) != 1+n {
		return r, fmt.Errorf("record of %d bytes: receipt truncated", len(b))
	}
	r.receipt = string(rest[1:])
	if err := ValidateBox(r.box); err != nil {
		return r, fmt.Errorf("record box: %w", err)
	}
	return r, nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

// write is one materialised change: the state a message or idempotency key
// has in memory at commit time.
type write struct {
	seq     uint64
	meta    []byte // nil: delete meta and body of seq
	body    []byte // put the body too (first commit of a send)
	putBody bool
	idemKey string // when set, this write is for the idem bucket instead
	idemVal []byte // nil: delete idemKey
}

// applyWrites stores ws in tx.
func applyWrites(tx *bolt.Tx, ws []write) error {
	meta, body, idem := tx.Bucket(bucketMeta), tx.Bucket(bucketBody), tx.Bucket(bucketIdem)
	if meta == nil || body == nil || idem == nil {
		return errors.New("mailbox buckets missing")
	}
	var maxSeq uint64
	for _, w := range ws {
		if w.idemKey != "" {
			var err error
			if w.idemVal == nil {
				err = idem.Delete([]byte(w.idemKey))
			} else {
				err = idem.Put([]byte(w.idemKey), w.idemVal)
			}
			if err != nil {
				return fmt.Errorf("idempotency key: %w", err)
			}
			continue
		}
		k := seqKey(w.seq)
		if w.meta == nil {
			if err := meta.Delete(k); err != nil {
				return fmt.Errorf("delete meta %d: %w", w.seq, err)
			}
			if err := body.Delete(k); err != nil {
				return fmt.Errorf("delete body %d: %w", w.seq, err)
			}
			continue
		}
		if err := meta.Put(k, w.meta); err != nil {
			return fmt.Errorf("put meta %d: %w", w.seq, err)
		}
		if w.putBody {
			if err := body.Put(k, w.body); err != nil {
				return fmt.Errorf("put body %d: %w", w.seq, err)
			}
		}
		maxSeq = max(maxSeq, w.seq)
	}
	// Remember the highest id ever used so ids are never reused, even after
	// every message was acked and deleted.
	if maxSeq > meta.Sequence() {
		if err := meta.SetSequence(maxSeq); err != nil {
			return fmt.Errorf("set sequence: %w", err)
		}
	}
	return nil
}

func encodeIdem(created time.Time, seq uint64) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(created.UnixNano()))
	return binary.BigEndian.AppendUint64(b, seq)
}

// load calls onMsg for every stored message in seq order and onIdem for
// every stored idempotency key; it returns the highest seq ever used.
// Corrupt records are logged and skipped, never deleted.
func (st *store) load(onMsg func(seq uint64, r record), onIdem func(key string, created time.Time, seq uint64)) (uint64, error) {
	var hi uint64
	err := st.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		hi = meta.Sequence()
		err := meta.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				st.log.Error("skipping stored message with a bad key", "key_len", len(k))
				return nil
			}
			seq := binary.BigEndian.Uint64(k)
			hi = max(hi, seq)
			r, err := decodeRecord(v)
			if err != nil {
				st.log.Error("skipping corrupt stored message", "id", formatID(seq), "error", err)
				return nil
			}
			onMsg(seq, r)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketIdem).ForEach(func(k, v []byte) error {
			if len(v) != 16 {
				return nil
			}
			created := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			onIdem(string(k), created, binary.BigEndian.Uint64(v[8:]))
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("load %s: %w", st.path, err)
	}
	return hi, nil
}

// compactIfWorth compacts the file when it is at least minBytes and at
// least ratio of it is free pages. It reports whether it compacted.
func (st *store) compactIfWorth(minBytes int64, ratio float64) (bool, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.db == nil {
		return false, errStoreClosed
	}
	size := st.size()
	if size == 0 || size < minBytes {
		return false, nil
	}
	var highWater int64
	if err := st.db.View(func(tx *bolt.Tx) error { highWater = tx.Size(); return nil }); err != nil {
		return false, fmt.Errorf("compact: measure: %w", err)
	}
	stats := st.db.Stats()
	free := int64(stats.FreePageN+stats.PendingPageN) * int64(st.db.Info().PageSize)
	// The copy holds the pages in use, in a file bbolt rounds up: to a power
	// of two below 16 MiB, else in 16 MiB steps. Compact only when that saves
	// at least ratio of the file, so a compaction never repeats for nothing.
	expected := max(highWater-free, 32<<10)
	if expected < 16<<20 {
		p := int64(32 << 10)
		for p < expected {
			p <<= 1
		}
		expected = p
	} else {
		expected += 16 << 20
	}
	st.log.Debug("compaction check", "file_bytes", size, "free_bytes", free, "expected_bytes", expected)
	if float64(size-expected) < ratio*float64(size) {
		return false, nil
	}
	if err := st.compactLocked(); err != nil {
		return false, err
	}
	st.log.Info("compacted mailbox store", "before_bytes", size, "after_bytes", st.size())
	return true, nil
}

// compactLocked copies the live data into mailbox.db.compact, fsyncs it,
// renames it over mailbox.db, fsyncs the directory and reopens. On failure
// before the rename the old file stays in use.
func (st *store) compactLocked() error {
	tmp := st.path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, boltOptions())
	if err != nil {
		return fmt.Errorf("compact: open %s: %w", tmp, err)
	}
	if err := bolt.Compact(dst, st.db, 64<<20); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("compact: copy: %w", err)
	}
	if err := dst.Sync(); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("compact: fsync: %w", err)
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compact: close copy: %w", err)
	}
	if err := st.db.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compact: close original: %w", err)
	}
	st.db = nil
	var moveErr error
	if err := os.Rename(tmp, st.path); err != nil {
		_ = os.Remove(tmp)
		moveErr = fmt.Errorf("compact: rename: %w", err)
	} else if err := fsx.SyncDir(filepath.Dir(st.path)); err != nil {
		moveErr = fmt.Errorf("compact: after rename: %w", err)
	}
	db, err := bolt.Open(st.path, 0o600, boltOptions())
	if err != nil {
		st.broken.Store(true)
		return errors.Join(moveErr, fmt.Errorf("compact: reopen %s: %w", st.path, err))
	}
	st.db = db
	return moveErr
}
