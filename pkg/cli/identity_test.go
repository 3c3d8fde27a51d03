package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/identity"
)

// idLine is one line keygen prints: "<node id>  <path>".
var idLine = regexp.MustCompile(`^(12D3KooW[1-9A-HJ-NP-Za-km-z]{44})  (\S+)$`)

// keygenLines parses keygen's output into node id by path.
func keygenLines(t *testing.T, stdout string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		m := idLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("keygen printed %q, want only \"<node id>  <path>\" lines", line)
		}
		ids[m[2]] = m[1]
	}
	return ids
}

// fileID reads a key file and returns its node id, checking mode 0600.
func fileID(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
	}
	key, err := identity.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NodeID(key)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// noNode is an admin address nothing listens on.
func noNode(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "RON_HTTP_ADDR=" + addr
}

func TestKeygenThenID(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	out := filepath.Join(dataDir, "node.key")
	r := run(t, nil, "keygen", "--out", out)
	if r.code != ExitOK {
		t.Fatalf("keygen: exit %d: %s", r.code, r.stderr)
	}
	ids := keygenLines(t, r.stdout)
	if len(ids) != 1 || ids[out] != fileID(t, out) {
		t.Fatalf("keygen printed %v, file %s holds %s", ids, out, fileID(t, out))
	}
	key, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains([]byte(r.stdout+r.stderr), key) {
		t.Error("keygen printed the key")
	}

	// No node answers: id reads the key file keygen wrote.
	r = run(t, []string{noNode(t)}, "id", "--data-dir", dataDir)
	if r.code != ExitOK || strings.TrimSpace(r.stdout) != ids[out] {
		t.Fatalf("id: exit %d, stdout %q, stderr %s; want %s", r.code, r.stdout, r.stderr, ids[out])
	}

	// Refuses to overwrite: same file, same key.
	r = run(t, nil, "keygen", "--out", out)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "refusing to overwrite") || r.stdout != "" {
		t.Fatalf("second keygen: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := fileID(t, out); got != ids[out] {
		t.Fatalf("key file replaced: %s, was %s", got, ids[out])
	}
}

func TestKeygenCount(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys") // created by keygen
	r := run(t, nil, "keygen", "--count", "3", "--out", dir)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	ids := keygenLines(t, r.stdout)
	seen := map[string]bool{}
	for i := 1; i <= 3; i++ {
		p := filepath.Join(dir, "node-"+string(rune('0'+i))+".key")
		if ids[p] == "" || ids[p] != fileID(t, p) || seen[ids[p]] {
			t.Errorf("%s: printed %q, file holds %s (ids %v)", p, ids[p], fileID(t, p), ids)
		}
		seen[ids[p]] = true
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("key dir: %v, %v; want mode 0700", fi.Mode(), err)
	}

	// One existing target refuses the whole batch: nothing is written.
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, "node-2.key"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, "keygen", "--count", "3", "--out", dir2)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "node-2.key exists") || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if entries, _ := os.ReadDir(dir2); len(entries) != 1 {
		t.Errorf("keygen wrote beside an existing key: %v", entries)
	}
}

// The default --out is ./node.key, or the current directory with --count.
// Not parallel: it changes the working directory.
func TestKeygenDefaultOut(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	r := run(t, nil, "keygen")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if ids := keygenLines(t, r.stdout); ids["./node.key"] != fileID(t, filepath.Join(dir, "node.key")) {
		t.Fatalf("printed %v", ids)
	}
	r = run(t, nil, "keygen", "--count", "2")
	if r.code != ExitOK || len(keygenLines(t, r.stdout)) != 2 {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	fileID(t, filepath.Join(dir, "node-2.key"))
}

func TestKeygenUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := writeFile(t, "f", "x")
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"keygen", "--count", "0"}, ExitUsage, "--count must be between 1 and 1000"},
		{[]string{"keygen", "--count", "1001"}, ExitUsage, "--count must be between 1 and 1000"},
		{[]string{"keygen", "node.key"}, ExitUsage, "did you mean --out node.key"},
		{[]string{"keygen", "--out", dir}, ExitFailure, "is a directory"},
		{[]string{"keygen", "--count", "2", "--out", file}, ExitFailure, "is a file"},
	}
	for _, tc := range tests {
		r := run(t, nil, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, %q", tc.args, r.code, r.stdout, r.stderr, tc.code, tc.stderr)
		}
	}
}

// clusterAPI stands in for a node's admin API: status with a node id, and
// the peer table (or an error).
func clusterAPI(t *testing.T, nodeID string, peers *admin.PeersResponse) string {
	t.Helper()
	return clusterAPINode(t, admin.NodeStatus{ID: nodeID, Addrs: []string{}}, peers)
}

