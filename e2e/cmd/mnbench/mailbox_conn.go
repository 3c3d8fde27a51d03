package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// postFunc posts body to url and returns the answer: post (net/http) or
// one worker's httpConn.
type postFunc func(ctx context.Context, url, ctype string, body []byte) (httpResp, error)

// httpConn is a minimal HTTP/1.1 client on one keep-alive connection, the
// counterpart of respConn for Redis: a request goes out in one write and
// the answer is read with one buffered reader, without net/http's
// per-request goroutine hand-offs. On this 2-core machine the load
// generator shares the CPU with the server it measures, so a client as
// lean as the Redis one keeps the comparison about the servers. One
// connection per goroutine; not safe for concurrent use.
type httpConn struct {
	addr string // host:port
	to   time.Duration
	c    net.Conn
	r    *bufio.Reader
	buf  []byte
}

func newHTTPConn(base string, timeout time.Duration) (*httpConn, error) {
	addr, ok := strings.CutPrefix(base, "http://")
	if !ok || addr == "" || strings.Contains(addr, "/") {
		return nil, fmt.Errorf("httpConn: base %q is not http://host:port", base)
	}
	return &httpConn{addr: addr, to: timeout}, nil
}

func (h *httpConn) Close() error {
	if h.c == nil {
		return nil
	}
	err := h.c.Close()
	h.c = nil
	return err
}

// post sends one POST and reads its whole answer. The connection is
// dropped on any error or when the server closes it, and dialled again by
// the next request.
func (h *httpConn) post(ctx context.Context, url, ctype string, body []byte) (httpResp, error) {
	path, ok := strings.CutPrefix(url, "http://"+h.addr)
	if !ok || !strings.HasPrefix(path, "/") {
		return httpResp{}, fmt.Errorf("POST %s: not on %s", url, h.addr)
	}
	if err := ctx.Err(); err != nil {
		return httpResp{}, err
	}
	resp, keep, err := h.roundTrip(path, ctype, body)
	if err != nil || !keep {
		_ = h.Close()
	}
	if err != nil {
		return httpResp{}, fmt.Errorf("POST %s: %w", url, err)
	}
	return resp, nil
}

func (h *httpConn) roundTrip(path, ctype string, body []byte) (httpResp, bool, error) {
	if h.c == nil {
		c, err := net.DialTimeout("tcp", h.addr, h.to)
		if err != nil {
			return httpResp{}, false, fmt.Errorf("dial: %w", err)
		}
		h.c, h.r = c, bufio.NewReaderSize(c, 16<<10)
	}
	if err := h.c.SetDeadline(time.Now().Add(h.to)); err != nil {
		return httpResp{}, false, fmt.Errorf("set deadline: %w", err)
	}
	b := append(h.buf[:0], "POST "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, h.addr...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	if ctype != "" {
		b = append(b, "\r\nContent-Type: "...)
		b = append(b, ctype...)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	h.buf = b
	if _, err := h.c.Write(b); err != nil {
		return httpResp{}, false, fmt.Errorf("write: %w", err)
	}
	return readHTTPResponse(h.r)
}

var errHTTPResp = errors.New("malformed HTTP response")

// readHTTPResponse reads one response (Content-Length or chunked body) and
// reports whether the connection may carry another.
func readHTTPResponse(r *bufio.Reader) (httpResp, bool, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return httpResp{}, false, fmt.Errorf("read status: %w", err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return httpResp{}, false, fmt.Errorf("%w: status line %q", errHTTPResp, line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return httpResp{}, false, fmt.Errorf("%w: status line %q", errHTTPResp, line)
	}
	length, chunked, keep := -1, false, true
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return httpResp{}, false, fmt.Errorf("read header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return httpResp{}, false, fmt.Errorf("%w: header %q", errHTTPResp, line)
		}
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(val)); err != nil || length < 0 {
				return httpResp{}, false, fmt.Errorf("%w: Content-Length %q", errHTTPResp, val)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(val, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(val, []byte("close"))
		}
	}
	var body []byte
	switch {
	case chunked:
		body, err = readChunked(r)
	case length >= 0:
		body = make([]byte, length)
		_, err = io.ReadFull(r, body)
	default: // no length: the body runs to the end of the connection
		body, err = io.ReadAll(r)
		keep = false
	}
	if err != nil {
		return httpResp{}, false, fmt.Errorf("read body: %w", err)
	}
	return httpResp{code: code, body: body}, keep, nil
}

// readChunked reads a chunked body and its (ignored) trailer.
func readChunked(r *bufio.Reader) ([]byte, error) {
	var body []byte
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseUint(string(size), 16, 31)
		if err != nil {
			return nil, fmt.Errorf("%w: chunk size %q", errHTTPResp, line)
		}
		if n == 0 {
			break
		}
		start := len(body)
		body = append(body, make([]byte, n)...)
		if _, err := io.ReadFull(r, body[start:]); err != nil {
			return nil, err
		}
		if err := skipCRLF(r); err != nil {
			return nil, err
		}
	}
	for { // trailer, up to its empty line
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return body, nil
		}
	}
}

func skipCRLF(r *bufio.Reader) error {
	var crlf [2]byte
	if _, err := io.ReadFull(r, crlf[:]); err != nil {
		return err
	}
	if crlf != [2]byte{'\r', '\n'} {
		return fmt.Errorf("%w: chunk not followed by CRLF", errHTTPResp)
	}
	return nil
}
