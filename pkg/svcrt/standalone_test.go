package svcrt

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestStandaloneSurface(t *testing.T) {
	got := make(chan *testService, 1)
	r := startRun(t, testPlane(got, nil), []string{"--listen", "127.0.0.1:0", "--amnesia"}, envMap(nil))
	base := "http://" + r.addr(t)
	svc := <-got

	code, _, body := get(t, base+"/healthz")
	if code != http.StatusOK || strings.TrimSpace(body) != `{"ok":true,"service":"svc-test"}` {
		t.Fatalf("/healthz = %d %s", code, body)
	}

	code, _, body = get(t, base+"/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("/readyz = %d %s", code, body)
	}

	svc.setReady(errors.New("store is warming up"))
	code, hdr, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "5" {
		t.Fatalf("/readyz not ready = %d Retry-After=%q %s", code, hdr.Get("Retry-After"), body)
	}
	var rb readyzBody
	if err := json.Unmarshal([]byte(body), &rb); err != nil || rb.Ready || rb.Error != "store is warming up" || rb.Code == "" {
		t.Fatalf("/readyz body %s (err %v)", body, err)
	}
	svc.setReady(nil)

	// Unknown to the runtime: the plane answers, with its route pattern.
	code, hdr, body = get(t, base+"/widgets/42")
	if code != http.StatusOK || !strings.Contains(body, `"id":"42"`) || hdr.Get("X-Request-Id") == "" {
		t.Fatalf("/widgets/42 = %d %s (request id %q)", code, body, hdr.Get("X-Request-Id"))
	}
	code, _, body = get(t, base+"/nope")
	if code != http.StatusNotFound || !strings.Contains(body, `"code":"not_found"`) {
		t.Fatalf("/nope = %d %s", code, body)
	}
	code, _, body = get(t, base+"/panic")
	if code != http.StatusInternalServerError || !strings.Contains(body, `"error"`) {
		t.Fatalf("/panic = %d %s", code, body)
	}

	resp, err := client.Post(base+"/healthz", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
		t.Fatalf("POST /healthz = %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	code, _, body = get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		"go_goroutines",
		"process_open_fds",
		"macronode_test_widgets_total 1",
		`macronode_build_info{build_ts=`,
		`service="svc-test"`,
		`macronode_test_http_requests_total{code="200",method="GET",route="/widgets/{id}"} 1`,
		`macronode_test_http_requests_total{code="404",method="GET",route="/"} 1`,
		`macronode_test_http_requests_total{code="500",method="GET",route="/panic"} 1`,
		`macronode_test_http_requests_total{code="503",method="GET",route="/readyz"} 1`,
		`macronode_test_http_request_duration_seconds_count{route="/healthz"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	code, _, body = get(t, base+"/version")
	if code != http.StatusOK || !strings.Contains(body, `"service":"svc-test"`) {
		t.Fatalf("/version = %d %s", code, body)
	}

	if !strings.Contains(r.logs.String(), "panic serving request") {
		t.Errorf("panic was not logged")
	}

	r.cancel()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run after cancel = %v, want nil; logs:\n%s", err, r.logs.String())
	}
	if svc.drained.Load() != 1 || !svc.drainedBeforeClose.Load() {
		t.Fatalf("Drain called %d times (before Close: %v), want once before Close", svc.drained.Load(), svc.drainedBeforeClose.Load())
	}
	if svc.closed.Load() != 1 {
		t.Fatalf("Close called %d times, want 1", svc.closed.Load())
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second); err == nil {
		t.Fatalf("listener still open after exit")
	}
}

func TestRunExportedCancel(t *testing.T) {
	t.Setenv("MACRONODE_CONTROL_SOCKET", "")
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan *testService, 1)
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() { done <- Run(ctx, testPlane(got, nil), []string{"--listen", "127.0.0.1:0"}, logs) }()
	svc := <-got
	eventually(t, 5*time.Second, "serving", func() bool { return strings.Contains(logs.String(), `"serving"`) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if svc.closed.Load() != 1 {
		t.Fatal("Close not called")
	}
}

func TestGracefulDrainFinishesInFlight(t *testing.T) {
	got := make(chan *testService, 1)
	r := startRun(t, testPlane(got, nil), []string{"--listen", "127.0.0.1:0", "--shutdown-timeout", "10s"}, envMap(nil))
	base := "http://" + r.addr(t)
	svc := <-got

	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := client.Get(base + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{code: resp.StatusCode, body: string(b), err: err}
	}()
	<-svc.started
	r.cancel()
	eventually(t, 5*time.Second, "draining", func() bool { return strings.Contains(r.logs.String(), `"draining"`) })
	select {
	case err := <-r.done:
		t.Fatalf("Run returned %v while a request was in flight", err)
	default:
	}
	close(svc.release)
	got2 := <-res
	if got2.err != nil || got2.code != http.StatusOK || !strings.Contains(got2.body, `"done":true`) {
		t.Fatalf("in-flight request = %+v", got2)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v; logs:\n%s", err, r.logs.String())
	}
	if svc.closed.Load() != 1 {
		t.Fatal("Close not called after drain")
	}
}

func TestDrainGraceExpiryCutsConnections(t *testing.T) {
	got := make(chan *testService, 1)
	r := startRun(t, testPlane(got, nil), []string{"--listen", "127.0.0.1:0", "--shutdown-timeout", "100ms"}, envMap(nil))
	base := "http://" + r.addr(t)
	svc := <-got
	reqDone := make(chan error, 1)
	go func() {
		resp, err := client.Get(base + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		reqDone <- err
	}()
	<-svc.started
	r.cancel()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := <-reqDone; err == nil {
		t.Fatal("request that outlived the grace succeeded; want a cut connection")
	}
	if !strings.Contains(r.logs.String(), "drain grace expired") {
		t.Fatalf("no grace-expired log line:\n%s", r.logs.String())
	}
}

func TestPortTakenFailsBeforeBuild(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var built atomic.Bool
	p := testPlane(nil, nil)
	p.Build = func(context.Context, Env) (Service, error) {
		built.Store(true)
		return HealthOnly("test"), nil
	}
	logs := &syncBuffer{}
	err = run(context.Background(), p, []string{"--listen", ln.Addr().String()}, logs, envMap(nil))
	if err == nil || !strings.Contains(err.Error(), "listen on "+ln.Addr().String()) {
		t.Fatalf("run on a taken port = %v", err)
	}
	if ExitCode(err) != ExitFailure {
		t.Fatalf("exit code %d, want %d", ExitCode(err), ExitFailure)
	}
	if built.Load() {
		t.Fatal("plane was built although the port was taken")
	}
	if !strings.Contains(logs.String(), "address already in use") {
		t.Fatalf("logs do not explain the failure:\n%s", logs.String())
	}
}

func TestBuildFailureIsRuntimeFailure(t *testing.T) {
	p := testPlane(nil, nil)
	p.Build = func(context.Context, Env) (Service, error) { return nil, errors.New("disk on fire") }
	err := run(context.Background(), p, []string{"--listen", "127.0.0.1:0"}, &syncBuffer{}, envMap(nil))
	if err == nil || !strings.Contains(err.Error(), "build test plane: disk on fire") || ExitCode(err) != ExitFailure {
		t.Fatalf("run = %v", err)
	}
}

func TestBuildSeesEnv(t *testing.T) {
	var env Env
	var widgets int
	p := testPlane(nil, nil)
	p.Flags = func(fs *flag.FlagSet) { fs.IntVar(&widgets, "widgets", 3, "") }
	p.Build = func(_ context.Context, e Env) (Service, error) {
		env = e
		return nil, errors.New("stop here")
	}
	_ = run(context.Background(), p, []string{"--listen", "127.0.0.1:0", "--data-dir", "/tmp/x", "--widgets", "7"},
		&syncBuffer{}, envMap(map[string]string{EnvAmnesia: "true"}))
	if env.Name != "test" || env.Listen != "127.0.0.1:0" || env.DataDir != "/tmp/x" || !env.Amnesia ||
		env.Logger == nil || env.Registry == nil || widgets != 7 {
		t.Fatalf("env = %+v widgets=%d", env, widgets)
	}
}

func TestReadyzDraining(t *testing.T) {
	var draining atomic.Bool
	s := &surface{service: "svc-test", svc: HealthOnly("test"), draining: &draining}
	draining.Store(true)
	rec := httptest.NewRecorder()
	s.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
		!strings.Contains(rec.Body.String(), `"draining":true`) {
		t.Fatalf("readyz while draining = %d %s", rec.Code, rec.Body.String())
	}
}

func TestHealthOnly(t *testing.T) {
	svc := HealthOnly("overlay")
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	defer client.CloseIdleConnections()
	code, _, body := get(t, srv.URL+"/info")
	if code != http.StatusOK || strings.TrimSpace(body) != `{"plane":"overlay","service":"svc-overlay","status":"no plane API yet"}` {
		t.Fatalf("/info = %d %s", code, body)
	}
	for _, path := range []string{"/", "/overlay", "/dht/peers"} {
		code, _, body = get(t, srv.URL+path)
		if code != http.StatusNotFound || !strings.Contains(body, `"code":"not_found"`) {
			t.Errorf("%s = %d %s", path, code, body)
		}
	}
	if svc.Ready() != nil || svc.Close() != nil {
		t.Fatal("HealthOnly must be ready and close cleanly")
	}
}
