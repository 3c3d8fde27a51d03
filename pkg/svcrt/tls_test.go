package svcrt

import (
	"crypto/tls"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/macronode/macronode/internal/testutil"
)

func TestTLSWithPostQuantumHybrid(t *testing.T) {
	certPath, keyPath, pool := testutil.SelfSignedCert(t)
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
