package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is a live process started from the bin dir.
type proc struct {
	pid  int
	argv []string
}

func (p proc) String() string { return fmt.Sprintf("%d %s", p.pid, strings.Join(p.argv, " ")) }

// leftoverProcs scans /proc for live processes whose executable or argv[0]
// lies in dir. Zombies (already dead, awaiting reaping) have an empty
// cmdline and are reported too via their exe link when still readable.
func leftoverProcs(dir string) []proc {
	if dir == "" {
		return nil
	}
	prefix := filepath.Clean(dir) + string(filepath.Separator)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		argv := procArgv(pid)
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		exe = strings.TrimSuffix(exe, " (deleted)")
		if strings.HasPrefix(exe, prefix) || (len(argv) > 0 && strings.HasPrefix(argv[0], prefix)) {
			if len(argv) == 0 {
				argv = []string{exe}
			}
			out = append(out, proc{pid: pid, argv: argv})
		}
	}
	return out
}

// procArgv reads /proc/<pid>/cmdline.
func procArgv(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// procState is the state letter of /proc/<pid>/stat ("R", "S", "T", "Z"...),
// or "" when the process is gone.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st := procState(pid)
	return st != "" && st != "Z" && st != "X"
}

func killProcs(ps []proc) {
	for _, p := range ps {
		_ = syscall.Kill(p.pid, syscall.SIGCONT)
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// assertNoLeftovers fails the test if any process from dir is still alive
// after leftoverTimeout, and kills those so later tests start clean.
func assertNoLeftovers(t testing.TB, dir string) {
	t.Helper()
	assertNoLeftoversOf(t, dir, func(proc) bool { return true })
}

// assertNoLeftoversOfNode is assertNoLeftovers for one node or standalone
// child of a test that runs several: only pid itself and processes whose
// arguments name a path under dataDir (a node's children get --data-dir
// <dataDir>/<plane>) are its own.
func assertNoLeftoversOfNode(t testing.TB, dir string, pid int, dataDir string) {
	t.Helper()
	prefix := filepath.Clean(dataDir) + string(filepath.Separator)
	assertNoLeftoversOf(t, dir, func(p proc) bool {
		if p.pid == pid {
			return true
		}
		for _, a := range p.argv {
			if a == filepath.Clean(dataDir) || strings.HasPrefix(a, prefix) {
				return true
			}
		}
		return false
	})
}

func assertNoLeftoversOf(t testing.TB, dir string, mine func(proc) bool) {
	t.Helper()
	deadline := time.Now().Add(leftoverTimeout)
	for {
		var left []proc
		for _, p := range liveOnly(leftoverProcs(dir)) {
			if mine(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes from %s still alive %v after their parent was gone (killed now): %v", dir, leftoverTimeout, left)
			killProcs(left)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func liveOnly(ps []proc) []proc {
	var out []proc
	for _, p := range ps {
		if alive(p.pid) {
			out = append(out, p)
		}
	}
	return out
}

// ownChild checks that pid is a live process of binary name from the bin
// dir before the test signals it, so a recycled pid is never hit.
func ownChild(t testing.TB, pid int, name string) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("no pid for %s", name)
	}
	argv := procArgv(pid)
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	want := bin(name)
	if exe != want && (len(argv) == 0 || argv[0] != want) {
		t.Fatalf("pid %d is not %s (exe %q argv %q)", pid, want, exe, argv)
	}
}

// signalChild sends sig to a child pid after checking it is ours.
func signalChild(t testing.TB, pid int, name string, sig syscall.Signal) {
	t.Helper()
	ownChild(t, pid, name)
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("kill -%d %d (%s): %v", sig, pid, name, err)
	}
}
