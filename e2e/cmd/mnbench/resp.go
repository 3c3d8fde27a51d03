package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// respConn is a minimal Redis client: RESP2 commands out, replies in. One
// connection per goroutine; not safe for concurrent use.
type respConn struct {
	c  net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
	to time.Duration
}

// respReply is one decoded reply; arrays hold their elements.
type respReply struct {
	kind  byte // '+', '-', ':', '$', '*'
	str   []byte
	num   int64
	null  bool
	elems []respReply
}

func dialRESP(addr string, timeout time.Duration) (*respConn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("dial redis %s: %w", addr, err)
	}
	return &respConn{c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10), to: timeout}, nil
}

func (rc *respConn) Close() error { return rc.c.Close() }

// do sends one command and reads its reply; a Redis error reply is an error.
func (rc *respConn) do(args ...[]byte) (respReply, error) {
	reps, err := rc.pipe(args)
	if len(reps) == 0 {
		return respReply{}, err
	}
	return reps[0], err
}

// cmd is do with string arguments.
func (rc *respConn) cmd(args ...string) (respReply, error) {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	return rc.do(bs...)
}

var errRESP = errors.New("malformed RESP reply")

func readReply(r *bufio.Reader, depth int) (respReply, error) {
	if depth > 8 {
		return respReply{}, fmt.Errorf("%w: nested too deep", errRESP)
	}
	line, err := r.ReadSlice('\n')
	if err != nil {
		return respReply{}, fmt.Errorf("read reply: %w", err)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return respReply{}, fmt.Errorf("%w: %q", errRESP, line)
	}
	kind, body := line[0], line[1:len(line)-2]
	rep := respReply{kind: kind}
	switch kind {
	case '+', '-':
		rep.str = append([]byte(nil), body...)
	case ':':
		if rep.num, err = strconv.ParseInt(string(body), 10, 64); err != nil {
			return rep, fmt.Errorf("%w: integer %q", errRESP, body)
		}
	case '$':
		n, err := strconv.Atoi(string(body))
		if err != nil || n < -1 || n > 512<<20 {
			return rep, fmt.Errorf("%w: bulk length %q", errRESP, body)
		}
		if n == -1 {
			rep.null = true
			return rep, nil
		}
		rep.str = make([]byte, n+2)
		if _, err := io.ReadFull(r, rep.str); err != nil {
			return rep, fmt.Errorf("read bulk: %w", err)
		}
		rep.str = rep.str[:n]
	case '*':
		n, err := strconv.Atoi(string(body))
		if err != nil || n < -1 || n > 1<<20 {
			return rep, fmt.Errorf("%w: array length %q", errRESP, body)
		}
		if n == -1 {
			rep.null = true
			return rep, nil
		}
		for range n {
			e, err := readReply(r, depth+1)
			if err != nil {
				return rep, err
			}
			rep.elems = append(rep.elems, e)
		}
	default:
		return rep, fmt.Errorf("%w: type %q", errRESP, kind)
	}
	return rep, nil
}

// pipe sends every command at once and then reads their replies, in order:
// one round trip for the lot. A Redis error reply is an error.
func (rc *respConn) pipe(cmds ...[][]byte) ([]respReply, error) {
	if err := rc.c.SetDeadline(time.Now().Add(rc.to)); err != nil {
		return nil, fmt.Errorf("redis deadline: %w", err)
	}
	w := rc.w
	for _, args := range cmds {
		w.WriteByte('*')
		w.WriteString(strconv.Itoa(len(args)))
		w.WriteString("\r\n")
		for _, a := range args {
			w.WriteByte('$')
			w.WriteString(strconv.Itoa(len(a)))
			w.WriteString("\r\n")
			w.Write(a)
			w.WriteString("\r\n")
		}
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("redis write: %w", err)
	}
	reps := make([]respReply, len(cmds))
	var firstErr error
	for i := range cmds {
		rep, err := readReply(rc.r, 0)
		if err != nil {
			return nil, fmt.Errorf("redis %s: %w", cmds[i][0], err)
		}
		if rep.kind == '-' && firstErr == nil {
			firstErr = fmt.Errorf("redis %s: %s", cmds[i][0], rep.str)
		}
		reps[i] = rep
	}
	return reps, firstErr
}
