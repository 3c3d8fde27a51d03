package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/supervisor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The supervisor satisfies the interface this package needs.
var _ Services = (*supervisor.Supervisor)(nil)

// fakeServices is a scriptable Services.
type fakeServices struct {
	mu    sync.Mutex
	snap  []supervisor.Status
	calls []string
	logs  map[string][]supervisor.LogLine
	fail  error // returned by actions for known services when set
}

func (f *fakeServices) Snapshot() []supervisor.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]supervisor.Status(nil), f.snap...)
}

func (f *fakeServices) set(snap ...supervisor.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snap = snap
}

func (f *fakeServices) known(name string) bool {
	for _, st := range f.snap {
		if st.Name == name {
			return true
		}
	}
	return false
}

func (f *fakeServices) act(action, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.known(name) {
		return fmt.Errorf("%s %s: %w", action, name, supervisor.ErrUnknownService)
	}
	if f.fail != nil {
		return f.fail
	}
	f.calls = append(f.calls, action+" "+name)
	return nil
}

func (f *fakeServices) Restart(name string) error { return f.act("restart", name) }
func (f *fakeServices) Stop(name string) error    { return f.act("stop", name) }
func (f *fakeServices) Start(name string) error   { return f.act("start", name) }

func (f *fakeServices) Logs(name string, n int) ([]supervisor.LogLine, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.known(name) {
		return nil, fmt.Errorf("logs %s: %w", name, supervisor.ErrUnknownService)
	}
	f.calls = append(f.calls, fmt.Sprintf("logs %s %d", name, n))
	lines := f.logs[name]
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

func (f *fakeServices) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// running is a ready running service.
func running(name string) supervisor.Status {
	return supervisor.Status{Name: name, State: supervisor.StateRunning, PID: 4242, Ready: true, Critical: true, UptimeSeconds: 12}
}

// allRunning is every plane running and ready.
func allRunning() []supervisor.Status {
	var out []supervisor.Status
	for _, p := range config.Planes {
		out = append(out, running(p))
	}
	return out
}

// testConfig enables every plane (critical) on loopback.
func testConfig() *config.Config {
	c := &config.Config{
		HTTPAddr:      "127.0.0.1:8080",
		LogLevel:      "info",
		ReadTimeout:   config.Duration(10 * time.Second),
		WriteTimeout:  config.Duration(10 * time.Second),
		IdleTimeout:   config.Duration(60 * time.Second),
		MaxBodyBytes:  1 << 20,
		MetricsPublic: true, // metrics_public defaults to true
		Services:      map[string]*config.Service{},
	}
	for i, p := range config.Planes {
		c.Services[p] = &config.Service{Enabled: true, Critical: true, Listen: fmt.Sprintf("127.0.0.1:%d", 9300+i)}
	}
	return c
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// testNode is a Server serving on a real loopback listener.
type testNode struct {
	*Server
	url      string
	client   *http.Client
	shutdown atomic.Int32
}

// start serves s on 127.0.0.1:0 and tears it down with the test.
func start(t *testing.T, opts Options) *testNode {
	t.Helper()
	n := &testNode{}
	if opts.Config == nil {
		cfg := testConfig()
		opts.Config = func() *config.Config { return cfg }
	}
	if opts.Getenv == nil {
		opts.Getenv = env()
	}
	if opts.Shutdown == nil {
		opts.Shutdown = func() { n.shutdown.Add(1) }
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	tr := &http.Transport{DisableKeepAlives: true}
	n.Server, n.url, n.client = s, "http://"+ln.Addr().String(), &http.Client{Transport: tr}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
		tr.CloseIdleConnections()
	})
	return n
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (n *testNode) do(t *testing.T, method, path string, hdr map[string]string, body string) reply {
	t.Helper()
	return n.doHost(t, method, path, "", hdr, body)
}

// doHost is do with an explicit Host header ("" means the URL's): the
// client takes it from req.Host, not from req.Header.
func (n *testNode) doHost(t *testing.T, method, path, host string, hdr map[string]string, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{code: resp.StatusCode, header: resp.Header, body: b}
}

func (n *testNode) get(t *testing.T, path string) reply { return n.do(t, "GET", path, nil, "") }

func (n *testNode) post(t *testing.T, path string) reply { return n.do(t, "POST", path, nil, "") }
