package logging

import (
	"io"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// JournalStream reports whether journalStream, the value of JOURNAL_STREAM
// ("<device>:<inode>", set by systemd when it connects stdout or stderr to
// the journal), names the file w writes to. Only then does the journal read
// the "<N>" priority prefixes (systemd.exec(5)): a process whose stderr was
// redirected elsewhere still inherits the variable and must not add them.
func JournalStream(journalStream string, w io.Writer) bool {
	devS, inoS, ok := strings.Cut(journalStream, ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(devS, 10, 64)
	ino, err2 := strconv.ParseUint(inoS, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino //nolint:unconvert // Dev's type differs by platform
}
