package svcrt

import (
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeListenEnv is a process environment holding vars, with pid 4242.
func fakeListenEnv(vars map[string]string, firstFD int) listenEnv {
	return listenEnv{
		getenv:   func(k string) string { return vars[k] },
		unsetenv: func(k string) error { delete(vars, k); return nil },
		getpid:   func() int { return 4242 },
		firstFD:  firstFD,
	}
}

// passedFD returns a dup of a fresh loopback listener's fd (as a parent
// would pass it) and the listener's address; the original is closed.
func passedFD(t *testing.T) (int, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return fd, ln.Addr().String()
}

func TestInheritedListener(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		want    bool // a listener is returned
		wantErr bool
	}{
		{name: "addressed to us", vars: map[string]string{envListenFDs: "1", envListenPID: "4242", envListenNames: "storage"}, want: true},
		{name: "no names", vars: map[string]string{envListenFDs: "1", envListenPID: "4242"}, want: true},
		{name: "another pid", vars: map[string]string{envListenFDs: "1", envListenPID: "4243"}},
		{name: "no pid", vars: map[string]string{envListenFDs: "1"}},
		{name: "nothing passed", vars: map[string]string{}},
		{name: "bad count", vars: map[string]string{envListenFDs: "zero", envListenPID: "4242"}, wantErr: true},
		{name: "zero count", vars: map[string]string{envListenFDs: "0", envListenPID: "4242"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd, addr := passedFD(t)
			ln, err := inheritedListener(fakeListenEnv(tt.vars, fd), "storage")
			if ln == nil {
				unix.Close(fd) // not taken: still ours
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if len(tt.vars) != 0 {
				t.Errorf("variables left in the environment: %v", tt.vars)
			}
			if (ln != nil) != tt.want {
				t.Fatalf("listener = %v, want one: %v", ln, tt.want)
			}
			if ln == nil {
				return
			}
			defer ln.Close()
			if got := ln.Addr().String(); got != addr {
				t.Errorf("addr = %s, want %s", got, addr)
			}
			flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
			if err == nil && flags&unix.FD_CLOEXEC == 0 {
				t.Errorf("fd %d is not close-on-exec", fd)
			}
			accepted := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err == nil {
					c.Close()
				}
				accepted <- err
			}()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			if err := <-accepted; err != nil {
				t.Fatalf("accept on the inherited listener: %v", err)
			}
		})
	}
}

// With several fds, the one named after the plane is served; the others
// are closed.
func TestInheritedListenerPicksByName(t *testing.T) {
	first, _ := passedFD(t)
	second, addr := passedFD(t)
	if second != first+1 {
		// Descriptors are allocated lowest first; another goroutine took
		// the one in between (never clobber a descriptor we do not own).
		t.Skipf("fds %d and %d are not adjacent", first, second)
	}
	vars := map[string]string{envListenFDs: "2", envListenPID: "4242", envListenNames: "metrics:storage"}
	ln, err := inheritedListener(fakeListenEnv(vars, first), "storage")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := ln.Addr().String(); got != addr {
		t.Errorf("served %s, want the one named storage (%s)", got, addr)
	}
	if _, err := unix.FcntlInt(uintptr(first), unix.F_GETFD, 0); err != syscall.EBADF {
		t.Errorf("unused fd %d still open (err %v)", first, err)
	}
}
