package gateway

import (
	"errors"
	"syscall"
)

// alive reports whether an idle pooled connection can carry a request: the
// backend has neither closed it (EOF) nor reset it, and sent nothing
// unasked. It peeks without blocking (one recvfrom with MSG_PEEK and
// MSG_DONTWAIT); anything but "no data yet" means the connection is not to
// be used.
func (dc *directConn) alive() bool {
	if dc.br.Buffered() > 0 {
		return false
	}
	sc, ok := dc.c.(syscall.Conn)
	if !ok {
		return true // not a socket (a test pipe): nothing to peek at
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, perr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = errors.Is(perr, syscall.EAGAIN)
		return true // never wait for readiness
	})
	return err == nil && ok
}
