package supervisor

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/macronode/macronode/pkg/control"
)

// pipeDrainDelay bounds how long the owner waits for the output pipes to
// reach EOF after the child exited and its group was swept (a grandchild
// that left the group may still hold them). This bounded drain is the
// mechanism: cmd.WaitDelay does nothing for *os.File pipes, so it is unset.
const pipeDrainDelay = 2 * time.Second

// proc is one spawned child process. Its owner goroutine (run) is the only
// one that reads the pipes, waits for and reaps the process; everyone else
// selects on exited and done.
type proc struct {
	token string

	// pid and started are written once by the owner goroutine before
	// pidKnown is closed, and read only after that (or after start returned).
	// The proc is registered as the service's child before exec, so a child
	// whose hello beats the owner goroutine waits on pidKnown (see handshake).
	pid      int
	started  time.Time
	pidKnown chan struct{} // closed once pid is recorded, or the start failed (pid 0)

	exited chan struct{} // closed when the process has exited (not yet reaped)
	done   chan struct{} // closed after cmd.Wait: reaped, pipes drained

	// Set by the owner before done is closed; read after <-done.
	state   *os.ProcessState
	waitErr error
	oom     oomWatch // the memory cgroup's OOM-kill count at spawn (oom.go)

	// Crash blocks of stdout and stderr, fed by the pipe readers (crash.go).
	crashOut, crashErr crashDetector

	mu      sync.Mutex
	gone    bool // the process exited: its pid must no longer be signalled
	conn    net.Conn
	enc     *control.Encoder
	exitAt  time.Time
	readyAt time.Time // first ready; zero if never ready
	reason  string    // why the supervisor ended it, if it did
}

// newToken returns a fresh random control token.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("control token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// newProc returns a child-to-be with its control token; start runs it.
func newProc(token string) *proc {
	return &proc{
		token:    token,
		pidKnown: make(chan struct{}),
		exited:   make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// start spawns the child described by spec from a goroutine that keeps its
// OS thread locked for the child's whole life, so that Pdeathsig (which
// fires when the starting thread exits, golang/go#27505) means "parent died".
// It returns once the process is started or failed to start. listener, if
// not nil, becomes the child's fd 3 and the child is started through the
// exec shim (held.go), which sets LISTEN_PID to the child's own pid; start
// closes it either way. afterExec, if not nil (tests only), runs after exec
// and before the pid is recorded.
func (p *proc) start(spec *Spec, env []string, listener *os.File, sink *logSink, afterExec func()) error {
	cmd, err := childCommand(spec, listener != nil)
	if err != nil {
		if listener != nil {
			listener.Close()
		}
		close(p.pidKnown)
		return err
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if listener != nil {
		cmd.ExtraFiles = []*os.File{listener} // fd 3; closed by run, or below on failure
	}
	// Our own pipes (not StdoutPipe): the child gets the write ends directly,
	// the owner goroutine alone reads and closes the read ends.
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(cmd.ExtraFiles...)
		close(p.pidKnown)
		return fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(outR, outW)
		closeAll(cmd.ExtraFiles...)
		close(p.pidKnown)
		return fmt.Errorf("stderr pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	if spec.ExtraFiles != nil {
		extra, err := spec.ExtraFiles()
		if err != nil {
			closeAll(outR, outW, errR, errW)
			closeAll(cmd.ExtraFiles...)
			close(p.pidKnown)
			return fmt.Errorf("inherited files: %w", err)
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, extra...)
	}
	started := make(chan error, 1)
	go p.run(cmd, [2]*os.File{outR, errR}, [2]*os.File{outW, errW}, sink, afterExec, started)
	return <-started
}

// childCommand is the child's command line: the binary itself, or, when the
// child inherits a listener, the exec shim running it. The binary is
// resolved here so that a missing one fails the spawn as it does without
// the shim, rather than as an exit of the shim.
func childCommand(spec *Spec, shim bool) (*exec.Cmd, error) {
	if !shim {
		return exec.Command(spec.Binary, spec.Args...), nil
	}
	path, err := exec.LookPath(spec.Binary)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Binary, err)
	}
	if _, err := os.Stat(shimShell); err != nil {
		return nil, fmt.Errorf("start %s: handing down its listener needs %s (the exec shim that sets LISTEN_PID): %w",
			spec.Binary, shimShell, err)
	}
	return exec.Command(shimShell, append([]string{"-c", shimScript, path}, spec.Args...)...), nil
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// run is the owner goroutine: start, drain the pipes, then reap.
func (p *proc) run(cmd *exec.Cmd, readEnds, writeEnds [2]*os.File, sink *logSink, afterExec func(), started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread() // only after the child is reaped
	err := cmd.Start()
	closeAll(writeEnds[:]...) // the child holds its own copies now
	closeAll(cmd.ExtraFiles...)
	if err != nil {
		closeAll(readEnds[:]...)
		close(p.pidKnown)
		started <- fmt.Errorf("start %s: %w", cmd.Path, err)
		return
	}
	defer closeAll(readEnds[:]...)
	if afterExec != nil {
		afterExec()
	}
	p.pid = cmd.Process.Pid
	p.started = time.Now()
	p.oom = watchOOM(procRoot, cgroupRoot, p.pid)
	close(p.pidKnown)
	started <- nil

	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); readLines(readEnds[0], "stdout", sink, &p.crashOut) }()
	go func() { defer readers.Done(); readLines(readEnds[1], "stderr", sink, &p.crashErr) }()

	// Learn of the exit without reaping (WNOWAIT): the zombie keeps the pid
	// and the process group id reserved, so the group can be swept safely.
	waitErr := waitExited(p.pid)
	if waitErr == nil {
		p.markGone()
		// Sweep grandchildren left in the group; they may hold our pipes.
		_ = unix.Kill(-p.pid, unix.SIGKILL)
	}

	// Drain the pipes to EOF, bounded: a grandchild that escaped the group
	// could hold them open forever. (Without the exit notice the child may
	// still run, so then we can only wait for EOF.)
	drained := make(chan struct{})
	go func() { readers.Wait(); close(drained) }()
	bound := time.NewTimer(pipeDrainDelay)
	if waitErr != nil {
		bound.Stop()
	}
	select {
	case <-drained:
	case <-bound.C:
		closeAll(readEnds[:]...) // unblocks the readers
		<-drained
	}
	bound.Stop()

	err = cmd.Wait() // the readers are done; now reap
	p.state = cmd.ProcessState
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		p.waitErr = err
	}
	if waitErr != nil {
		p.markGone() // without WNOWAIT we learn of the exit only now
	}
	close(p.done)
}

