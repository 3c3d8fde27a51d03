//go:build unix

package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockDir takes an exclusive, non-blocking flock on dir/LOCK and writes the
// process id into it (for the error message of the next contender). The
// lock lives as long as the returned file is open; the kernel drops it when
// the process dies, so a crash never leaves a stale lock behind.
func lockDir(dir string) (*os.File, error) {
	p := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := ""
			if b, rerr := os.ReadFile(p); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					holder = " (pid " + strconv.Itoa(pid) + ")"
				}
			}
			return nil, fmt.Errorf("data dir %s is in use by another process%s: %w", dir, holder, ErrInUse)
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	// Best effort: the pid is only informative.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
