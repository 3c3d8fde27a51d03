package admin

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/macronode/macronode/pkg/config"
)

// Server.Reload (the daemon's SIGHUP path) counts like the HTTP route.
func TestServerReloadCounts(t *testing.T) {
	fail := errors.New("disk on fire")
	results := []error{nil, fail, nil, fail}
	call := 0
	n := start(t, Options{Reload: func(context.Context) (ReloadResult, error) {
		err := results[call%len(results)]
		call++
		return ReloadResult{Changed: []string{"log_level"}}, err
	}})
	res, err := n.Reload(context.Background())
	if err != nil || len(res.Changed) != 1 || res.Applied == nil || res.RestartRequired == nil {
		t.Fatalf("Reload = %+v, %v", res, err)
	}
	if _, err := n.Reload(context.Background()); !errors.Is(err, fail) {
		t.Fatalf("Reload error = %v", err)
	}
	if _, err := n.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.post(t, "/api/v1/reload") // the HTTP route counts through the same path: a failure
	_, fams := scrapeFamilies(t, n, "/metrics")
	for result, want := range map[string]float64{"success": 2, "failure": 2} {
		if got, ok := value(fams, "macronode_config_reloads_total", "macronode_config_reloads_total",
			map[string]string{"result": result}); !ok || got != want {
			t.Errorf("reloads{result=%s} = %v (found %v), want %v", result, got, ok, want)
		}
	}
}

// A reload whose load problems are joined with validation problems
// (config.Resolve) answers 422 listing every one of them.
func TestReloadListsEveryProblem(t *testing.T) {
	loadErr := errors.Join(errors.New("x.yaml: line 1: read_timeout: invalid duration 10"), errors.New("env RON_LOG_FORMAT: bad"))
	verr := &config.ValidationError{Errs: []config.FieldError{{Field: "http_addr", Source: "file x.yaml", Msg: "no port"}}}
	n := start(t, Options{Reload: func(context.Context) (ReloadResult, error) {
		return ReloadResult{}, errors.Join(loadErr, verr)
	}})
	r := n.post(t, "/api/v1/reload")
	if r.code != 422 {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	var body ReloadError
	r.json(t, &body)
	want := []FieldError{
		{Source: "load", Message: "x.yaml: line 1: read_timeout: invalid duration 10"},
		{Source: "load", Message: "env RON_LOG_FORMAT: bad"},
		{Field: "http_addr", Source: "file x.yaml", Message: "no port"},
	}
	if !reflect.DeepEqual(body.Errors, want) {
		t.Errorf("errors = %+v, want %+v", body.Errors, want)
	}
}

func TestServerReloadNotWired(t *testing.T) {
	cfg := testConfig()
	s, err := New(Options{Config: func() *config.Config { return cfg }, Getenv: env()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(context.Background()); !errors.Is(err, ErrReloadUnavailable) {
		t.Fatalf("Reload without Options.Reload = %v", err)
	}
}
