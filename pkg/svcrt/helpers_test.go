package svcrt

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/macronode/macronode/pkg/httpx"

	"github.com/macronode/macronode/internal/testutil"
)

func TestMain(m *testing.M) {
	// The test binary doubles as a plane process (see shutdown_test.go).
	if mode := os.Getenv(envTestChild); mode != "" {
		os.Exit(testChildMain(mode))
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if binDir != "" {
			_ = os.RemoveAll(binDir)
		}
		os.Exit(code)
	}))
}

// eventually polls cond until it holds or the deadline passes.
var eventually = testutil.Eventually

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = testutil.SyncBuffer

// logField returns field of the first JSON log line whose @message is msg.
func logField(logs, msg, field string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if line["@message"] == msg {
			v, ok := line[field].(string)
			return v, ok
		}
	}
	return "", false
}

// testService is a plane with controllable readiness, a slow route, a
// panicking route and its own metric.
type testService struct {
	mu                 sync.Mutex
	readyErr           error
	closed             atomic.Int32
	drained            atomic.Int32 // Drain calls
	drainedBeforeClose atomic.Bool
	started            chan struct{} // a /slow request has begun
	release            chan struct{} // lets /slow finish
	inFlight           atomic.Int32
	mux                *httpx.Mux
}

func newTestService(reg prometheus.Registerer) (*testService, error) {
	widgets := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "macronode_test_widgets_total", Help: "Widgets served by the test plane.",
	})
	if err := reg.Register(widgets); err != nil {
		return nil, err
	}
	s := &testService{started: make(chan struct{}, 1), release: make(chan struct{}), mux: httpx.NewMux()}
	s.mux.HandleFunc("GET /widgets/{id}", func(w http.ResponseWriter, r *http.Request) {
		widgets.Inc()
		httpx.JSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	s.mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		s.started <- struct{}{}
		select {
		case <-s.release:
			httpx.JSON(w, http.StatusOK, map[string]bool{"done": true})
		case <-r.Context().Done():
		}
	})
	s.mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) {
		panic("test panic")
	})
	return s, nil
}

func (s *testService) Handler() http.Handler { return s.mux }

func (s *testService) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyErr
}

func (s *testService) setReady(err error) {
	s.mu.Lock()
	s.readyErr = err
	s.mu.Unlock()
}

func (s *testService) Close() error {
	if s.inFlight.Load() != 0 {
		return errors.New("closed with a request in flight")
	}
	s.closed.Add(1)
	return nil
}

// Drain records that the runtime asked long handlers to return.
func (s *testService) Drain() {
	s.drained.Add(1)
	s.drainedBeforeClose.Store(s.closed.Load() == 0)
}

// testPlane returns a plane whose Build hands the built service to got.
func testPlane(got chan<- *testService, initialReady error) Plane {
	return Plane{
		Name:        "test",
		DefaultAddr: "127.0.0.1:0",
		Summary:     "a plane for tests",
		Flags: func(fs *flag.FlagSet) {
			fs.Int("widgets", 3, "how many `n` widgets")
		},
		Build: func(_ context.Context, env Env) (Service, error) {
			s, err := newTestService(env.Registry)
			if err != nil {
				return nil, err
			}
			s.setReady(initialReady)
			if got != nil {
				got <- s
			}
			return s, nil
		},
	}
}

// envMap is an injectable getenv.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// running is one in-process run of the runtime.
type running struct {
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

func startRun(t *testing.T, p Plane, args []string, getenv func(string) string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{}}
	go func() { r.done <- run(ctx, p, args, r.logs, getenv) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Errorf("runtime did not stop")
		}
	})
	return r
}

// addr waits for the "serving" log line and returns the bound address.
func (r *running) addr(t *testing.T) string {
	t.Helper()
	var addr string
	eventually(t, 10*time.Second, "serving log line", func() bool {
		var ok bool
		addr, ok = logField(r.logs.String(), "serving", "addr")
		return ok
	})
	return addr
}

func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // keep it for Cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("runtime did not return; logs:\n%s", r.logs.String())
		return nil
	}
}

// client has no keep-alive pool, so no goroutines outlive a test.
var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header, string(body)
}
