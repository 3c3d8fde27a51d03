package supervisor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// OOM kills (SPEC §6 Forensics): the kernel's OOM killer ends a process with
// SIGKILL, which alone looks like any other kill. The memory cgroup counts
// its kills ("oom_kill N" in cgroup v2 memory.events, and in cgroup v1
// memory.oom_control since Linux 4.13). The supervisor reads the count of
// the child's cgroup at spawn and again after a SIGKILL it did not send: a
// higher count means the OOM killer did it. Where no such file is readable
// (no memory controller, no /proc) nothing is claimed.

const (
	procRoot   = "/proc"
	cgroupRoot = "/sys/fs/cgroup"
)

// oomWatch is the OOM-kill count of one child's memory cgroup at spawn.
type oomWatch struct {
	path   string // the file holding oom_kill; "" when the parent cannot tell
	before uint64
}

// watchOOM reads the OOM-kill count of pid's memory cgroup, looking for it
// under procDir and cgDir (procRoot and cgroupRoot outside tests).
func watchOOM(procDir, cgDir string, pid int) oomWatch {
	data, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return oomWatch{}
	}
	for _, path := range oomFiles(cgDir, data) {
		if n, err := readOOMKills(path); err == nil {
			return oomWatch{path: path, before: n}
		}
	}
	return oomWatch{}
}

// oomFiles lists the files that may hold the cgroup's oom_kill count, from
// the content of /proc/<pid>/cgroup: the unified (v2) hierarchy's
// memory.events, mounted at the root or, on hybrid hosts, at unified/; then
// the v1 memory controller's memory.oom_control.
func oomFiles(cgDir string, procCgroup []byte) []string {
	var out []string
	var v1 string
	for _, line := range strings.Split(string(procCgroup), "\n") {
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		ctrls, path, ok := strings.Cut(rest, ":")
		if !ok || !strings.HasPrefix(path, "/") || strings.Contains(path, "..") {
			continue
		}
		switch {
		case id == "0" && ctrls == "":
			out = append(out,
				filepath.Join(cgDir, path, "memory.events"),
				filepath.Join(cgDir, "unified", path, "memory.events"))
		case containsField(ctrls, "memory"):
			v1 = filepath.Join(cgDir, "memory", path, "memory.oom_control")
		}
	}
	if v1 != "" {
		out = append(out, v1)
	}
	return out
}

func containsField(list, name string) bool {
	for _, f := range strings.Split(list, ",") {
		if f == name {
			return true
		}
	}
	return false
}

var errNoOOMCount = errors.New("no oom_kill line")

// readOOMKills returns the "oom_kill N" count of a memory.events or
// memory.oom_control file.
func readOOMKills(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read oom count: %w", err)
	}
	return parseOOMKills(data)
}

func parseOOMKills(data []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || key != "oom_kill" {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("oom_kill %q: %w", val, err)
		}
		return n, nil
	}
	return 0, errNoOOMCount
}

// killedByOOM reports whether the cgroup's OOM-kill count rose since spawn.
// It is false when the parent cannot tell.
func (w oomWatch) killedByOOM() bool {
	if w.path == "" {
		return false
	}
	n, err := readOOMKills(w.path)
	return err == nil && n > w.before
}
