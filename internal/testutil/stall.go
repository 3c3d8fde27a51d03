package testutil

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// StallChunked sends method path to the HTTP server at addr with a chunked
// body whose first chunk is first, then sends nothing more. It returns the
// server's answer (its body read in full) and whether the server closed the
// connection after it. It fails the test when no answer comes within wait.
func StallChunked(tb testing.TB, addr, method, path, first string, wait time.Duration) (res *http.Response, body []byte, closed bool) {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(conn, method+" "+path+" HTTP/1.1\r\nHost: test\r\n"+
		"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
		tb.Fatalf("write request head: %v", err)
	}
	if _, err := io.WriteString(conn, strconv.FormatInt(int64(len(first)), 16)+"\r\n"+first+"\r\n"); err != nil {
		tb.Fatalf("write first chunk: %v", err)
	}
	br := bufio.NewReader(conn)
	res, err = http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatalf("%s %s with a stalled body: no answer within %s: %v", method, path, wait, err)
	}
	body, err = io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		tb.Fatalf("read answer body: %v", err)
	}
	_, err = br.ReadByte()
	closed = errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
	return res, body, closed
}
