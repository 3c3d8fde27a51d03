package supervisor

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/macronode/macronode/pkg/control"
)

const (
	// helloTimeout bounds the wait for a new connection's hello.
	helloTimeout = 2 * time.Second
	// maxPendingConns bounds connections that have not said hello yet.
	maxPendingConns = 64
)

// listenControl creates dir (0700) if missing and binds dir/control.sock
// (0600). A stale socket left by a dead parent is replaced; a live one is an
// error. The returned warning, if any, should be logged.
func listenControl(dir string) (ln *net.UnixListener, path, warning string, err error) {
	path = filepath.Join(dir, control.SocketName)
	if len(path) > control.MaxSocketPath {
		return nil, "", "", fmt.Errorf("control socket path %q is %d bytes, longer than %d: use a shorter run_dir", path, len(path), control.MaxSocketPath)
	}
	if _, statErr := os.Stat(dir); errors.Is(statErr, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, "", "", fmt.Errorf("create run dir: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, "", "", fmt.Errorf("chmod run dir: %w", err)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, "", "", fmt.Errorf("run dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, "", "", fmt.Errorf("run dir %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		warning = fmt.Sprintf("run dir %s is writable by group or others (%v); the socket itself is 0600", dir, fi.Mode().Perm())
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, "", "", err
	}
	ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, "", "", fmt.Errorf("listen on control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return nil, "", "", fmt.Errorf("chmod control socket: %w", err)
	}
	return ln, path, warning, nil
}

// removeStaleSocket removes path if it is a socket nobody listens on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("control socket path %s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		_ = c.Close()
		return fmt.Errorf("control socket %s is in use by another process", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale control socket: %w", err)
	}
	return nil
}

// acceptLoop serves the control socket until it is closed.
func (s *Supervisor) acceptLoop() {
	defer s.bg.Done()
	retry := 5 * time.Millisecond
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Error("control socket accept", "error", err)
			t := time.NewTimer(retry)
			select {
			case <-t.C:
			case <-s.closed:
				t.Stop()
				return
			}
			retry = min(2*retry, time.Second)
			continue
		}
		retry = 5 * time.Millisecond
		if !s.trackConn(c) {
			_ = c.Close()
			continue
		}
		go s.serveConn(c)
	}
}

// trackConn registers c so shutdown can close it; false once closing.
func (s *Supervisor) trackConn(c net.Conn) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.connsClosed {
		return false
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	return true
}

func (s *Supervisor) untrackConn(c net.Conn) {
	s.connMu.Lock()
	delete(s.conns, c)
	s.connMu.Unlock()
	_ = c.Close()
	s.connWG.Done()
}

// closeConns closes every control connection and waits for their handlers.
func (s *Supervisor) closeConns() {
	s.connMu.Lock()
	s.connsClosed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.connMu.Unlock()
	s.connWG.Wait()
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return nil, fmt.Errorf("peer credentials: %w", credErr)
	}
	return cred, nil
}

// serveConn authenticates one connection and forwards its messages to the
// service goroutine. Any bad input closes this connection only.
func (s *Supervisor) serveConn(c *net.UnixConn) {
	defer s.untrackConn(c)
	select {
	case s.pending <- struct{}{}:
	default:
		s.refused(refuse(reasonBusy, errors.New("too many connections awaiting hello")))
		return
	}
	svc, p, dec, err := s.handshake(c)
	<-s.pending
	if err != nil {
		s.refused(err)
		return
	}
	defer p.detach(c)
	log := svc.log.With("pid", p.pid)
	log.Debug("control: child connected")
	if !svc.post(event{p: p, kind: evHello}, s.closed) {
		return
	}
	s.deliverReload(svc, p) // a restarted child gets the latest reload too
	for {
		m, err := dec.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				log.Warn("control: closing connection", "error", err)
			}
			p.detach(c) // before the event: a reconnecting child may say hello again
			svc.post(event{p: p, kind: evClosed}, s.closed)
			return
		}
		var kind eventKind
		switch m.Type {
		case control.TypeReady:
			kind = evReady
		case control.TypeHealth:
			kind = evHealth
		case control.TypeHeartbeat:
			kind = evHeartbeat
		case control.TypeGoodbye:
			kind = evGoodbye
		default:
			log.Warn("control: closing connection", "error", fmt.Errorf("unexpected %q from child", m.Type))
			p.detach(c)
			svc.post(event{p: p, kind: evClosed}, s.closed)
			return
		}
		if !svc.post(event{p: p, kind: kind, msg: m}, s.closed) {
			return
		}
	}
}

