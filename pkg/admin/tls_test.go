package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/config"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "macronode test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
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
	certFile, keyFile, _ := selfSigned(t)
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
