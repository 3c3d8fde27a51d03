package supervisor

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/logging"
)

// A real Go panic, as the runtime prints it (go1.25, GOTRACEBACK=single).
const goPanic = `panic: boom

goroutine 1 [running]:
main.crash(...)
	/src/main.go:12
main.main()
	/src/main.go:7 +0x25`

// A SIGQUIT dump: the signal header, PC line, then every goroutine.
const sigquitDump = `SIGQUIT: quit
PC=0x46d8e1 m=0 sigcode=0

goroutine 0 gp=0x5a4e20 m=0 mp=0x5a5740 [idle]:
runtime.futex(0x5a5880, 0x80, 0x0, 0x0, 0x0, 0x0)
	/go/src/runtime/sys_linux_amd64.s:557 +0x21

goroutine 1 gp=0xc000002380 m=nil [chan receive]:
main.main()
	/src/main.go:9 +0x1d
rax    0xca
rbx    0x0`

const fatalError = `fatal error: all goroutines are asleep - deadlock!

goroutine 1 [chan receive]:
main.main()
	/src/main.go:5 +0x2d`

func TestCrashDetector(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string // nil: no block
	}{
		{"go panic", "starting\nserving\n" + goPanic, strings.Split(goPanic, "\n")[:7]},
		{"fatal error", fatalError, strings.Split(fatalError, "\n")[:5]},
		{"sigquit keeps the first goroutine only", sigquitDump, strings.Split(sigquitDump, "\n")[:6]},
		{"nil pointer with signal line",
			"panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x47e3f2]\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/main.go:8 +0x12\n\ngoroutine 5 [sleep]:\n",
			[]string{"panic: runtime error: invalid memory address or nil pointer dereference", "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x47e3f2]", "", "goroutine 1 [running]:", "main.main()", "\t/src/main.go:8 +0x12"}},
		{"recovered and re-panicked", "panic: first [recovered]\n\tpanic: second\n\ngoroutine 1 [running]:\nmain.main()\n\n",
			[]string{"panic: first [recovered]", "\tpanic: second", "", "goroutine 1 [running]:", "main.main()"}},
		{"lines merely mentioning panic", "recovered from panic: boom\n{\"@level\":\"error\",\"@message\":\"panic: boom\"}\nlevel=error msg=\"fatal error: none\"\n  panic: indented\n", nil},
		{"a header with no goroutine soon after is dropped", "panic: not really\n" + strings.Repeat("log line\n", crashPreambleLines+5), nil},
		{"the first block wins", goPanic + "\n\n" + fatalError, strings.Split(goPanic, "\n")[:7]},
		{"header cut short by death is kept", "fatal error: out of memory\n", []string{"fatal error: out of memory"}},
		{"rust", "thread 'main' panicked at src/main.rs:2:5:\nboom\nnote: run with `RUST_BACKTRACE=1`\n\nafter", []string{"thread 'main' panicked at src/main.rs:2:5:", "boom", "note: run with `RUST_BACKTRACE=1`"}},
		{"python", "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nZeroDivisionError: division by zero\n", []string{"Traceback (most recent call last):", "  File \"x.py\", line 1, in <module>", "ZeroDivisionError: division by zero"}},
		{"jvm", "Exception in thread \"main\" java.lang.IllegalStateException: x\n\tat Main.main(Main.java:3)\n", []string{"Exception in thread \"main\" java.lang.IllegalStateException: x", "\tat Main.main(Main.java:3)"}},
		{"no crash", "hello\nworld\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d crashDetector
			for _, l := range strings.Split(strings.TrimSuffix(tc.input, "\n"), "\n") {
				feedText(&d, l)
			}
			if got := d.result(); !slices.Equal(got, tc.want) {
				t.Errorf("block:\n%q\nwant:\n%q", got, tc.want)
			}
		})
	}
}

// The block is bounded in lines and line length, and a flood after it
// changes nothing.
func TestCrashDetectorBounds(t *testing.T) {
	var d crashDetector
	feedText(&d, "panic: "+strings.Repeat("x", 10*crashLineBytes))
	feedText(&d, "goroutine 1 [running]:")
	for i := 0; i < 10*crashBlockLines; i++ {
		feedText(&d, fmt.Sprintf("main.f%d()", i))
	}
	got := d.result()
	if len(got) != crashBlockLines {
		t.Fatalf("block has %d lines, want %d", len(got), crashBlockLines)
	}
	if len(got[0]) > crashLineBytes+len(truncatedMark) || !strings.HasSuffix(got[0], truncatedMark) {
		t.Errorf("header line not cut: %d bytes", len(got[0]))
	}
	if got[crashBlockLines-1] != fmt.Sprintf("main.f%d()", crashBlockLines-3) {
		t.Errorf("last kept line %q", got[crashBlockLines-1])
	}
}