// handshake reads the hello and checks it against SO_PEERCRED and the
// per-spawn token; on success the connection is bound to the child.
//
// The child is registered before exec, so a hello can arrive before the
// spawning goroutine has recorded the child's pid. A hello bearing the
// pending child's token then waits (until the hello deadline, holding no
// lock) for the pid, which both SO_PEERCRED and the hello must match.
func (s *Supervisor) handshake(c *net.UnixConn) (*service, *proc, *control.Decoder, error) {
	cred, err := peerCred(c)
	if err != nil {
		return nil, nil, nil, refuse(reasonPeer, err)
	}
	deadline := time.Now().Add(helloTimeout)
	_ = c.SetReadDeadline(deadline)
	dec := control.NewDecoder(c)
	m, err := dec.Next()
	if err != nil {
		return nil, nil, nil, refuse(reasonMalformed, fmt.Errorf("peer pid %d uid %d: read hello: %w", cred.Pid, cred.Uid, err))
	}
	if m.Type != control.TypeHello {
		return nil, nil, nil, refuse(reasonMalformed, fmt.Errorf("peer pid %d uid %d: first message is %q, want hello", cred.Pid, cred.Uid, m.Type))
	}
	if int(cred.Uid) != os.Getuid() {
		return nil, nil, nil, refuse(reasonPeer, fmt.Errorf("peer pid %d: peer uid %d is not ours (%d)", cred.Pid, cred.Uid, os.Getuid()))
	}
	svc := s.byName[m.Service]
	if svc == nil {
		return nil, nil, nil, refuse(reasonUnknown, fmt.Errorf("peer pid %d: hello for %w %q", cred.Pid, ErrUnknownService, m.Service))
	}
	p := svc.current()
	if p == nil {
		return nil, nil, nil, refuse(reasonNoChild, fmt.Errorf("peer pid %d: service %s has no running child", cred.Pid, m.Service))
	}
	tokenOK := subtle.ConstantTimeCompare([]byte(m.Token), []byte(p.token)) == 1
	pid, known := p.knownPID()
	if !known {
		if !tokenOK {
			return nil, nil, nil, refuse(reasonToken, fmt.Errorf("peer pid %d: wrong token for %s", cred.Pid, m.Service))
		}
		if hook := s.testHookPIDWait; hook != nil {
			hook(m.Service)
		}
		if pid = p.waitPID(deadline, s.closed); pid == 0 {
			return nil, nil, nil, refuse(reasonNoChild, fmt.Errorf("peer pid %d: child of %s not started within %s of its hello", cred.Pid, m.Service, helloTimeout))
		}
	}
	switch {
	case pid == 0:
		return nil, nil, nil, refuse(reasonNoChild, fmt.Errorf("peer pid %d: service %s has no running child", cred.Pid, m.Service))
	case int(cred.Pid) != pid || m.PID != pid:
		return nil, nil, nil, refuse(reasonPeer, fmt.Errorf("peer pid %d (hello says %d) is not the child of %s (pid %d)", cred.Pid, m.PID, m.Service, pid))
	case !tokenOK:
		return nil, nil, nil, refuse(reasonToken, fmt.Errorf("peer pid %d: wrong token for %s", cred.Pid, m.Service))
	}
	_ = c.SetReadDeadline(time.Time{})
	if !p.attach(c) {
		return nil, nil, nil, refuse(reasonDuplicate, fmt.Errorf("peer pid %d: %s already has a control connection", cred.Pid, m.Service))
	}
	return svc, p, dec, nil
}
