package httpx

import (
	"crypto/tls"
	"fmt"
)

// ServerTLS loads a PEM key pair into a server TLS config (TLS 1.2+) whose
// key exchange follows macronode's pq_mode: "hybrid" prefers the
// post-quantum hybrid X25519MLKEM768 (clients without it fall back to
// X25519), "off" offers classical curves only. The admin plane and every
// svc-* child use it, so both speak the same TLS.
func ServerTLS(certFile, keyFile, pqMode string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS key pair %s, %s: %w", certFile, keyFile, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if pqMode == "off" {
		tc.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}
	} else {
		tc.CurvePreferences = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}
	}
	return tc, nil
}
