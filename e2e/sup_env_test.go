package e2e

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// A child inherits an allow-list of the parent's environment (SPEC §7):
// the admin token the parent runs with is in no child's environment.
func TestChildrenDoNotInheritSecrets(t *testing.T) {
	const token = "e2e-secret-token-9f1c"
	n := startNode(t, nodeOpts{env: []string{
		"RON_ADMIN_TOKEN=" + token,
		"CREDENTIALS_DIRECTORY=/nonexistent-credentials",
		"TZ=UTC",
	}})
	kids := childrenOf(n.pid())
	if len(kids) != len(planes) {
		t.Fatalf("parent %d has %d children %v, want %d", n.pid(), len(kids), kids, len(planes))
	}
	for _, p := range kids {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.pid))
		if err != nil {
			t.Fatalf("read environ of %v: %v", p, err)
		}
		vars := bytes.Split(env, []byte{0})
		for _, kv := range vars {
			if bytes.Contains(kv, []byte(token)) || bytes.HasPrefix(kv, []byte("RON_ADMIN_TOKEN")) ||
				bytes.HasPrefix(kv, []byte("CREDENTIALS_DIRECTORY=")) {
				t.Errorf("child %v has %q in its environment", p, kv)
			}
		}
		if !bytes.Contains(env, []byte("\x00TZ=UTC\x00")) && !bytes.HasPrefix(env, []byte("TZ=UTC\x00")) {
			t.Errorf("child %v did not inherit TZ", p)
		}
	}
}

// childrenOf lists the live processes from the bin dir whose parent is ppid.
func childrenOf(ppid int) []proc {
	var out []proc
	for _, p := range liveOnly(leftoverProcs(binDir)) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
		if err != nil {
			continue
		}
		// The fields after "(comm)": state, ppid, ...
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(ppid) {
			out = append(out, p)
		}
	}
	return out
}
