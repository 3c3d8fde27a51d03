package svcrt

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/control"
)

func TestParseReload(t *testing.T) {
	tests := []struct {
		in      string
		want    hclog.Level
		wantErr string
	}{
		{``, hclog.NoLevel, ""},
		{`null`, hclog.NoLevel, ""},
		{`{}`, hclog.NoLevel, ""},
		{`{"other":1}`, hclog.NoLevel, ""},
		{`{"log_level":"debug"}`, hclog.Debug, ""},
		{`{"log_level":"DEBUG","future":{"x":[1]}}`, hclog.Debug, ""},
		{`{"log_level":" Trace "}`, hclog.Trace, ""},
		{`{"log_level":"warn"}`, hclog.Warn, ""},
		{`{"log_level":"error"}`, hclog.Error, ""},
		{`{"log_level":"loud"}`, hclog.NoLevel, "invalid log_level"},
		{`{"log_level":"off"}`, hclog.NoLevel, "invalid log_level"},
		{`{"log_level":""}`, hclog.NoLevel, "invalid log_level"},
		{`{"log_level":3}`, hclog.NoLevel, "decode reload config"},
		{`[1,2]`, hclog.NoLevel, "decode reload config"},
		{`"debug"`, hclog.NoLevel, "decode reload config"},
		{`{"log_level":`, hclog.NoLevel, "decode reload config"},
	}
	for _, tc := range tests {
		got, err := parseReload([]byte(tc.in))
		if got != tc.want || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("parseReload(%s) = %v, %v; want %v, %q", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func FuzzParseReload(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"log_level":"debug"}`, `{"log_level":"INFO","x":1}`, `[`, `{"log_level":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, cfg []byte) {
		level, err := parseReload(cfg)
		if err != nil && level != hclog.NoLevel {
			t.Fatalf("error %v with level %v", err, level)
		}
		if level == hclog.Off {
			t.Fatal("a reload turned logging off")
		}
	})
}

// reload{config:{"log_level":...}} changes the child's log level live; bad
// payloads are logged and ignored, and the child keeps running.
func TestSupervisedReloadLogLevel(t *testing.T) {
	parent := newFakeParent(t)
	loggers := make(chan hclog.Logger, 1)
	p := testPlane(nil, nil)
	build := p.Build
	p.Build = func(ctx context.Context, env Env) (Service, error) {
		loggers <- env.Logger
		return build(ctx, env)
	}
	r := startRun(t, p, []string{"--listen", "127.0.0.1:0", "--log-level", "info"}, parent.env("t"))
	parent.accept(t)
	parent.next(t) // hello
	if m := parent.next(t); m.Type != control.TypeReady {
		t.Fatalf("want ready, got %+v", m)
	}
	log := <-loggers
	log.Debug("debug before reload")

	parent.send(t, control.Reload([]byte(`[1,2]`)))
	parent.send(t, control.Reload([]byte(`{"log_level":"loud"}`)))
	parent.send(t, control.Reload([]byte(`{"log_level":"DEBUG","unknown_key":true}`)))
	eventually(t, 5*time.Second, "log level changed", func() bool { return strings.Contains(r.logs.String(), `"log level changed"`) })
	if from, _ := logField(r.logs.String(), "log level changed", "from"); from != "info" {
		t.Errorf("changed from %q, want info", from)
	}
	if to, _ := logField(r.logs.String(), "log level changed", "to"); to != "debug" {
		t.Errorf("changed to %q, want debug", to)
	}
	if n := strings.Count(r.logs.String(), "ignoring bad reload config"); n != 2 {
		t.Errorf("%d bad-reload log lines, want 2:\n%s", n, r.logs.String())
	}
	log.Debug("debug after reload")
	logs := r.logs.String()
	if strings.Contains(logs, "debug before reload") || !strings.Contains(logs, "debug after reload") {
		t.Fatalf("debug lines before/after the reload wrong:\n%s", logs)
	}

	// Still alive and speaking the protocol; back to warn hides info lines.
	parent.heartbeat(t)
	parent.send(t, control.Reload([]byte(`{"log_level":"warn"}`)))
	eventually(t, 5*time.Second, "level back to warn", func() bool { return !log.IsInfo() })
	log.Info("info after warn")
	r.cancel()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if strings.Contains(r.logs.String(), "info after warn") {
		t.Error("info line logged at level warn")
	}
}
