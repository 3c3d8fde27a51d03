package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
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

// openPTY returns the controller and the terminal end of a new pseudo-terminal.
func openPTY(t *testing.T) (ctl, term *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	ctl = os.NewFile(uintptr(fd), "ptmx")
	t.Cleanup(func() { _ = ctl.Close() })
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	term, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = term.Close() })
	return ctl, term
}

// A child's runtime logger with the default format (auto) writes text on a
// terminal, as when run by hand, and JSON on a pipe, as under the parent.
func TestAutoFormatFollowsTheTerminal(t *testing.T) {
	ctl, term := openPTY(t)
	log, err := NewNamed("svc-storage", hclog.Info, "auto", term)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("plane ready", "addr", "127.0.0.1:1")
	buf := make([]byte, 4096)
	n, err := ctl.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); !strings.Contains(got, "[INFO]  svc-storage: plane ready: addr=127.0.0.1:1") {
		t.Errorf("on a terminal: %q", got)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	log, err = NewNamed("svc-storage", hclog.Info, "auto", w)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("plane ready")
	_ = w.Close()
	var rec map[string]any
	if err := json.NewDecoder(r).Decode(&rec); err != nil || rec["@message"] != "plane ready" {
		t.Errorf("on a pipe: %v %v", rec, err)
	}
}
