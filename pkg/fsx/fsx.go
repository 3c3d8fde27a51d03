// Package fsx holds the one file-system durability step that every plane
// with a store needs: fsyncing a directory, so that a file created, renamed
// or removed in it survives a crash (the go-ds-flatfs doPut sequence: temp
// file -> write -> fsync -> close -> rename -> fsync the directory).
package fsx

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// SyncDir fsyncs the directory dir. The error names the directory and
// includes a failed close, which can carry a deferred write-back error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s for fsync: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// NoSpace reports whether err means the file system is out of space
// (ENOSPC) or the user's quota is used up (EDQUOT).
func NoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
