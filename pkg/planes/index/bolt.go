package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/macronode/macronode/pkg/fsx"
)

// DBFile is the name of the bbolt database inside Config.DataDir.
const DBFile = "index.db"

var (
	bucketNames = []byte("names")      // name -> encoded record
	bucketTombs = []byte("tombstones") // name -> last version before delete
	bucketMeta  = []byte("meta")       // schema version
	keySchema   = []byte("schema")
)

const schemaVersion = 1

// batchDelay bounds how long a write waits for others to share its fsync.
// bbolt's default (10ms) favours throughput; a name write should be quick.
const batchDelay = 2 * time.Millisecond

// openTimeout bounds the wait for bbolt's file lock, held by another process
// still using the same data dir.
const openTimeout = 5 * time.Second

// boltStore keeps the index in one bbolt file. Every write is a committed,
// fsynced transaction before the caller sees success; concurrent writers go
// through db.Batch so they share commits.
type boltStore struct {
	db    *bolt.DB
	names atomic.Int64
}

func openBolt(dir string) (*boltStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, DBFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout, NoSync: false, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("open %s (locked by another process?): %w", path, err)
	}
	db.MaxBatchDelay = batchDelay
	s := &boltStore{db: db}
	var n int
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keySchema); v == nil {
			if err := meta.Put(keySchema, binary.BigEndian.AppendUint64(nil, schemaVersion)); err != nil {
				return err
			}
		} else if len(v) != 8 || binary.BigEndian.Uint64(v) != schemaVersion {
			return fmt.Errorf("unsupported index schema %x (want %d)", v, schemaVersion)
		}
		if _, err := tx.CreateBucketIfNotExists(bucketTombs); err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists(bucketNames)
		if err != nil {
			return err
		}
		n = b.Stats().KeyN
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialise %s: %w", path, err)
	}
	// The file may be new: make its directory entry durable too.
	if err := fsx.SyncDir(dir); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.names.Store(int64(n))
	return s, nil
}

// Record encoding: version (8, big endian) | updated_at unix ns (8) | address.
func encodeRecord(r Record) []byte {
	buf := make([]byte, 16, 16+len(r.Address))
	binary.BigEndian.PutUint64(buf[0:8], r.Version)
	binary.BigEndian.PutUint64(buf[8:16], uint64(r.UpdatedAt.UnixNano()))
	return append(buf, r.Address...)
}

func decodeRecord(name, v []byte) (Record, error) {
	if len(v) < 16 {
		return Record{}, fmt.Errorf("corrupt record for %q: %d bytes", name, len(v))
	}
	return Record{
		Name:      string(name),
		Version:   binary.BigEndian.Uint64(v[0:8]),
		UpdatedAt: time.Unix(0, int64(binary.BigEndian.Uint64(v[8:16]))).UTC(),
		Address:   string(v[16:]),
	}, nil
}

func mapBoltErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return errClosed
	}
	return err
}

func (s *boltStore) get(name string) (Record, error) {
	var rec Record
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketNames).Get([]byte(name))
		if v == nil {
			return ErrNotFound
		}
		var err error
		rec, err = decodeRecord([]byte(name), v)
		return err
	})
	return rec, mapBoltErr(err)
}

func (s *boltStore) put(name, address string, now time.Time, check checkFunc) (Record, bool, error) {
	var (
		rec     Record
		created bool
		refused error
	)
	key := []byte(name)
	// Batch may run fn more than once: it only assigns its outputs. A failed
	// precondition is reported through refused with a nil return, so it does
	// not roll back the other writers sharing the transaction.
	err := s.db.Batch(func(tx *bolt.Tx) error {
		rec, created, refused = Record{}, false, nil
		b := tx.Bucket(bucketNames)
		tombs := tx.Bucket(bucketTombs)
		var cur Record
		v := b.Get(key)
		exists := v != nil
		if exists {
			var err error
			if cur, err = decodeRecord(key, v); err != nil {
				return err
			}
		}
		if err := check(cur, exists); err != nil {
			refused = err
			return nil
		}
		prev := cur.Version
		if !exists {
			if t := tombs.Get(key); len(t) == 8 {
				prev = binary.BigEndian.Uint64(t)
			}
		}
		rec = Record{Name: name, Address: address, Version: prev + 1, UpdatedAt: now.UTC()}
		if err := b.Put(key, encodeRecord(rec)); err != nil {
			return err
		}
		if !exists {
			if err := tombs.Delete(key); err != nil {
				return err
			}
		}
		created = !exists
		return nil
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("put %q: %w", name, mapBoltErr(err))
	}
	if refused != nil {
		return Record{}, false, refused
	}
	if created {
		s.names.Add(1)
	}
	return rec, created, nil
}

func (s *boltStore) del(name string, check checkFunc) error {
	var refused error
	key := []byte(name)
	err := s.db.Batch(func(tx *bolt.Tx) error {
		refused = nil
		b := tx.Bucket(bucketNames)
		v := b.Get(key)
		if v == nil {
			refused = ErrNotFound
			return nil
		}
		cur, err := decodeRecord(key, v)
		if err != nil {
			return err
		}
		if err := check(cur, true); err != nil {
			refused = err
			return nil
		}
		if err := b.Delete(key); err != nil {
			return err
		}
		return tx.Bucket(bucketTombs).Put(key, binary.BigEndian.AppendUint64(nil, cur.Version))
	})
	if err != nil {
		return fmt.Errorf("delete %q: %w", name, mapBoltErr(err))
	}
	if refused != nil {
		return refused
	}
	s.names.Add(-1)
	return nil
}

func (s *boltStore) list(prefix, after string, limit int) ([]Record, error) {
	out := make([]Record, 0, min(limit, 64))
	p, a := []byte(prefix), []byte(after)
	start := p
	if bytes.Compare(a, p) >= 0 {
		start = a
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketNames).Cursor()
		for k, v := c.Seek(start); k != nil && len(out) < limit; k, v = c.Next() {
			if !bytes.HasPrefix(k, p) {
				break
			}
			if bytes.Compare(k, a) <= 0 {
				continue
			}
			rec, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list prefix %q: %w", prefix, mapBoltErr(err))
	}
	return out, nil
}

func (s *boltStore) count() int { return int(s.names.Load()) }

func (s *boltStore) close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close index db: %w", err)
	}
	return nil
}
