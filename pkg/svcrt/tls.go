package svcrt

import (
	"crypto/tls"
	"fmt"
)

// serverTLS loads the key pair for --tls-cert/--tls-key. In pq-mode
// "hybrid" the X25519MLKEM768 post-quantum hybrid key exchange is preferred
// (clients without it fall back to X25519); "off" offers classical curves only.
func serverTLS(certFile, keyFile, pqMode string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS key pair %s, %s: %w", certFile, keyFile, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if pqMode == "hybrid" {
		tc.CurvePreferences = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}
	} else {
		tc.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	}
	return tc, nil
}
