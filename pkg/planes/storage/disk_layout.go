package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// shardCount is the number of shard directories under objects/, each named
// by two lowercase hex digits: a blob's shard is its address's first byte.
const shardCount = 256

// shardName returns the name of shard i ("00".."ff").
func shardName(i int) string {
	s := strconv.FormatInt(int64(i), 16)
	if len(s) == 1 {
		s = "0" + s
	}
	return s
}

// mkShards creates the shard directories that are missing. The caller
// fsyncs objects/ afterwards, once for all of them.
func (d *DiskStore) mkShards() error {
	for i := range shardCount {
		err := os.Mkdir(filepath.Join(d.objDir, shardName(i)), 0o700)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return classify("create shard dir", err)
		}
	}
	return nil
}

// mkShard recreates final's shard directory (removed behind the store's
// back) and fsyncs objects/, so a Put can still land there.
func (d *DiskStore) mkShard(final string) error {
	err := os.Mkdir(filepath.Dir(final), 0o700)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return classify("create shard dir", err)
	}
	if err := d.syncDir(d.objDir); err != nil {
		return classify("fsync objects dir", err)
	}
	return nil
}

// migrateLayout moves blobs of the former two-level layout
// (objects/<hex[0:2]>/<hex[2:4]>/<hex>) to objects/<hex[0:2]>/<hex>, with
// the no-replace rename, then removes the emptied inner directories and
// fsyncs each shard it changed. A blob whose new name is taken already, or
// an entry that is not a blob of that shard, is logged and left where it is
// (count then warns about it as an unexpected file). A crash part-way
// through is harmless: the next open finishes the move.
func (d *DiskStore) migrateLayout() error {
	moved := 0
	for i := range shardCount {
		outer := shardName(i)
		shard := filepath.Join(d.objDir, outer)
		inner, err := readShard(shard)
		if err != nil {
			return fmt.Errorf("migrate layout: %w", err)
		}
		changed := false
		for _, in := range inner {
			if !isShardName(in) {
				continue
			}
			n, err := d.migrateInner(shard, outer+in)
			if err != nil {
				return fmt.Errorf("migrate layout: %w", err)
			}
			moved += n
			changed = true
		}
		if changed {
			if err := d.syncDir(shard); err != nil {
				return fmt.Errorf("migrate layout: fsync %s: %w", shard, err)
			}
		}
	}
	if moved > 0 {
		d.log.Info("moved blobs from the two-level shard layout to one level", "blobs", moved)
	}
	return nil
}

// migrateInner moves the blobs of one former inner shard (named prefix, four
// hex digits) up into shard and removes the inner directory once it is
// empty. It returns how many blobs it moved.
func (d *DiskStore) migrateInner(shard, prefix string) (int, error) {
	dir := filepath.Join(shard, prefix[2:])
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	moved := 0
	for _, e := range ents {
		n := e.Name()
		if len(n) != 64 || n[:4] != prefix || !e.Type().IsRegular() {
			d.log.Warn("leaving unexpected entry in a former shard dir", "path", filepath.Join(dir, n))
			continue
		}
		err := d.rename(filepath.Join(dir, n), filepath.Join(shard, n))
		switch {
		case errors.Is(err, fs.ErrExist):
			d.log.Warn("blob stored under both layouts; keeping the one-level copy", "path", filepath.Join(dir, n))
		case err != nil:
			return moved, err
		default:
			moved++
		}
	}
	// A directory still holding strays is not empty: keep it (logged above).
	err = os.Remove(dir)
	if err != nil && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, fs.ErrExist) && !errors.Is(err, fs.ErrNotExist) {
		return moved, err
	}
	return moved, nil
}
