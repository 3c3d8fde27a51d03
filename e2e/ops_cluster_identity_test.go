package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// keygenOut matches the one line `macronode keygen` prints per key.
var keygenOut = regexp.MustCompile(`(?m)^(12D3KooW[1-9A-HJ-NP-Za-km-z]{44})  (\S+)$`)

// TestOpsKeygenThenID: the built binary writes a node key, `id` reads it
// back when no node answers, and a second keygen never replaces it.
func TestOpsKeygenThenID(t *testing.T) {
	dataDir := t.TempDir()
	keyFile := filepath.Join(dataDir, "node.key")
	r := runCLI(t, nil, "macronode", "keygen", "--out", keyFile)
	m := keygenOut.FindStringSubmatch(r.out)
	if r.code != 0 || m == nil || m[2] != keyFile {
		t.Fatalf("keygen: exit %d:\n%s", r.code, r.out)
	}
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	before, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}

	env := []string{"RON_DATA_DIR=" + dataDir, "RON_HTTP_ADDR=" + freeAddr(t)} // no node there
	if r := runCLI(t, env, "macronode", "id"); r.code != 0 || strings.TrimSpace(r.out) != m[1] {
		t.Fatalf("id: exit %d, %q; want %s", r.code, r.out, m[1])
	}

	if r := runCLI(t, nil, "macronode", "keygen", "--out", keyFile); r.code != 1 || !strings.Contains(r.out, "refusing to overwrite") {
		t.Fatalf("second keygen: exit %d:\n%s", r.code, r.out)
	}
	if after, err := os.ReadFile(keyFile); err != nil || string(after) != string(before) {
		t.Fatalf("the key file changed (%v)", err)
	}

	empty := []string{"RON_DATA_DIR=" + t.TempDir(), "RON_HTTP_ADDR=" + freeAddr(t)}
	if r := runCLI(t, empty, "macronode", "id"); r.code != 1 || !strings.Contains(r.out, "no key file") {
		t.Fatalf("id with neither node nor key: exit %d:\n%s", r.code, r.out)
	}
}

// TestOpsClusterPlanesDisabled: a node without overlay and dht says so in
// its status, and its peer table is a clear 503, also through the CLI.
func TestOpsClusterPlanesDisabled(t *testing.T) {
	n := startNode(t, nodeOpts{services: "storage"})
	var st struct {
		Node struct {
			ID      string   `json:"id"`
			Addrs   []string `json:"addrs"`
			Peers   int      `json:"peers"`
			Overlay string   `json:"overlay"`
			DHT     string   `json:"dht"`
		} `json:"node"`
	}
	if code := getJSON(t, n.url("/api/v1/status"), &st); code != 200 {
		t.Fatalf("status %d", code)
	}
	if st.Node.Overlay != "disabled" || st.Node.DHT != "disabled" || st.Node.Addrs == nil || len(st.Node.Addrs) != 0 || st.Node.Peers != 0 {
		t.Errorf("node = %+v", st.Node)
	}
	var e errBody
	if code := getJSON(t, n.url("/api/v1/peers"), &e); code != 503 || e.Code != "unavailable" || !strings.Contains(e.Error, "disabled") {
		t.Errorf("peers: %d %+v", code, e)
	}
	r := runCLI(t, []string{"RON_HTTP_ADDR=" + n.admin}, "macronode", "peers")
	if r.code != 1 || !strings.Contains(r.out, "the overlay plane is disabled on this node") {
		t.Errorf("macronode peers: exit %d:\n%s", r.code, r.out)
	}
}