// A child that prints 500 lines and then panics (while another goroutine
// floods stdout) leaves an exit record with the panic line and the
// panicking goroutine's stack, though the ring holds only 100 lines.
func TestExitKeepsCrashBlock(t *testing.T) {
	tests := []struct {
		mode    string
		stalled bool     // the parent's output is stuck: lines are dropped from it
		want    []string // lines the block must contain
	}{
		{"panic-after-lines", false, []string{"panic: fake child gives up", "goroutine 1 [running]:", "crashChild"}},
		{"dump-then-flood", false, []string{"panic: written by hand", "goroutine 1 [running]:", "main.handwritten()"}},
		// 100,000 lines before the dump (13 MB once wrapped in JSON): the
		// stuck output's queue is full by then, so the dump itself is
		// dropped from the output.
		{"dump-then-flood", true, []string{"panic: written by hand", "goroutine 1 [running]:", "main.handwritten()"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s stalled=%v", tc.mode, tc.stalled), func(t *testing.T) {
			var out *logging.Output
			if tc.stalled {
				w := &blockingWriter{release: make(chan struct{})}
				var err error
				if out, err = logging.NewOutput(w, "json", ""); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = out.Close() }) // after the harness stops Run
				w.block = true
				t.Cleanup(w.open) // before it
			}
			// GOTRACEBACK=all: the other goroutines' stacks follow the
			// panicking one's and fill the last lines.
			spec := fakeSpec(t, "crasher", tc.mode, "GOTRACEBACK=all")
			if tc.stalled {
				spec.Env = append(spec.Env, "MN_FAKE_PRELINES=100000")
			}
			spec.Policy.Initial, spec.Policy.Max = time.Hour, time.Hour // one exit is enough
			h := startHarness(t, []Spec{spec}, func(o *Options) {
				o.LogLines = 100
				if out != nil {
					o.LogOutput = out
				}
			})
			var exit Exit
			eventually(t, 20*time.Second, "an exit record", func() bool {
				st := h.status("crasher")
				if len(st.Exits) == 0 {
					return false
				}
				exit = st.Exits[0]
				return true
			})
			block := strings.Join(exit.CrashBlock, "\n")
			for _, w := range tc.want {
				if !strings.Contains(block, w) {
					t.Errorf("crash block lacks %q:\n%s", w, block)
				}
			}
			if len(exit.CrashBlock) > crashBlockLines {
				t.Errorf("crash block has %d lines", len(exit.CrashBlock))
			}
			if dropped := counter(t, h.s.Collector(), "macronode_child_log_dropped_total", map[string]string{"service": "crasher"}); tc.stalled && dropped == 0 {
				t.Error("no line was dropped: the test does not prove the block survives drops")
			}
			if strings.Contains(strings.Join(exit.LastLines, "\n"), "goroutine 1 [running]:") {
				t.Errorf("last lines still hold the stack; the test does not prove the block survives the ring: %q", exit.LastLines)
			}
		})
	}
}

// crashChild prints 500 lines ($MN_FAKE_PRELINES) on stderr and then
// crashes:
//
//	panic-after-lines  a real Go panic, while a goroutine floods stdout
//	                   and 20 more sleep (their stacks follow the panic)
//	dump-then-flood    a hand-written panic dump, then 5,000 more lines on
//	                   the same stream (more than the ring holds), exit 2
func crashChild(mode string) int {
	pre, err := strconv.Atoi(os.Getenv("MN_FAKE_PRELINES"))
	if err != nil {
		pre = 500
	}
	for i := 0; i < pre; i++ {
		fmt.Fprintf(os.Stderr, "line %d before the crash\n", i)
	}
	if mode == "dump-then-flood" {
		fmt.Fprint(os.Stderr, "panic: written by hand\n\ngoroutine 1 [running]:\nmain.handwritten()\n\t/src/x.go:1 +0x1\n\n")
		for i := 0; i < 5000; i++ {
			fmt.Fprintf(os.Stderr, "flood line %d after the dump\n", i)
		}
		return 2
	}
	for i := 0; i < 20; i++ {
		go time.Sleep(time.Hour)
	}
	go func() {
		for i := 0; ; i++ {
			fmt.Printf("stdout flood %d\n", i)
		}
	}()
	panic("fake child gives up")
}

// feedText feeds one line as the pipe reader does.
func feedText(d *crashDetector, line string) {
	d.feedLines([]logging.Line{{Text: []byte(line)}})
}
