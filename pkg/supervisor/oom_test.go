package supervisor

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestOOMFiles(t *testing.T) {
	tests := []struct {
		name, procCgroup string
		want             []string
	}{
		{"v2", "0::/system.slice/macronode.service\n", []string{"/cg/system.slice/macronode.service/memory.events", "/cg/unified/system.slice/macronode.service/memory.events"}},
		{"hybrid", "4:memory:/box\n1:cpu,cpuacct:/\n0::/\n", []string{"/cg/memory.events", "/cg/unified/memory.events", "/cg/memory/box/memory.oom_control"}},
		{"v1 joint controllers", "3:memory,hugetlb:/a\n", []string{"/cg/memory/a/memory.oom_control"}},
		{"no memory controller", "1:cpu:/\n", nil},
		{"junk and escapes ignored", "garbage\n0::relative\n0::/../../etc\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := oomFiles("/cg", []byte(tc.procCgroup)); !slices.Equal(got, tc.want) {
				t.Errorf("oomFiles = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseOOMKills(t *testing.T) {
	tests := []struct {
		name, in string
		want     uint64
		ok       bool
	}{
		{"memory.events", "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n", 2, true},
		{"memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n", 7, true},
		{"old kernel without the count", "oom_kill_disable 0\nunder_oom 0\n", 0, false},
		{"malformed", "oom_kill many\n", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOOMKills([]byte(tc.in))
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("parseOOMKills = %d, %v; want %d, ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
}

// The verdict compares the count at spawn with the count after the death;
// without a readable count it claims nothing.
func TestOOMWatch(t *testing.T) {
	dir := t.TempDir()
	proc, cg := filepath.Join(dir, "proc"), filepath.Join(dir, "cg")
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(proc, "42", "cgroup"), "0::/svc\n")
	events := filepath.Join(cg, "svc", "memory.events")
	write(events, "oom 1\noom_kill 1\n")

	w := watchOOM(proc, cg, 42)
	if w.path != events || w.before != 1 {
		t.Fatalf("watch = %+v", w)
	}
	if w.killedByOOM() {
		t.Error("an unchanged count is not an OOM kill")
	}
	write(events, "oom 2\noom_kill 2\n")
	if !w.killedByOOM() {
		t.Error("a higher count is an OOM kill")
	}
	if got := watchOOM(proc, cg, 43); got.path != "" || got.killedByOOM() {
		t.Errorf("unknown pid: %+v claims an OOM kill", got)
	}
}
