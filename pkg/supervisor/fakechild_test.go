package supervisor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/macronode/macronode/pkg/control"
)

// The test binary doubles as the supervised child (stdlib os/exec style):
// with MN_FAKE_CHILD=<mode> set, TestMain runs fakeChild instead of tests.
//
// Modes:
//
//	good              hello, ready, heartbeats; exits 0 on shutdown/SIGTERM/control EOF
//	crash             exits 1 at once
//	crash-if-file     exits 1 at once while $MN_FAKE_FILE exists, else good
//	crash-after-ready hello, ready, exits 1
//	hang              hello, ready, never a heartbeat; stays alive
//	ignore-sigterm    good, but ignores SIGTERM, shutdown and control EOF
//	flood             good, plus stdout written at full speed
//	grandchild        good, plus a sleeping grandchild sharing its pipes
//	                  ($MN_FAKE_SETSID=1: the grandchild leaves the group)
//	no-hello          never connects; exits 0 on SIGTERM
//	bad-token         says hello with a wrong token
//	garbage           good, then sends $MN_FAKE_GARBAGE (json|big) on the socket
//	sleeper           sleeps (used as the grandchild)
//	parent            runs a Supervisor of one child ($MN_FAKE_PARENT_MODE,
//	                  default ignore-sigterm; heartbeat timeout
//	                  $MN_FAKE_PARENT_HBT), prints "child=<pid>" each time a
//	                  new child is ready, and waits to be killed
//	raw-hello         connects to $MACRONODE_CONTROL_SOCKET, says hello, exits 0
//	                  once the parent closes the connection
//
// Other knobs: MN_FAKE_HB (heartbeat interval), MN_FAKE_RECORD (file to
// append "start|ready|stop <service>" lines to, and "reload pid=<pid>
// <config> <service>" for each reload message), MN_FAKE_FILE (health is
// false while it exists, in good mode), MN_FAKE_LONGLINE=1 (print a 100 KiB
// line), MN_FAKE_PRINTENV=K1,K2 (print "env K=<value>" or "env K unset"),
// MN_FAKE_SERVE=1 (serve HTTP on the inherited listener, held_test.go).
func TestMain(m *testing.M) {
	if mode := os.Getenv("MN_FAKE_CHILD"); mode != "" {
		os.Exit(fakeChild(mode))
	}
	goleak.VerifyTestMain(m)
}

func record(what string) {
	path := os.Getenv("MN_FAKE_RECORD")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "record:", err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", what, os.Getenv(control.EnvService))
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return path != "" && err == nil
}