// knownPID returns the child's pid once it is recorded; ok is false while
// the spawn has not got that far. A failed start reports pid 0.
func (p *proc) knownPID() (pid int, ok bool) {
	select {
	case <-p.pidKnown:
		return p.pid, true
	default:
		return 0, false
	}
}

// waitPID waits until the pid is recorded, at most until deadline or stop;
// it returns 0 if it is not known by then (or the start failed).
func (p *proc) waitPID(deadline time.Time, stop <-chan struct{}) int {
	if pid, ok := p.knownPID(); ok {
		return pid
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-p.pidKnown:
		return p.pid
	case <-t.C:
	case <-stop:
	}
	return 0
}

// markGone records the exit: from now on the pid is never signalled, and
// readiness drops (the service goroutine selects on exited).
func (p *proc) markGone() {
	p.mu.Lock()
	p.gone = true
	p.exitAt = time.Now()
	p.mu.Unlock()
	close(p.exited)
}

// waitExited blocks until pid has exited, leaving it unreaped.
func waitExited(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("waitid %d: %w", pid, err)
		}
		return nil
	}
}

// signalGroup sends sig to the child's process group unless the child has
// already exited (then the owner has swept the group itself and the pid may
// soon be reaped and reused).
func (p *proc) signalGroup(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return nil
	}
	if err := unix.Kill(-p.pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal group %d: %w", p.pid, err)
	}
	return nil
}

// attach binds an authenticated control connection; false if one is bound.
func (p *proc) attach(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil || p.gone {
		return false
	}
	p.conn = c
	p.enc = control.NewConnEncoder(c, sendTimeout)
	return true
}

// sendTimeout bounds one control write to a child.
const sendTimeout = time.Second

// unreadInput reports whether the control connection holds bytes that have
// arrived but not been read: the child wrote them, so it made progress.
func (p *proc) unreadInput() bool {
	p.mu.Lock()
	c := p.conn
	p.mu.Unlock()
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	if err := raw.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	}); err != nil {
		return false
	}
	return n > 0
}

// detach forgets c if it is the bound connection.
func (p *proc) detach(c net.Conn) {
	p.mu.Lock()
	if p.conn == c {
		p.conn, p.enc = nil, nil
	}
	p.mu.Unlock()
}

// send writes m on the control connection, if any, with a short deadline
// (sendTimeout), holding no lock of ours.
func (p *proc) send(m control.Message) error {
	p.mu.Lock()
	enc := p.enc
	p.mu.Unlock()
	if enc == nil {
		return nil
	}
	return enc.Send(m)
}

// closeConn closes the control connection, if any.
func (p *proc) closeConn() {
	p.mu.Lock()
	c := p.conn
	p.conn, p.enc = nil, nil
	p.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// exitRecord describes the finished process; call after <-p.done.
func (p *proc) exitRecord(lines []LogLine) Exit {
	p.mu.Lock()
	exitAt, reason := p.exitAt, p.reason
	p.mu.Unlock()
	e := Exit{
		Time:          exitAt,
		PID:           p.pid,
		Code:          -1,
		UptimeSeconds: exitAt.Sub(p.started).Seconds(),
		Reason:        reason,
		LastLines:     make([]string, 0, len(lines)),
		CrashBlock:    crashBlockOf(&p.crashErr, &p.crashOut),
	}
	for _, l := range lines {
		e.LastLines = append(e.LastLines, l.Text)
	}
	switch {
	case p.state != nil:
		e.Description = p.state.String()
		e.Code = p.state.ExitCode()
		if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Code = 128 + int(ws.Signal())
			e.Signal = ws.Signal().String()
			// A SIGKILL the supervisor did not send may be the OOM killer's.
			if ws.Signal() == syscall.SIGKILL && reason == "" && p.oom.killedByOOM() {
				e.OOMKilled = true
				e.Description += " (out of memory: killed by the kernel's OOM killer)"
			}
		}
	case p.waitErr != nil:
		e.Description = p.waitErr.Error()
	default:
		e.Description = "unknown exit"
	}
	return e
}

func (p *proc) setReason(reason string) {
	p.mu.Lock()
	p.reason = reason
	p.mu.Unlock()
}

func (p *proc) markReady() {
	p.mu.Lock()
	if p.readyAt.IsZero() {
		p.readyAt = time.Now()
	}
	p.mu.Unlock()
}

func (p *proc) wasReady() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.readyAt.IsZero()
}
