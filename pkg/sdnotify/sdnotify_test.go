package sdnotify

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %q: %v", name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, _, err := c.ReadFromUnix(buf)
	if err != nil {
		t.Fatalf("read datagram: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyPathSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "mn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify.sock")
	c := listen(t, path)
	t.Setenv("NOTIFY_SOCKET", path)

	msg := Ready + "\n" + Status("2/6 services ready")
	ok, err := Notify(msg)
	if err != nil || !ok {
		t.Fatalf("Notify = %v, %v; want true, nil", ok, err)
	}
	if got := recv(t, c); got != msg {
		t.Fatalf("received %q, want %q", got, msg)
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "@mn-sdnotify-test-" + hex.EncodeToString(b)
	c := listen(t, name)
	t.Setenv("NOTIFY_SOCKET", name)
	ok, err := Notify(Stopping)
	if err != nil || !ok {
		t.Fatalf("Notify = %v, %v; want true, nil", ok, err)
	}
	if got := recv(t, c); got != Stopping {
		t.Fatalf("received %q, want %q", got, Stopping)
	}
}

func TestNotifyUnset(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	ok, err := Notify(Ready)
	if ok || err != nil {
		t.Fatalf("Notify without NOTIFY_SOCKET = %v, %v; want false, nil", ok, err)
	}
}

func TestNotifyErrors(t *testing.T) {
	for _, name := range []string{"relative/path", "/nonexistent/dir/notify.sock"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", name)
			if ok, err := Notify(Ready); ok || err == nil {
				t.Fatalf("Notify = %v, %v; want false and an error", ok, err)
			}
		})
	}
}

func TestWatchdog(t *testing.T) {
	self := 4242
	cases := []struct {
		usec, pid string
		want      time.Duration
		ok        bool
	}{
		{"", "", 0, false},
		{"30000000", "", 15 * time.Second, true},
		{"30000000", "4242", 15 * time.Second, true},
		{"30000000", "4243", 0, false},
		{"30000000", "x", 0, false},
		{"0", "", 0, false},
		{"-5", "", 0, false},
		{"abc", "", 0, false},
		{"1", "", 500 * time.Nanosecond, true},
		{"99999999999999999999", "", 0, false},
	}
	for _, tc := range cases {
		got, err := watchdog(tc.usec, tc.pid, self)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("watchdog(%q, %q) = %v, %v; want %v, ok=%v", tc.usec, tc.pid, got, err, tc.want, tc.ok)
		}
	}
}

func TestWatchdogIntervalEnv(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "2000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if d, ok := WatchdogInterval(); !ok || d != time.Second {
		t.Fatalf("WatchdogInterval = %v, %v; want 1s, true", d, ok)
	}
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	if _, ok := WatchdogInterval(); ok {
		t.Fatal("WatchdogInterval for another pid: want false")
	}
}

func TestExtendTimeout(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{3 * time.Second, "EXTEND_TIMEOUT_USEC=3000000"},
		{1500 * time.Microsecond, "EXTEND_TIMEOUT_USEC=1500"},
		{0, "EXTEND_TIMEOUT_USEC=0"},
	} {
		if got := ExtendTimeout(tc.d); got != tc.want {
			t.Errorf("ExtendTimeout(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
