package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// opsServer serves the runtime's /metrics and /version on the internal
// listener (--internal-listen), never on the public one (SPEC §7): the git
// sha, versions and internals are for the parent's scrape, not for clients.
type opsServer struct {
	srv  *http.Server
	addr string
	done chan error
}

// startOps listens on addr, which must be a loopback address, and serves h.
func startOps(addr string, h http.Handler) (*opsServer, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, fmt.Errorf("--internal-listen: %w", err)
	}
	if h == nil {
		return nil, errors.New("--internal-listen: no /metrics and /version handler to serve")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--internal-listen: %w", err)
	}
	o := &opsServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
		addr: ln.Addr().String(),
		done: make(chan error, 1),
	}
	go func() { o.done <- o.srv.Serve(ln) }()
	return o, nil
}

// close stops the listener and waits for the server to return.
func (o *opsServer) close() error {
	err := o.srv.Close()
	if serr := <-o.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// checkLoopback accepts host:port whose host is "localhost" or a loopback IP.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("address %q is not loopback (127.0.0.0/8, ::1 or localhost): the internal listener must not be reachable from outside", addr)
}
