package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/macronode/macronode/pkg/events"
)

// Sockets held by the parent (Spec.HoldListener). The supervisor binds the
// service's listening socket itself and keeps its copy open across the
// child's deaths, so a connection that arrives while no child accepts waits
// in the kernel's accept backlog for the next child instead of being
// refused. Each child gets the socket as fd 3 by systemd's convention:
// LISTEN_FDS=1, LISTEN_FDNAMES=<service>, and LISTEN_PID=<its pid>, which
// only the child itself can know: the exec shim below sets it.
//
// The backlog is Go's (net.Listen asks for the kernel's somaxconn, 4096 on
// Linux 5.4 and later). While no child accepts, up to that many connections
// complete their handshake and wait; past it the kernel drops further SYNs
// (tcp_abort_on_overflow=0), so clients retransmit and see a longer delay,
// not a refusal, until their own connect timeout.
//
// A service stopped on purpose (Stop, the crash-loop breaker's failed
// state, the final drain), or waiting in a backoff longer than
// heldBackoffMax, has its socket closed, so clients are refused at once
// rather than left waiting for a child that will not come soon; the next
// spawn binds it again and reports a bind failure like any spawn failure.
// An immediate restart (a stable child) and the first short backoffs keep
// the socket held.

// heldBackoffMax is the longest backoff delay during which the socket stays
// held: a connect waits at most about this long in the backlog.
const heldBackoffMax = time.Second

// The LISTEN_* variables of systemd's convention.
const (
	envListenFDs   = "LISTEN_FDS"
	envListenPID   = "LISTEN_PID"
	envListenNames = "LISTEN_FDNAMES"
)

// Listener states in Status.Listener.
const (
	ListenerHeld   = "held"   // the parent holds the bound socket
	ListenerClosed = "closed" // the parent closed it (stopped, failed, shutdown)
)

// shimShell runs shimScript: a shell exports its own pid as LISTEN_PID and
// execs the plane binary, whose pid stays the same (what
// systemd-socket-activate does in C between fork and exec, which os/exec
// cannot). The shell costs one more exec per spawn (BenchmarkSpawnShim:
// about 7 ms on a loaded 2-core machine where fork+exec of /bin/true took
// 11 ms), against about 70 ms more for re-executing the parent's own
// binary in a hidden mode, whose package initialisation (libp2p, metrics)
// runs before any main could exec; the child's pid check stays, as the
// convention requires. Without /bin/sh the spawn fails and says so.
const (
	shimShell  = "/bin/sh"
	shimScript = `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`
)

// heldListener is the parent's copy of one service's socket. Only the
// service goroutine uses it once Run started (New and release before).
type heldListener struct {
	ln   *net.TCPListener // nil while closed
	addr string           // the configured address of the socket held, or last held
	last string           // the address it was bound to (the kernel's port for :0)
}

// bind makes sure a socket for addr is held: it keeps the one it has for
// the same address, else closes the old one and binds anew (to the port it
// had, when addr asks for any port: a stopped service comes back where it was).
func (h *heldListener) bind(service, addr string) (changed bool, err error) {
	if h.ln != nil && h.addr == addr {
		return false, nil
	}
	h.close()
	bindTo := addr
	if h.addr == addr && h.last != "" {
		bindTo = h.last
	}
	ln, err := net.Listen("tcp", bindTo)
	if err != nil {
		return false, fmt.Errorf("bind %s listener on %s: %w", service, bindTo, err)
	}
	h.ln, h.addr, h.last = ln.(*net.TCPListener), addr, ln.Addr().String()
	return true, nil
}

// file returns a descriptor of the socket for one child (a dup, closed by
// the spawn once the child has its own).
func (h *heldListener) file() (*os.File, error) {
	if h.ln == nil {
		return nil, errors.New("listener is closed")
	}
	f, err := h.ln.File()
	if err != nil {
		return nil, fmt.Errorf("listener fd: %w", err)
	}
	return f, nil
}

// close closes the parent's copy; it reports whether one was open.
func (h *heldListener) close() bool {
	if h.ln == nil {
		return false
	}
	_ = h.ln.Close()
	h.ln = nil
	return true
}

// boundAddr is the address the socket is (or was last) bound to.
func (h *heldListener) boundAddr() string {
	if h.last != "" {
		return h.last
	}
	return h.addr
}

// ListenerEvent is the body of a listener event: the parent now holds the
// socket of Addr, or closed it.
type ListenerEvent struct {
	State  string `json:"state"` // ListenerHeld or ListenerClosed
	Addr   string `json:"addr"`
	Reason string `json:"reason,omitempty"`
}

// holdListener binds the service's socket for the next child if it is not
// held (a first start, a start after a stop or the failed state, a new
// address after Update), and announces it.
func (v *service) holdListener() error {
	if v.held == nil {
		return nil
	}
	changed, err := v.held.bind(v.spec.Name, v.spec.Listen)
	if err != nil {
		return err
	}
	if changed {
		v.listenerChanged(ListenerHeld, "")
	}
	return nil
}

// dropListener closes the parent's copy of the socket, if held.
func (v *service) dropListener(reason string) {
	if v.held != nil && v.held.close() {
		v.log.Info("listener closed", "addr", v.held.boundAddr(), "reason", reason)
		v.listenerChanged(ListenerClosed, reason)
	}
}

func (v *service) listenerChanged(state, reason string) {
	addr := v.held.boundAddr()
	v.update(func(st *Status) { st.Listener, st.Listen = state, addr })
	v.emit(events.Listener, ListenerEvent{State: state, Addr: addr, Reason: reason})
}

// listenEnv is the LISTEN_* part of a child's environment (LISTEN_PID is
// the shim's).
func listenEnv(name string) []string {
	return []string{envListenFDs + "=" + strconv.Itoa(1), envListenNames + "=" + name}
}

// listenerFile holds the socket (binding it if needed) and returns the
// descriptor for the next child; nil for a service that holds none.
func (v *service) listenerFile() (*os.File, error) {
	if v.held == nil {
		return nil, nil
	}
	if err := v.holdListener(); err != nil {
		return nil, err
	}
	return v.held.file()
}

// bindHeld binds every held socket before any child starts, so that a busy
// port fails the node's start naming the service and the address.
func (s *Supervisor) bindHeld() error {
	for _, v := range s.services {
		if !v.spec.HoldListener {
			continue
		}
		v.held = &heldListener{}
		if _, err := v.held.bind(v.spec.Name, v.spec.Listen); err != nil {
			s.closeHeld()
			return err
		}
		v.st.Listener, v.st.Listen = ListenerHeld, v.held.boundAddr()
	}
	return nil
}

// closeHeld closes every held socket of a supervisor that never ran.
func (s *Supervisor) closeHeld() {
	for _, v := range s.services {
		if v.held != nil {
			v.held.close()
		}
	}
}
