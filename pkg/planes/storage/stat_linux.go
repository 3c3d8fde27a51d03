package storage

import (
	"os"
	"syscall"
)

// changeTime returns the inode change time (ctime) in nanoseconds. Unlike
// the modification time it cannot be set back by a user (utimes sets it to
// now), so a verified-copy cache keyed on it also notices a write whose
// author restored the mtime.
func changeTime(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Nano()
	}
	return 0
}
