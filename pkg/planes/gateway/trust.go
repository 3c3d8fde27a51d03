package gateway

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/macronode/macronode/pkg/httpx"
)

// trustedProxies are the peers (--trusted-proxies) whose X-Forwarded-For
// names the client: a load balancer or CDN in front of the gateway.
type trustedProxies []netip.Prefix

// parseTrusted accepts CIDRs ("10.0.0.0/8") and single addresses.
func parseTrusted(list []string) (trustedProxies, error) {
	var out trustedProxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted-proxies: %q is neither a CIDR (10.0.0.0/8) nor an IP address", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (t trustedProxies) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerTrusted reports whether the connection's peer is a trusted proxy.
func (t trustedProxies) peerTrusted(r *http.Request) bool {
	if len(t) == 0 {
		return false
	}
	a, err := netip.ParseAddr(httpx.ClientIP(r))
	return err == nil && t.contains(a)
}

// clientIP is the address the rate limit counts a request against: the
// connection's peer, or, when that peer is a trusted proxy, the rightmost
// X-Forwarded-For entry that is not itself a trusted proxy (entries further
// left were written by the client and prove nothing). A malformed entry ends
// the walk at the last good address.
func (t trustedProxies) clientIP(r *http.Request) string {
	client := httpx.ClientIP(r)
	if !t.peerTrusted(r) {
		return client
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a.Unmap().String()
		if !t.contains(a) {
			break
		}
	}
	return client
}