func clusterAPINode(t *testing.T, node admin.NodeStatus, peers *admin.PeersResponse) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		httpx.JSON(w, 200, admin.StatusResponse{Ready: true, UptimeSeconds: 61, Node: node})
	})
	mux.HandleFunc("GET /api/v1/peers", func(w http.ResponseWriter, _ *http.Request) {
		if peers == nil {
			httpx.Error(w, http.StatusServiceUnavailable, "", "the overlay plane is not running")
			return
		}
		httpx.JSON(w, 200, peers)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return "RON_HTTP_ADDR=" + strings.TrimPrefix(srv.URL, "http://")
}

func TestID(t *testing.T) {
	t.Parallel()
	const running = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
	withKey := t.TempDir()
	r := run(t, nil, "keygen", "--out", filepath.Join(withKey, "node.key"))
	fileKeyID := strings.Fields(r.stdout)[0]
	empty := t.TempDir()
	tests := []struct {
		name    string
		environ []string
		code    int
		stdout  string
		stderr  string
	}{
		{"the running node answers", []string{clusterAPI(t, running, nil), "RON_DATA_DIR=" + withKey}, ExitOK, running + "\n", ""},
		{"a node without an id: the key file", []string{clusterAPI(t, "", nil), "RON_DATA_DIR=" + withKey}, ExitOK, fileKeyID + "\n", ""},
		{"no node: the key file", []string{noNode(t), "RON_DATA_DIR=" + withKey}, ExitOK, fileKeyID + "\n", ""},
		{"neither", []string{noNode(t), "RON_DATA_DIR=" + empty}, ExitFailure, "", "no key file " + filepath.Join(empty, "node.key")},
		{"amnesia, no node", []string{noNode(t), "RON_DATA_DIR=" + withKey, "RON_AMNESIA=true"}, ExitFailure, "", "under amnesia"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.environ, "id")
			if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d %q %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
	// `id` never creates the key file.
	if _, err := os.Stat(filepath.Join(empty, "node.key")); !os.IsNotExist(err) {
		t.Errorf("id created a key file: %v", err)
	}
}

func TestPeers(t *testing.T) {
	t.Parallel()
	seen := time.Now().Add(-3 * time.Second)
	table := &admin.PeersResponse{Peers: []admin.Peer{
		{NodeID: "A", Addrs: []string{"/ip4/127.0.0.1/tcp/1/p2p/A", "/ip4/127.0.0.1/udp/1/quic-v1/p2p/A"}, Connected: true,
			RTTMs: 0.4123, LastSeen: seen, ReadyPlanes: []string{"overlay", "dht"}, DHTAddrs: []string{}},
		{NodeID: "B", Addrs: []string{}, ReadyPlanes: []string{}, DHTAddrs: []string{}},
	}}
	api := clusterAPI(t, "X", table)
	r := run(t, []string{api}, "peers")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	want := [][]string{
		{"NODE", "ADDRS", "CONNECTED", "RTT", "LAST-SEEN", "READY-PLANES"},
		{"A", "/ip4/127.0.0.1/tcp/1,/ip4/127.0.0.1/udp/1/quic-v1", "yes", "412µs", "3s", "ago", "overlay,dht"},
		{"B", "-", "no", "-", "-", "-"},
		{"2", "peers,", "1", "connected"},
	}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s", r.stdout)
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d = %q, want %q", i, got, w)
		}
	}

	r = run(t, []string{api}, "peers", "-o", "json")
	var got admin.PeersResponse
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK {
		t.Fatalf("exit %d, %v: %s", r.code, err, r.stdout)
	}
	if len(got.Peers) != 2 || got.Peers[0].NodeID != "A" || got.Peers[0].RTTMs != 0.4123 || !got.Peers[0].LastSeen.Equal(seen) {
		t.Errorf("json = %+v", got)
	}

	for _, tc := range []struct {
		name    string
		environ []string
		args    []string
		code    int
		stderr  string
	}{
		{"overlay down", []string{clusterAPI(t, "X", nil)}, []string{"peers"}, ExitFailure, "the overlay plane is not running (unavailable, HTTP 503)"},
		{"no node", []string{noNode(t)}, []string{"peers"}, ExitFailure, "no node running"},
		{"bad format", []string{api}, []string{"peers", "-o", "yaml"}, ExitUsage, "-o must be table or json"},
	} {
		r := run(t, tc.environ, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("%s: exit %d, stderr %q; want %d %q", tc.name, r.code, r.stderr, tc.code, tc.stderr)
		}
	}
}

func TestIdentityHelpTeaches(t *testing.T) {
	t.Parallel()
	for cmd, want := range map[string]string{"id": "/p2p/<node id>", "keygen": "never the key", "peers": "GET /api/v1/peers"} {
		r := run(t, nil, cmd, "--help")
		if r.code != ExitOK || !strings.Contains(r.stdout, want) {
			t.Errorf("%s --help: exit %d, missing %q:\n%s", cmd, r.code, want, r.stdout)
		}
	}
}

func TestStatusShowsTheNode(t *testing.T) {
	t.Parallel()
	const id = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
	tests := []struct {
		node admin.NodeStatus
		want string // the last line; "" means none after the summary
	}{
		{admin.NodeStatus{ID: id, Peers: 3, Connected: 2, DHTRoutingTable: 5, Overlay: admin.PlaneOK, DHT: admin.PlaneOK},
			"node id " + id + ": 3 peers (2 connected), dht routing table 5"},
		{admin.NodeStatus{ID: id, Overlay: admin.PlaneUnreachable, DHT: admin.PlaneDisabled},
			"node id " + id + ": overlay unreachable, dht disabled"},
		{admin.NodeStatus{}, ""},
	}
	for _, tc := range tests {
		r := run(t, []string{clusterAPINode(t, tc.node, nil)}, "status")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		last := lines[len(lines)-1]
		if tc.want == "" {
			tc.want = "node ready, up 1m1s"
		}
		if r.code != ExitOK || last != tc.want {
			t.Errorf("exit %d, last line %q, want %q\n%s", r.code, last, tc.want, r.stdout)
		}
	}
}
