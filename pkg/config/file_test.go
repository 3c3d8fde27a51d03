package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileProblemsInOnePass: unknown keys do not hide bad values; every
// problem of the file is reported, ordered by line, and the environment's
// problems come in the same pass.
func TestFileProblemsInOnePass(t *testing.T) {
	for _, name := range []string{"mixed.bad.yaml", "mixed.bad.json"} {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join("testdata", name)
			_, _, err := Load(LoadOptions{File: f, Environ: []string{"RON_IDLE_TIMEOUT=soon"}})
			if err == nil {
				t.Fatal("want an error")
			}
			lines := strings.Split(err.Error(), "\n")
			want := []string{`read_timeout: invalid duration 10`, `unknown field "htp_addr"`, `unknown field "lisen" in services.storage`, `services.storage.max_restarts: `, `env RON_IDLE_TIMEOUT: idle_timeout: invalid duration "soon"`}
			if len(lines) != len(want) {
				t.Fatalf("want %d problems, got:\n%s", len(want), err)
			}
			for i, w := range want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, lines[i], w)
				}
				if i < 4 && !strings.HasPrefix(lines[i], f+": line ") {
					t.Errorf("problem %d = %q does not name the file and line", i, lines[i])
				}
			}
		})
	}
}

func TestJSONDuplicateKeys(t *testing.T) {
	tests := []struct{ data, want string }{
		{`{"log_level":"info","log_level":"debug"}`, `x.json: line 1: duplicate key "log_level" in the top level`},
		{"{\"services\": {\"storage\": {},\n \"storage\": {}}}", `x.json: line 2: duplicate key "storage" in services`},
		{`{"services":{"dht":{"backoff":{"max":"1s","max":"2s"}}}}`, `duplicate key "max" in services.dht.backoff`},
	}
	for _, tc := range tests {
		err := defaultsFrom(nil).applyData("x.json", ".json", []byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.data, err, tc.want)
		}
	}
	// Without duplicates the same nesting loads, with line-aware sources.
	c := defaultsFrom(nil)
	if err := c.applyData("x.json", ".json", []byte("{\"services\": {\"dht\": {\"backoff\": {\"max\": \"2s\"}, \"env\": {\"A\": \"1\"}, \"args\": [\"-v\"]}}}")); err != nil {
		t.Fatal(err)
	}
	if s := c.Services["dht"]; s.Backoff.Max.String() != "2s" || s.Env["A"] != "1" || len(s.Args) != 1 {
		t.Errorf("dht = %+v", s)
	}
}

func TestJSONSyntaxErrors(t *testing.T) {
	tests := []struct{ data, want string }{
		{"{\n\"a\": }", "x.json: line 2: invalid character '}'"},
		{"{\"log_level\": \"info\"", "x.json: line 1: unexpected end of JSON input"},
		{`{"a":1} {"b":2}`, "unexpected data after the JSON object"},
		{strings.Repeat("[", 100), "nested deeper than"},
		{`[1,2]`, "the top level must be an object"},
	}
	for _, tc := range tests {
		err := defaultsFrom(nil).applyData("x.json", ".json", []byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.data, err, tc.want)
		}
	}
}

// TestKeywordsAnyCase: log_level, log_format and pq_mode are stored in lower
// case from every layer, keeping the layer as the source.
func TestKeywordsAnyCase(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	writeTestFile(t, file, "log_format: JSON\npq_mode: Hybrid\n")
	cfg, _, err := loadAndValidate(LoadOptions{
		File:    file,
		Environ: []string{"RON_LOG=INFO"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != "info" || cfg.LogFormat != "json" || cfg.PQMode != "hybrid" {
		t.Errorf("level %q format %q pq %q", cfg.LogLevel, cfg.LogFormat, cfg.PQMode)
	}
	if cfg.Source("log_level") != "env RON_LOG" || cfg.Source("log_format") != "file "+file {
		t.Errorf("sources %q %q", cfg.Source("log_level"), cfg.Source("log_format"))
	}
	cfg, _, err = loadAndValidate(LoadOptions{Flags: []Override{{"log_level", " Debug ", "flag --log-level"}, {"log_format", "TEXT", "flag --log-format"}}})
	if err != nil || cfg.LogLevel != "debug" || cfg.LogFormat != "text" {
		t.Fatalf("flags: %v, %+v", err, cfg)
	}
	// A wrong word is still wrong, whatever its case.
	_, _, err = loadAndValidate(LoadOptions{Environ: []string{"RON_LOG=LOUD"}})
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), `log_level (env RON_LOG): "loud" is not one of`) {
		t.Errorf("err = %v", err)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
