package svcrt

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// systemd's socket-passing convention (sd_listen_fds(3)), which the parent
// (pkg/supervisor) and systemd-socket-activate both speak: the listeners are
// fds listenFDsStart.. listenFDsStart+LISTEN_FDS-1, addressed to the process
// whose pid is LISTEN_PID, named by the colon-separated LISTEN_FDNAMES.
const (
	listenFDsStart = 3
	envListenFDs   = "LISTEN_FDS"
	envListenPID   = "LISTEN_PID"
	envListenNames = "LISTEN_FDNAMES"
)

// listenEnv is what inheritedListener needs of the process (tests swap it).
type listenEnv struct {
	getenv   func(string) string
	unsetenv func(string) error
	getpid   func() int
	firstFD  int
}

func processListenEnv() listenEnv {
	return listenEnv{getenv: os.Getenv, unsetenv: os.Unsetenv, getpid: os.Getpid, firstFD: listenFDsStart}
}

// inheritedListener returns the listener handed down by the convention
// above, or nil when none is addressed to this process: LISTEN_FDS unset,
// or LISTEN_PID naming another process (a variable inherited by mistake
// from a grandparent). Like sd_listen_fds(1) it always removes the three
// variables from the environment, so processes this one starts never take
// them for their own, and marks the passed fds close-on-exec.
//
// With several fds, the one named name in LISTEN_FDNAMES is taken, else the
// first; the others are closed.
func inheritedListener(env listenEnv, name string) (net.Listener, error) {
	fdsVal, pidVal, namesVal := env.getenv(envListenFDs), env.getenv(envListenPID), env.getenv(envListenNames)
	for _, k := range []string{envListenFDs, envListenPID, envListenNames} {
		if err := env.unsetenv(k); err != nil {
			return nil, fmt.Errorf("unset %s: %w", k, err)
		}
	}
	if fdsVal == "" {
		return nil, nil
	}
	pid, err := strconv.Atoi(pidVal)
	if err != nil || pid != env.getpid() {
		return nil, nil // not addressed to us
	}
	n, err := strconv.Atoi(fdsVal)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("%s=%q: want a count of at least 1", envListenFDs, fdsVal)
	}
	names := strings.Split(namesVal, ":")
	pick := 0
	for i := range n {
		if i < len(names) && names[i] == name {
			pick = i
			break
		}
	}
	var ln net.Listener
	var errs []error
	for i := range n {
		fd := env.firstFD + i
		unix.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "listen-fd-"+strconv.Itoa(fd))
		if f == nil {
			errs = append(errs, fmt.Errorf("fd %d is not open", fd))
			continue
		}
		if i == pick {
			l, err := net.FileListener(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("inherited fd %d: %w", fd, err))
			}
			ln = l
		}
		_ = f.Close() // FileListener holds its own dup
	}
	if err := errors.Join(errs...); err != nil {
		if ln != nil {
			_ = ln.Close()
		}
		return nil, err
	}
	return ln, nil
}
