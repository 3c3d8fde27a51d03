package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reloadAnswer is the body of POST /api/v1/reload.
type reloadAnswer struct {
	Changed         []string          `json:"changed"`
	Applied         []string          `json:"applied"`
	RestartRequired []string          `json:"restart_required"`
	Apply           map[string]string `json:"apply"`
}

func listenConfig(addrs map[string]string) string {
	var b strings.Builder
	b.WriteString("services:\n")
	for _, p := range []string{"storage", "index", "gateway"} {
		fmt.Fprintf(&b, "  %s:\n    listen: %s\n", p, addrs[p])
	}
	return b.String()
}

// A reload that moves storage and index is reported as needing
// `macronode restart`, which then binds the new sockets, closes the old
// ones and restarts the gateway onto the new backends; status shows the
// address in force throughout. The admin plane's own metrics listener
// needs a node restart.
func TestReloadRestartMovesListeners(t *testing.T) {
	old := map[string]string{"storage": freeAddr(t), "index": freeAddr(t), "gateway": freeAddr(t)}
	n := startNode(t, nodeOpts{services: "storage,index,gateway", addrsInConfig: true, addrs: old, config: listenConfig(old)})
	gwPID := heldOf(t, n, "gateway").PID

	moved := map[string]string{"storage": freeAddr(t), "index": freeAddr(t), "gateway": old["gateway"]}
	if err := os.WriteFile(n.configPath, []byte(listenConfig(moved)+"metrics_addr: "+freeAddr(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ans reloadAnswer
	if code := postJSON(t, n.url("/api/v1/reload"), nil, &ans); code != 200 {
		t.Fatalf("reload answered %d", code)
	}
	for field, want := range map[string]string{
		"services.storage.listen": "macronode restart storage",
		"services.index.listen":   "macronode restart index",
		"metrics_addr":            "node restart",
	} {
		if !slices.Contains(ans.RestartRequired, field) || !strings.Contains(ans.Apply[field], want) {
			t.Errorf("reload: %s restart_required=%v apply=%q, want %q", field, ans.RestartRequired, ans.Apply[field], want)
		}
	}
	if s := heldOf(t, n, "storage"); s.Listen != old["storage"] || !s.RestartPending {
		t.Fatalf("status before restart: %+v, want listen %s in force and restart pending", s, old["storage"])
	}

	for _, p := range []string{"storage", "index"} {
		if code := postJSON(t, n.url("/api/v1/services/"+p+"/restart"), nil, nil); code != 202 {
			t.Fatalf("restart %s answered %d", p, code)
		}
	}
	for _, p := range []string{"storage", "index"} {
		eventually(t, restartTimeout, func() (bool, string) {
			s := heldOf(t, n, p)
			return s.Ready && s.Listen == moved[p] && s.Listener == "held" && !s.RestartPending, fmt.Sprintf("%s: %+v", p, s)
		})
		if c, err := net.DialTimeout("tcp", old[p], 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			if c != nil {
				c.Close()
			}
			t.Errorf("old %s address %s: %v, want refused", p, old[p], err)
		}
	}
	eventually(t, restartTimeout, func() (bool, string) {
		s := heldOf(t, n, "gateway")
		return s.Ready && s.PID != gwPID, fmt.Sprintf("gateway restarted onto the new backends: %+v", s)
	})
	addr := putBlob(t, n.gw(""), []byte("moved"))
	for _, url := range []string{"http://" + moved["storage"] + "/o/" + addr, n.gw("/o/" + addr)} {
		resp, body, err := request("GET", url, nil, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s after the move: %v %v %s", url, err, resp, trunc(body))
		}
	}
	resp, body, err := request("GET", n.gw("/names/nothing-here"), nil, nil)
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("index through the gateway after the move: %v %v %s, want 404 from index", err, resp, trunc(body))
	}
}
