package mailbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"

	"github.com/macronode/macronode/pkg/fsx"
)

// BoltFile is the bbolt store of earlier versions under Config.DataDir;
// MigratedSuffix is appended to its name once its contents are in the log.
const (
	BoltFile       = "mailbox.db"
	MigratedSuffix = ".migrated"
)

// migrateBolt converts DataDir/mailbox.db of an earlier version into the
// log: it writes every message and idempotency key into DataDir/log.tmp,
// fsyncs it, renames it to DataDir/log and only then renames mailbox.db to
// mailbox.db.migrated (kept for the operator to delete). A crash at any
// point leaves either the old file alone or a complete log.
func migrateBolt(dir string, log hclog.Logger) error {
	dbPath := filepath.Join(dir, BoltFile)
	ldir := filepath.Join(dir, LogDir)
	if _, err := os.Stat(dbPath); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("migrate: stat %s: %w", dbPath, err)
	}
	if _, err := os.Stat(ldir); err == nil {
		// The log is complete: the crash came between the two renames.
		return finishMigration(dir, dbPath)
	}
	tmp := ldir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("migrate: remove stale %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	n, err := copyBolt(dbPath, tmp, log)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, ldir); err != nil {
		return fmt.Errorf("migrate: rename %s: %w", tmp, err)
	}
	if err := finishMigration(dir, dbPath); err != nil {
		return err
	}
	log.Info("migrated the mailbox store from bbolt to the log", "messages", n,
		"old_file", dbPath+MigratedSuffix)
	return nil
}

func finishMigration(dir, dbPath string) error {
	if err := fsx.SyncDir(dir); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := os.Rename(dbPath, dbPath+MigratedSuffix); err != nil {
		return fmt.Errorf("migrate: rename %s: %w", dbPath, err)
	}
	if err := fsx.SyncDir(dir); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// copyBolt writes the contents of the bbolt file into a new log in dir and
// returns how many messages it copied. Leases are not carried over: they
// are not durable in the log.
func copyBolt(dbPath, dir string, log hclog.Logger) (int, error) {
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("migrate: open %s: %w", dbPath, err)
	}
	defer func() { _ = db.Close() }()
	st := &store{dir: dir, log: log, segBytes: 1 << 62, segs: make(map[uint64]*segment),
		msgs: make(map[uint64]*msgLoc), idem: make(map[string]*idemLoc)}
	defer st.closeFiles()
	var ws []write
	err = db.View(func(tx *bolt.Tx) error {
		meta, body, idem := tx.Bucket([]byte("meta")), tx.Bucket([]byte("body")), tx.Bucket([]byte("idem"))
		if meta == nil || body == nil || idem == nil {
			return errors.New("buckets missing")
		}
		st.hiSeq = meta.Sequence()
		if err := meta.ForEach(func(k, v []byte) error {
			r, err := decodeRecord(v)
			if len(k) != 8 || err != nil {
				log.Error("migrate: skipping a corrupt stored message", "key", fmt.Sprintf("%x", k), "error", err)
				return nil
			}
			seq := binary.BigEndian.Uint64(k)
			st.hiSeq = max(st.hiSeq, seq)
			if r.receipt != "" { // a lease: visible again
				r.receipt, r.visibleAt = "", r.enqueuedAt
			}
			ws = append(ws, write{seq: seq, meta: r.encode(), body: append([]byte(nil), body.Get(k)...), putBody: true})
			return nil
		}); err != nil {
			return err
		}
		return idem.ForEach(func(k, v []byte) error {
			if len(v) == 16 {
				ws = append(ws, write{idemKey: string(k), idemVal: append([]byte(nil), v...)})
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("migrate: read %s: %w", dbPath, err)
	}
	if err := st.rotate(); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	if err := st.appendBatch(ws); err != nil {
		return 0, fmt.Errorf("migrate: write the log: %w", err)
	}
	n := 0
	for _, w := range ws {
		if w.putBody {
			n++
		}
	}
	return n, nil
}
