package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/config"
)

// ServeMetrics serves /metrics alone on its own listener, with the admin
// plane's timeouts and TLS, and Shutdown closes it with the admin listener.
func TestServeMetrics(t *testing.T) {
	certFile, keyFile, pool := testutil.SelfSignedCert(t)
	for _, withTLS := range []bool{false, true} {
		name := "plain"
		if withTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout = config.Duration(3*time.Second), config.Duration(7*time.Second), config.Duration(time.Minute)
			scheme, tr := "http", &http.Transport{DisableKeepAlives: true}
			if withTLS {
				cfg.AdminTLS = config.TLS{Cert: certFile, Key: keyFile}
				scheme, tr.TLSClientConfig = "https", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			s, err := New(Options{Config: func() *config.Config { return cfg }, Getenv: env()})
			if err != nil {
				t.Fatal(err)
			}
			if s.msrv.ReadTimeout != s.srv.ReadTimeout || s.msrv.ReadHeaderTimeout != s.srv.ReadHeaderTimeout ||
				s.msrv.WriteTimeout != s.srv.WriteTimeout || s.msrv.IdleTimeout != s.srv.IdleTimeout ||
				s.msrv.ReadHeaderTimeout != 3*time.Second || s.msrv.WriteTimeout != 7*time.Second {
				t.Errorf("metrics server timeouts %+v differ from the admin server's", s.msrv)
			}
			aln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			mln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			adminDone, metricsDone := make(chan error, 1), make(chan error, 1)
			go func() { adminDone <- s.Serve(aln) }()
			go func() { metricsDone <- s.ServeMetrics(mln) }()

			base := scheme + "://" + mln.Addr().String()
			resp, err := client.Get(base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || (resp.TLS != nil) != withTLS {
				t.Fatalf("GET /metrics: %d %s tls=%v", resp.StatusCode, resp.Header.Get("Content-Type"), resp.TLS != nil)
			}
			resp, err = client.Get(base + "/api/v1/status")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 404 {
				t.Fatalf("metrics listener serves the API: %d", resp.StatusCode)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			for what, done := range map[string]chan error{"Serve": adminDone, "ServeMetrics": metricsDone} {
				if err := <-done; !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("%s returned %v, want http.ErrServerClosed", what, err)
				}
			}
			if c, err := net.DialTimeout("tcp", mln.Addr().String(), time.Second); err == nil {
				c.Close()
				t.Fatal("metrics listener still accepts after Shutdown")
			}
		})
	}
}

// Shutdown without ServeMetrics (no metrics_addr) is fine, and ServeMetrics
// after Shutdown returns at once.
func TestServeMetricsAfterShutdown(t *testing.T) {
	cfg := testConfig()
	s, err := New(Options{Config: func() *config.Config { return cfg }, Getenv: env()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := s.ServeMetrics(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("ServeMetrics after Shutdown = %v", err)
	}
}
