// Package sdnotify speaks systemd's notify protocol (sd_notify(3)): state
// lines such as READY=1 sent as one datagram to the unixgram socket named by
// $NOTIFY_SOCKET, and the watchdog interval from $WATCHDOG_USEC.
//
// It is a few dozen lines on purpose: no dependency on libsystemd or cgo.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Common states (see sd_notify(3)). Several may be sent in one call,
// separated by newlines, e.g. Ready + "\nSTATUS=serving".
const (
	Ready     = "READY=1"
	Reloading = "RELOADING=1"
	Stopping  = "STOPPING=1"
	Watchdog  = "WATCHDOG=1"
)

// Status formats a STATUS= line.
func Status(s string) string { return "STATUS=" + s }

// ExtendTimeout formats an EXTEND_TIMEOUT_USEC= line: the service manager
// waits d more (from now) before its start, runtime or stop timeout fires,
// if that is later than the unit's own timeout.
func ExtendTimeout(d time.Duration) string {
	return "EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(d.Microseconds(), 10)
}

// Notify sends state to the service manager. It returns false, nil when
// $NOTIFY_SOCKET is unset (not run by systemd, or Type=simple). Socket names
// starting with '@' are Linux abstract sockets.
func Notify(state string) (bool, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return false, nil
	}
	if name[0] != '/' && name[0] != '@' {
		return false, fmt.Errorf("sd_notify: NOTIFY_SOCKET %q is neither a path nor an abstract name", name)
	}
	addr := &net.UnixAddr{Name: name, Net: "unixgram"}
	if name[0] == '@' {
		// The kernel's abstract namespace: a leading NUL byte.
		addr.Name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return false, fmt.Errorf("sd_notify: dial %s: %w", name, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify: send: %w", err)
	}
	return true, nil
}

// WatchdogInterval returns how often to send WATCHDOG=1: half of
// $WATCHDOG_USEC. It returns false when the watchdog is off, when
// $WATCHDOG_PID names another process, or when the values are malformed.
func WatchdogInterval() (time.Duration, bool) {
	d, err := watchdog(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
	if err != nil {
		return 0, false
	}
	return d, true
}

var errNoWatchdog = errors.New("watchdog not enabled")

func watchdog(usecS, pidS string, self int) (time.Duration, error) {
	if usecS == "" {
		return 0, errNoWatchdog
	}
	usec, err := strconv.ParseUint(usecS, 10, 63)
	if err != nil || usec == 0 {
		return 0, fmt.Errorf("bad WATCHDOG_USEC %q", usecS)
	}
	if pidS != "" {
		pid, err := strconv.Atoi(pidS)
		if err != nil {
			return 0, fmt.Errorf("bad WATCHDOG_PID %q", pidS)
		}
		if pid != self {
			return 0, fmt.Errorf("watchdog is for pid %d, not %d", pid, self)
		}
	}
	if usec > uint64(time.Duration(1<<63-1)/time.Microsecond) {
		return 0, fmt.Errorf("WATCHDOG_USEC %q out of range", usecS)
	}
	return time.Duration(usec) * time.Microsecond / 2, nil
}