func fakeChild(mode string) int {
	name := os.Getenv(control.EnvService)
	switch mode {
	case "sleeper":
		time.Sleep(time.Minute) // bounded, in case a test fails to kill it
		return 0
	case "raw-hello":
		return rawHello()
	case "parent":
		return fakeParent()
	case "panic-after-lines", "dump-then-flood":
		return crashChild(mode)
	}
	record("start")
	if keys := os.Getenv("MN_FAKE_PRINTENV"); keys != "" {
		for _, k := range strings.Split(keys, ",") {
			if v, ok := os.LookupEnv(k); ok {
				fmt.Printf("env %s=%s\n", k, v)
			} else {
				fmt.Printf("env %s unset\n", k)
			}
		}
	}
	if os.Getenv("MN_FAKE_SERVE") != "" {
		serveInherited() // held_test.go
	}
	if os.Getenv("MN_FAKE_READ_FD3") != "" {
		b, err := io.ReadAll(os.NewFile(3, "fd3"))
		fmt.Printf("fd3 %q %v\n", b, err)
	}
	switch mode {
	case "crash":
		fmt.Println("crashing now")
		return 1
	case "crash-if-file":
		if fileExists(os.Getenv("MN_FAKE_FILE")) {
			fmt.Println("crash file present")
			return 1
		}
		mode = "good"
	}

	sigs := make(chan os.Signal, 1)
	if mode == "ignore-sigterm" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(sigs, syscall.SIGTERM)
	}
	if mode == "no-hello" {
		fmt.Println("not saying hello")
		<-sigs
		return 0
	}

	c, err := net.Dial("unix", os.Getenv(control.EnvSocket))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial control socket:", err)
		return 3
	}
	enc, dec := control.NewEncoder(c), control.NewDecoder(c)
	token := os.Getenv(control.EnvToken)
	if mode == "bad-token" {
		token = "not-the-token"
	}
	if err := enc.Send(control.Hello(name, os.Getpid(), token, "test")); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		return 3
	}
	msgs := make(chan control.Message)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			m, err := dec.Next()
			if err != nil {
				return
			}
			msgs <- m
		}
	}()
	if mode == "bad-token" {
		<-closed
		fmt.Println("control closed")
		time.Sleep(time.Hour)
		return 0
	}

	fmt.Fprintln(os.Stderr, `{"@level":"warn","@message":"hello from child","@module":"fake","@timestamp":"2026-01-01T00:00:00Z","k":"v"}`)
	fmt.Println("plain line")
	if os.Getenv("MN_FAKE_LONGLINE") == "1" {
		fmt.Println(strings.Repeat("L", 100<<10))
		fmt.Println("after long line")
	}
	if mode == "grandchild" {
		gc := exec.Command(os.Args[0])
		gc.Env = append(os.Environ(), "MN_FAKE_CHILD=sleeper")
		gc.Stdout, gc.Stderr = os.Stdout, os.Stderr
		if os.Getenv("MN_FAKE_SETSID") == "1" {
			gc.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		}
		if err := gc.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "grandchild:", err)
			return 3
		}
		fmt.Printf("grandchild=%d\n", gc.Process.Pid)
	}

	record("ready")
	if err := enc.Send(control.Ready("127.0.0.1:1")); err != nil {
		return 3
	}
	switch mode {
	case "crash-after-ready":
		fmt.Println("crashing after ready")
		return 1
	case "garbage":
		if os.Getenv("MN_FAKE_GARBAGE") == "big" {
			_, _ = c.Write([]byte(strings.Repeat("x", 1<<20) + "\n"))
		} else {
			_, _ = c.Write([]byte("this is not json\n"))
		}
	case "flood":
		go func() {
			w := bufio.NewWriterSize(os.Stdout, 64<<10)
			for i := 0; ; i++ {
				fmt.Fprintf(w, "flood line %d %s\n", i, strings.Repeat("f", 100))
			}
		}()
	}

	interval, err := time.ParseDuration(os.Getenv("MN_FAKE_HB"))
	if err != nil {
		interval = 100 * time.Millisecond
	}
	hb := time.NewTicker(interval)
	defer hb.Stop()
	for {
		select {
		case <-hb.C:
			if mode == "hang" {
				continue
			}
			if f := os.Getenv("MN_FAKE_FILE"); f != "" && mode == "good" {
				_ = enc.Send(control.Health(!fileExists(f), "health file"))
			}
			_ = enc.Send(control.Heartbeat())
		case m := <-msgs:
			if m.Type == control.TypeReload {
				record(fmt.Sprintf("reload pid=%d %s", os.Getpid(), m.Config))
			}
			if m.Type == control.TypeShutdown && mode != "ignore-sigterm" {
				record("stop")
				_ = enc.Send(control.Goodbye("shutdown requested"))
				return 0
			}
		case <-sigs:
			record("stop")
			return 0
		case <-closed:
			if mode == "ignore-sigterm" {
				closed = nil
				continue
			}
			fmt.Println("control closed")
			return 0
		}
	}
}

// rawHello is a process that is not a child of the supervisor: it connects,
// says hello, and reports whether the parent closed the connection.
func rawHello() int {
	c, err := net.Dial("unix", os.Getenv(control.EnvSocket))
	if err != nil {
		fmt.Println("dial:", err)
		return 2
	}
	defer c.Close()
	pid, _ := strconv.Atoi(os.Getenv("MN_FAKE_PID"))
	if pid == 0 {
		pid = os.Getpid()
	}
	if err := control.NewEncoder(c).Send(control.Hello(os.Getenv(control.EnvService), pid, "guess", "test")); err != nil {
		fmt.Println("hello:", err)
		return 2
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := control.NewDecoder(c).Next(); err == nil {
		fmt.Println("parent answered instead of closing")
		return 1
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		fmt.Println("parent kept the connection open")
		return 1
	}
	return 0
}

// fakeParent is a macronode parent in miniature, for the Pdeathsig test.
func fakeParent() int {
	dir, err := os.MkdirTemp("", "mn")
	if err != nil {
		fmt.Println("mkdtemp:", err)
		return 2
	}
	fmt.Printf("dir=%s\n", dir)
	mode := os.Getenv("MN_FAKE_PARENT_MODE")
	if mode == "" {
		mode = "ignore-sigterm"
	}
	hbt, _ := time.ParseDuration(os.Getenv("MN_FAKE_PARENT_HBT"))
	s, err := New(Options{RunDir: dir, Specs: []Spec{{
		Name: "orphan", Binary: os.Args[0], HeartbeatTimeout: hbt,
		Env: []string{"MN_FAKE_CHILD=" + mode, "MN_FAKE_HB=50ms", "GORACE=atexit_sleep_ms=0"},
	}}, OnChange: func() {}})
	if err != nil {
		fmt.Println("new:", err)
		return 2
	}
	go func() {
		last := 0
		for {
			if st := s.Snapshot()[0]; st.Ready && st.PID != last {
				last = st.PID
				fmt.Printf("child=%d\n", st.PID)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_ = s.Run(context.Background()) // until SIGKILL
	return 0
}
