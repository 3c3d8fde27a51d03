package admin

import (
	"net"
	"net/http"
	"strings"

	"github.com/macronode/macronode/pkg/httpx"
)

// newCrossOrigin builds the cross-site guard of every state-changing route
// (SPEC §5): Go's http.CrossOriginProtection, which refuses a non-safe
// request whose Sec-Fetch-Site says cross-site, or whose Origin names
// another host than Host. Requests carrying neither header (the CLI, curl)
// pass. A refusal is 403 JSON.
func newCrossOrigin() *http.CrossOriginProtection {
	p := http.NewCrossOriginProtection()
	p.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.Error(w, http.StatusForbidden, "cross_origin",
			"cross-origin request refused: the admin API accepts state-changing requests only from its own origin or from clients that send no Origin")
	}))
	return p
}

// browserGuard applies the cross-site guard and, while the admin plane is
// bound to loopback, the DNS-rebinding guard: a request whose Host is not
// the bound address, localhost, a loopback address or one of
// admin_allowed_hosts is 403 JSON. The probe routes (isProbe) skip the Host
// check: kubelet and Prometheus send `Host: <pod ip>:<port>`.
func (s *Server) browserGuard(next http.Handler) http.Handler {
	guarded := s.crossOrigin.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.loopback.Load() && !isProbe(r) && !s.hostAllowed(r.Host) {
			httpx.Errorf(w, http.StatusForbidden, "host_not_allowed",
				"Host %q is not this admin plane's address: add it to admin_allowed_hosts if it is a name for this node", r.Host)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether a request's Host header names this admin
// plane: localhost, a loopback IP or the bound host, on the bound port or
// none; or an admin_allowed_hosts entry ("name" matches any port,
// "name:port" only that port).
func (s *Server) hostAllowed(host string) bool {
	name, port := splitHost(host)
	if name == "" {
		return false
	}
	boundName, boundPort := s.boundAddr()
	if port == "" || port == boundPort {
		if name == "localhost" || name == boundName {
			return true
		}
		if ip := net.ParseIP(name); ip != nil && ip.IsLoopback() {
			return true
		}
	}
	if cfg := s.config(); cfg != nil {
		for _, a := range cfg.AdminAllowedHosts {
			aname, aport := splitHost(a)
			if aname == name && (aport == "" || aport == port) {
				return true
			}
		}
	}
	return false
}

// boundAddr is the host and port the admin plane listens on: the real
// listener's once Serve runs, else the configured http_addr.
func (s *Server) boundAddr() (host, port string) {
	addr, _ := s.bindAddr.Load().(string)
	if addr == "" {
		if cfg := s.config(); cfg != nil {
			addr = cfg.HTTPAddr
		}
	}
	return splitHost(addr)
}

// splitHost splits "Name:port", "[::1]:port", "name" or "::1" into a lower
// case host without brackets and a port ("" when absent).
func splitHost(hostport string) (host, port string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return strings.ToLower(h), p
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")), ""
}
