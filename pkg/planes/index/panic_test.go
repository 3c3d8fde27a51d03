package index

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/svcrt"
)

// panicStore is a store whose reads panic, standing in for a bug.
type panicStore struct{ *memStore }

func (panicStore) get(string) (Record, error) { panic("injected bug") }

// A panic in the plane's handler reaches the runtime's Recover: the client
// gets 500 JSON and the log holds the panic once, with its stack.
func TestPanicLoggedOnceWithStack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	var logs testutil.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- svcrt.Run(ctx, svcrt.Plane{
			Name: "index", DefaultAddr: addr,
			Build: func(_ context.Context, env svcrt.Env) (svcrt.Service, error) {
				s, err := New(Config{Amnesia: true}, env.Logger, env.Registry)
				if err != nil {
					return nil, err
				}
				s.store = panicStore{newMemStore()}
				return s, nil
			},
		}, []string{"--amnesia", "--log-format", "json"}, &logs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	var res *http.Response
	testutil.Eventually(t, 10*time.Second, "the plane answers", func() bool {
		r, err := http.Get("http://" + addr + "/names/a")
		if err != nil {
			return false
		}
		r.Body.Close()
		res = r
		return true
	})
	if res.StatusCode != http.StatusInternalServerError || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("panicking handler: %d %s, want 500 JSON", res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := logs.String()
	if n := strings.Count(out, "injected bug"); n != 1 {
		t.Errorf("the panic is logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, `"stack":"goroutine`) {
		t.Errorf("the panic's log line has no stack:\n%s", out)
	}
	http.DefaultClient.CloseIdleConnections()
}
