package config

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/print.golden")

func TestPrintGolden(t *testing.T) {
	cfg, _, err := Load(LoadOptions{
		File:    filepath.Join("testdata", "full.good.yaml"),
		Environ: []string{"RON_LOG=trace", "MACRO_INDEX_ADDR=127.0.0.1:19400", "RON_SERVICES=storage,index,dht,gateway"},
		Flags:   []Override{{Field: "http_addr", Value: "127.0.0.1:28080", Source: "flag --http-addr"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := cfg.Print(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "s3cret") {
		t.Fatal("Print revealed the admin token")
	}
	golden := filepath.Join("testdata", "print.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestPrintGolden -update)", err)
	}
	if got := buf.String(); got != string(want) {
		t.Errorf("Print output differs from %s (rerun with -update if intended):\n%s", golden, got)
	}
}

func TestResolveBinary(t *testing.T) {
	exeDir := t.TempDir()
	pathDir := t.TempDir()
	write := func(dir, name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	beside := write(exeDir, "svc-storage", 0o755)
	onPath := write(pathDir, "svc-index", 0o755)
	write(exeDir, "svc-dht", 0o644) // not executable: skipped
	look := func(name string) (string, error) {
		p := filepath.Join(pathDir, name)
		if err := isExecutable(p); err != nil {
			return "", err
		}
		return p, nil
	}
	tests := []struct {
		plane, configured, want, wantErr string
	}{
		{"storage", "", beside, ""},
		{"index", "", onPath, ""},
		{"dht", "", "", "svc-dht not found in " + exeDir + " or $PATH"},
		{"storage", onPath, onPath, ""},
		{"storage", "svc-index", onPath, ""},
		{"mailbox", filepath.Join(pathDir, "absent"), "", "no such file"},
	}
	for _, tc := range tests {
		got, err := resolveBinary(tc.plane, tc.configured, exeDir, look)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s/%q: err = %v, want %q", tc.plane, tc.configured, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s/%q = %q, %v; want %q", tc.plane, tc.configured, got, err, tc.want)
		}
	}
}

func fuzzApply(t *testing.T, ext string, data []byte) {
	c := defaultsFrom(nil)
	_ = c.applyData("fuzz"+ext, ext, data)
	_ = c.Validate()
	_ = c.Enabled()
	if err := c.Print(io.Discard); err != nil {
		t.Fatalf("print after load: %v", err)
	}
}

func FuzzLoadYAML(f *testing.F) {
	for _, seed := range []string{
		"", "http_addr: 127.0.0.1:1\n", "read_timeout: 5 parsecs\n", "htp_addr: x\n",
		"services:\n  storage:\n    listen: 127.0.0.1:9300\n    backoff: {initial: 1s}\n",
		"services: [a, b]\n", "a: &x {b: *x}\n", "services:\n  storage: &s {enabled: true}\n  index: *s\n",
		"max_body_bytes: 1MiB\nchunk_bytes: -1\n", "<<: {log_level: debug}\n", "--- \n---\n",
	} {
		f.Add([]byte(seed))
	}
	if files, err := filepath.Glob("testdata/*.yaml"); err == nil {
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzApply(t, ".yaml", data) })
}

func FuzzLoadJSON(f *testing.F) {
	for _, seed := range []string{
		"", "{}", "null", `{"http_addr":"127.0.0.1:1"}`, `{"services":{"storage":{"listen":1}}}`,
		`{"max_body_bytes":-1.5}`, `[1,2]`, `{"a":1} {"b":2}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzApply(t, ".json", data) })
}

// TestValueIsRaw: Value shows what Print hides, so a changed admin token or
// env value is visible to a reload diff.
func TestValueIsRaw(t *testing.T) {
	a := defaultsFrom(nil)
	b := defaultsFrom(nil)
	for _, c := range []*Config{a, b} {
		if err := c.Set("services.storage.env", "GOMAXPROCS=2,KEY=x", "test"); err != nil {
			t.Fatal(err)
		}
	}
	a.AdminToken, b.AdminToken = "one", "two"
	b.Services["storage"].Env["KEY"] = "y"

	var pa, pb bytes.Buffer
	if err := a.Print(&pa); err != nil {
		t.Fatal(err)
	}
	if err := b.Print(&pb); err != nil {
		t.Fatal(err)
	}
	if pa.String() != pb.String() {
		t.Fatal("Print should redact both differences")
	}
	tests := []struct{ path, wantA, wantB string }{
		{"admin_token", `"one"`, `"two"`},
		{"services.storage.env", `{GOMAXPROCS="2", KEY="x"}`, `{GOMAXPROCS="2", KEY="y"}`},
	}
	for _, tc := range tests {
		va, err := a.Value(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		vb, err := b.Value(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if va != tc.wantA || vb != tc.wantB {
			t.Errorf("%s: Value = %s / %s, want %s / %s", tc.path, va, vb, tc.wantA, tc.wantB)
		}
	}
	// Every other field compares equal, and every FieldPaths entry has a Value.
	for _, p := range a.FieldPaths() {
		va, err := a.Value(p)
		if err != nil {
			t.Fatalf("Value(%s): %v", p, err)
		}
		vb, _ := b.Value(p)
		if differs := va != vb; differs != (p == "admin_token" || p == "services.storage.env") {
			t.Errorf("%s: %s vs %s", p, va, vb)
		}
	}
	if _, err := a.Value("services.blobs.listen"); err == nil {
		t.Error("Value of an unknown path: want an error")
	}
	// Value never changes the config: a missing plane reads as its defaults.
	c := &Config{}
	if v, err := c.Value("services.storage.listen"); err != nil || v != `"127.0.0.1:9300"` || c.Services != nil {
		t.Errorf("Value on an empty config = %s, %v; services %v", v, err, c.Services)
	}
	// Keys that are not plain names are quoted, so maps format injectively.
	a.Services["dht"].Env = map[string]string{"a, b": "c"}
	if v, _ := a.Value("services.dht.env"); v != `{"a, b"="c"}` {
		t.Errorf("odd key = %s", v)
	}
}
