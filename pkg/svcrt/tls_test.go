package svcrt

import (
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
)

// selfSigned writes a throwaway certificate for 127.0.0.1 and returns the
// cert and key paths and a pool that trusts it.
func selfSigned(t *testing.T) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "svcrt test"},
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
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

func TestTLSWithPostQuantumHybrid(t *testing.T) {
	certPath, keyPath, pool := selfSigned(t)
	cases := []struct {
		mode string
		want tls.CurveID
	}{
		{"hybrid", tls.X25519MLKEM768},
		{"off", tls.X25519},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			r := startRun(t, testPlane(nil, nil), []string{"--listen", "127.0.0.1:0", "--amnesia",
				"--tls-cert", certPath, "--tls-key", keyPath, "--pq-mode", c.mode}, envMap(nil))
			addr := r.addr(t)
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
			defer tr.CloseIdleConnections()
			res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/healthz")
			if err != nil {
				t.Fatalf("GET https /healthz: %v", err)
			}
			res.Body.Close()
			if res.StatusCode != 200 || res.TLS == nil {
				t.Fatalf("status %d, tls %v", res.StatusCode, res.TLS != nil)
			}
			if res.TLS.CurveID != c.want {
				t.Errorf("key exchange %v, want %v", res.TLS.CurveID, c.want)
			}
		})
	}
}

func TestTLSFlagsGoTogether(t *testing.T) {
	for _, args := range [][]string{
		{"--tls-cert", "c.pem"},
		{"--tls-key", "k.pem"},
		{"--pq-mode", "maybe"},
	} {
		_, err := parseFlags(testPlane(nil, nil), args, &syncBuffer{}, envMap(nil))
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}
