package logging

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestNewFormats(t *testing.T) {
	var buf bytes.Buffer
	log, err := New("info", "auto", &buf) // a buffer is not a terminal: JSON
	if err != nil {
		t.Fatal(err)
	}
	log.Named("supervisor").Info("child started", "service", "storage")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("auto on a buffer should be JSON: %q: %v", buf.String(), err)
	}
	if rec["@module"] != "macronode.supervisor" || rec["service"] != "storage" {
		t.Errorf("record = %v", rec)
	}

	buf.Reset()
	log, err = New("debug", "text", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hello", "k", "v")
	if out := buf.String(); !strings.Contains(out, "[DEBUG] macronode: hello: k=v") {
		t.Errorf("text output = %q", out)
	}
}

func TestSetLevelIsLive(t *testing.T) {
	var buf bytes.Buffer
	log, err := New("info", "json", &buf)
	if err != nil {
		t.Fatal(err)
	}
	sub := log.Named("storage")
	sub.Debug("hidden")
	if buf.Len() != 0 {
		t.Fatalf("debug logged at info: %q", buf.String())
	}
	lvl, _ := ParseLevel("debug")
	log.SetLevel(lvl)
	sub.Debug("shown")
	if !strings.Contains(buf.String(), "shown") || log.GetLevel() != hclog.Debug {
		t.Errorf("SetLevel on the root did not reach the sub-logger: %q", buf.String())
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New("verbose", "json", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `unknown log level "verbose"`) {
		t.Errorf("level: %v", err)
	}
	if _, err := New("info", "xml", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `unknown log format "xml"`) {
		t.Errorf("format: %v", err)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) || IsTerminal(&bytes.Buffer{}) {
		t.Error("a regular file or buffer is not a terminal")
	}
}
