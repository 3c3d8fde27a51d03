package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadHTTPResponse(t *testing.T) {
	cases := []struct {
		name, in string
		code     int
		body     string
		keep     bool
		bad      bool
	}{
		{name: "length", in: "HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello", code: 201, body: "hello", keep: true},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\n", code: 200, body: "abcde", keep: true},
		{name: "close", in: "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n", code: 503, keep: false},
		{name: "to eof", in: "HTTP/1.1 200 OK\r\n\r\nrest", code: 200, body: "rest", keep: false},
		{name: "bad status", in: "HTTP/1.0 200 OK\r\n\r\n", bad: true},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", bad: true},
		{name: "bad chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", bad: true},
		{name: "short body", in: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", bad: true},
		{name: "no header colon", in: "HTTP/1.1 200 OK\r\nnonsense\r\n\r\n", bad: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, keep, err := readHTTPResponse(bufio.NewReader(strings.NewReader(c.in)))
			if c.bad {
				if err == nil {
					t.Fatalf("want an error, got %+v", resp)
				}
				return
			}
			if err != nil || resp.code != c.code || string(resp.body) != c.body || keep != c.keep {
				t.Fatalf("got %d %q keep=%v err=%v, want %d %q keep=%v", resp.code, resp.body, keep, err, c.code, c.body, c.keep)
			}
		})
	}
}

// httpConn keeps one connection across requests, and dials again after
// the server closed it.
func TestHTTPConnPost(t *testing.T) {
	var conns atomic.Int32
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 16)
		n, _ := r.Body.Read(b)
		if r.URL.RawQuery == "close" {
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type") + " " + string(b[:n])))
	}))
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	defer ts.Close()
	hc, err := newHTTPConn(ts.URL, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	for i, q := range []string{"", "close", ""} {
		resp, err := hc.post(context.Background(), ts.URL+"/a/b?"+q, "text/x", []byte("hi"))
		if err != nil || resp.code != http.StatusCreated || string(resp.body) != "POST /a/b text/x hi" {
			t.Fatalf("request %d: %d %q %v", i, resp.code, resp.body, err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (one reused, one after the close)", n)
	}
	if _, err := hc.post(context.Background(), "http://elsewhere:1/x", "", nil); err == nil {
		t.Fatal("a URL on another host was posted")
	}
}
