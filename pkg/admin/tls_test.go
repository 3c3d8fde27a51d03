package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"testing"

	"github.com/macronode/macronode/internal/testutil"

	"github.com/macronode/macronode/pkg/config"
)

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := testutil.SelfSignedCert(t)
	for _, tc := range []struct {
		pq    string
		curve tls.CurveID
	}{{"hybrid", tls.X25519MLKEM768}, {"off", tls.X25519}} {
		t.Run(tc.pq, func(t *testing.T) {
			cfg := testConfig()
			cfg.AdminTLS = config.TLS{Cert: certFile, Key: keyFile}
			cfg.PQMode = tc.pq
			s, err := New(Options{Config: func() *config.Config { return cfg }, Getenv: env()})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- s.Serve(ln) }()
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}, DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get("https://" + ln.Addr().String() + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.CurveID != tc.curve {
				t.Errorf("code %d, tls %+v", resp.StatusCode, resp.TLS)
			}
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := <-done; !errors.Is(err, http.ErrServerClosed) {
				t.Fatalf("Serve: %v", err)
			}
		})
	}
}

func TestAdminTLSErrors(t *testing.T) {
	certFile, keyFile, _ := testutil.SelfSignedCert(t)
	tests := map[string]config.TLS{
		"cert without key":  {Cert: certFile},
		"missing files":     {Cert: certFile + ".nope", Key: keyFile},
		"client ca missing": {Cert: certFile, Key: keyFile, ClientCA: certFile + ".nope"},
		"client ca not pem": {Cert: certFile, Key: keyFile, ClientCA: keyFile + "x"},
	}
	if err := os.WriteFile(keyFile+"x", []byte("not a pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.AdminTLS = tc
			if _, err := New(Options{Config: func() *config.Config { return cfg }}); err == nil {
				t.Fatal("New accepted a bad admin_tls")
			}
		})
	}
	cfg := testConfig()
	cfg.AdminTLS = config.TLS{Cert: certFile, Key: keyFile, ClientCA: certFile}
	tc, err := adminTLS(cfg)
	if err != nil || tc.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("client CA: %v %+v", err, tc)
	}
}
