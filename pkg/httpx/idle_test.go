package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
)

// readBodyServer echoes the length of the body ReadBody got, with the given
// cap and idle timeout, on a server whose own timeouts are far longer.
func readBodyServer(t *testing.T, max int64, idle time.Duration) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := ReadBody(w, r, max, idle)
		if !ok {
			return
		}
		JSON(w, http.StatusOK, map[string]int{"n": len(data)})
	}))
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = time.Minute, time.Minute
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

func TestReadBodyStalledGets408(t *testing.T) {
	ts := readBodyServer(t, 1<<10, 100*time.Millisecond)
	res, body, closed := testutil.StallChunked(t, strings.TrimPrefix(ts.URL, "http://"), "POST", "/", "abc", 10*time.Second)
	if res.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled body: %d %s, want 408", res.StatusCode, body)
	}
	var e ErrorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Code != "request_timeout" {
		t.Errorf("body %q: want JSON with code request_timeout", body)
	}
	if !closed {
		t.Error("connection left open after 408")
	}
}

// slowReader yields n bytes one at a time, each after gap: a slow but
// steady client.
type slowReader struct {
	n   int
	gap time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.gap) // the pace of a slow link, not a synchronisation
	s.n--
	p[0] = 'x'
	return 1, nil
}

func TestReadBody(t *testing.T) {
	ts := readBodyServer(t, 16, 300*time.Millisecond)
	cases := []struct {
		name   string
		body   func() io.Reader
		length int64 // -1: chunked
		status int
		n      int
	}{
		{"small", func() io.Reader { return strings.NewReader("hello") }, 5, 200, 5},
		{"at the cap", func() io.Reader { return strings.NewReader(strings.Repeat("a", 16)) }, 16, 200, 16},
		{"declared too large", func() io.Reader { return strings.NewReader(strings.Repeat("a", 17)) }, 17, 413, 0},
		{"chunked too large", func() io.Reader { return strings.NewReader(strings.Repeat("a", 17)) }, -1, 413, 0},
		{"empty", func() io.Reader { return http.NoBody }, 0, 200, 0},
		// 10 bytes over 0.5s: longer than the idle timeout in all, never
		// idle that long between bytes.
		{"slow but steady", func() io.Reader { return &slowReader{n: 10, gap: 50 * time.Millisecond} }, -1, 200, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", ts.URL, c.body())
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = c.length
			res, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			if res.StatusCode != c.status {
				t.Fatalf("status %d %s, want %d", res.StatusCode, raw, c.status)
			}
			if c.status == 200 && !bytes.Equal(raw, []byte(fmt.Sprintf("{\"n\":%d}\n", c.n))) {
				t.Errorf("body %s, want n=%d", raw, c.n)
			}
		})
	}
}

func TestIsIdle(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("x: %w", ErrIdle), true},
		{&net.OpError{Op: "read", Err: fmt.Errorf("%w", errDeadline)}, true},
		{errors.New("reset"), false},
		{&http.MaxBytesError{Limit: 1}, false},
	} {
		if got := IsIdle(c.err); got != c.want {
			t.Errorf("IsIdle(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 1)
	accepted := make(chan net.Conn, 2)
	acceptDone := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptDone <- err
				return
			}
			accepted <- c
		}
	}()
	c1, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	s1 := <-accepted
	// The second connection is not refused: it waits in the backlog.
	c2, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatalf("second connection refused: %v", err)
	}
	defer c2.Close()
	select {
	case c := <-accepted:
		c.Close()
		t.Fatal("a second connection was accepted past the limit of 1")
	case <-time.After(100 * time.Millisecond): // asserting an absence: nothing to poll for
	}
	_ = s1.Close()
	_ = s1.Close() // a second Close must not free a second slot
	s2 := <-accepted
	defer s2.Close()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-acceptDone; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

// errDeadline stands for the connection's deadline error.
var errDeadline = os.ErrDeadlineExceeded
