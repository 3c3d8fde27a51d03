package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// CheckMultiaddr is a light syntactic check of a libp2p multiaddr (this
// package does not depend on libp2p): it must start with /ip4, /ip6 or
// /dns* and a value, /tcp and /udp need a port, /p2p an id, and no
// component may be empty.
func CheckMultiaddr(s string) error {
	if !strings.HasPrefix(s, "/") {
		return fmt.Errorf("%q is not a multiaddr (want e.g. /ip4/127.0.0.1/tcp/9101)", s)
	}
	parts := strings.Split(s[1:], "/")
	if len(parts) < 2 || parts[1] == "" {
		return fmt.Errorf("%q: /%s needs a value", s, parts[0])
	}
	switch parts[0] {
	case "ip4":
		if a, err := netip.ParseAddr(parts[1]); err != nil || !a.Is4() {
			return fmt.Errorf("%q: %q is not an IPv4 address", s, parts[1])
		}
	case "ip6":
		if a, err := netip.ParseAddr(parts[1]); err != nil || !a.Is6() {
			return fmt.Errorf("%q: %q is not an IPv6 address", s, parts[1])
		}
	case "dns", "dns4", "dns6", "dnsaddr":
	default:
		return fmt.Errorf("%q must start with /ip4, /ip6, /dns, /dns4, /dns6 or /dnsaddr", s)
	}
	for i := 2; i < len(parts); i++ {
		switch p := parts[i]; p {
		case "":
			return fmt.Errorf("%q has an empty component", s)
		case "tcp", "udp":
			if i+1 >= len(parts) {
				return fmt.Errorf("%q: /%s needs a port", s, p)
			}
			i++
			if n, err := strconv.Atoi(parts[i]); err != nil || n < 0 || n > 65535 {
				return fmt.Errorf("%q: /%s port %q is not a number in 0-65535", s, p, parts[i])
			}
		case "p2p":
			if i+1 >= len(parts) || parts[i+1] == "" {
				return fmt.Errorf("%q: /p2p needs a node id", s)
			}
			i++
		}
	}
	return nil
}

// checkBootstrap is CheckMultiaddr plus the rule that a bootstrap peer's
// address ends in /p2p/<node id>: a peer is dialled by identity.
func checkBootstrap(s string) error {
	if err := CheckMultiaddr(s); err != nil {
		return err
	}
	parts := strings.Split(s, "/")
	if len(parts) < 3 || parts[len(parts)-2] != "p2p" {
		return fmt.Errorf("%q does not end in /p2p/<node id>", s)
	}
	return nil
}

// checkProxy accepts a CIDR ("10.0.0.0/8") or a single address.
func checkProxy(s string) error {
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	return fmt.Errorf("%q is neither a CIDR (10.0.0.0/8) nor an IP address", s)
}

// checkAllowedHost accepts a host name or address, with an optional port
// ("admin.example", "admin.example:8080", "[::1]:8080").
func checkAllowedHost(s string) error {
	if s == "" || strings.ContainsAny(s, "/@ \t") {
		return fmt.Errorf("%q is not a host name (want name or name:port, no scheme or path)", s)
	}
	if host, port, err := net.SplitHostPort(s); err == nil {
		if host == "" {
			return fmt.Errorf("%q has no host", s)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %q is not a number in 1-65535", s, port)
		}
	}
	return nil
}

// list checks every entry of a list field with check, naming the entry.
func (v *validator) list(field string, entries []string, check func(string) error) {
	for i, e := range entries {
		if err := check(e); err != nil {
			v.add(field, "entry %d: %v", i+1, err)
		}
	}
}

// network checks the settings of the cluster planes and the gateway's
// connection limits.
func (v *validator) network() {
	c := v.c
	v.list("admin_allowed_hosts", c.AdminAllowedHosts, checkAllowedHost)
	v.list("gateway_trusted_proxies", c.GatewayTrustedProxies, checkProxy)
	v.list("network.bootstrap", c.Network.Bootstrap, checkBootstrap)
	v.list("network.announce", c.Network.Announce, CheckMultiaddr)
	switch {
	case math.IsNaN(c.GatewayRate) || math.IsInf(c.GatewayRate, 0) || c.GatewayRate < 0:
		v.add("gateway_rate", "must be 0 (off) or a positive number of requests per second, got %g", c.GatewayRate)
	case c.GatewayBurst < 0:
		v.add("gateway_burst", "must not be negative, got %d", c.GatewayBurst)
	case c.GatewayRate > 0 && c.GatewayBurst == 0:
		v.add("gateway_burst", "must be at least 1 while gateway_rate is %g (set both to 0 to turn the limit off)", c.GatewayRate)
	}
	if c.GatewayMaxConns < 1 {
		v.add("gateway_max_conns", "must be at least 1, got %d", c.GatewayMaxConns)
	}
	for _, p := range Planes {
		s := c.Services[p]
		if s == nil {
			continue
		}
		field := "services." + p + ".p2p_listen"
		if _, ok := defaultP2PListen[p]; !ok {
			if len(s.P2PListen) > 0 {
				v.add(field, "only overlay and dht listen for libp2p peers")
			}
			continue
		}
		if s.Enabled && len(s.P2PListen) == 0 {
			v.add(field, "must list at least one multiaddr (e.g. %s)", defaultP2PListen[p][0])
		}
		v.list(field, s.P2PListen, CheckMultiaddr)
	}
}
