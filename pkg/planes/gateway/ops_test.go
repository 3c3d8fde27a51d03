package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestInternalListener(t *testing.T) {
	ops := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ops "+r.URL.Path) })
	srv, err := New(Config{InternalListen: "127.0.0.1:0", Ops: ops}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.InternalAddr()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "ops /metrics" {
		t.Errorf("internal /metrics: %d %q", res.StatusCode, body)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("the internal listener still answers after Close")
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestInternalListenerMustBeLoopback(t *testing.T) {
	ops := http.NotFoundHandler()
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"127.0.0.2:0", true},
		{"[::1]:0", true},
		{"localhost:0", true},
		{":0", false},
		{"0.0.0.0:0", false},
		{"192.0.2.1:0", false},
		{"example.com:0", false},
		{"127.0.0.1", false},
	} {
		srv, err := New(Config{InternalListen: c.addr, Ops: ops}, nil, prometheus.NewRegistry())
		if c.ok && err != nil && !strings.Contains(err.Error(), "cannot assign") && !strings.Contains(err.Error(), "address family") {
			t.Errorf("--internal-listen %s: %v, want accepted", c.addr, err)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), "internal-listen")) {
			t.Errorf("--internal-listen %s: %v, want refused", c.addr, err)
		}
		if srv != nil {
			_ = srv.Close()
		}
	}
}
