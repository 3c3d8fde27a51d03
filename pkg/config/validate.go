package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/macronode/macronode/pkg/control"
)

// EnvDevInsecure=1 in the environment Load reads lets an admin plane that
// is not on loopback run with neither a token nor a client CA.
const EnvDevInsecure = "MACRONODE_DEV_INSECURE"

// IsLoopbackAddr reports whether a host:port listen address binds only the
// loopback interface: "localhost", 127.0.0.0/8 or ::1. An empty host
// (":8080") binds every interface and is not loopback; neither is an
// unparsable address.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// adminExposed reports an admin plane reachable beyond this host with no
// credential: a valid address not on loopback, no admin token, no client CA.
func (c *Config) adminExposed() bool {
	return CheckAddr(c.HTTPAddr) == nil && !IsLoopbackAddr(c.HTTPAddr) && c.AdminToken == "" && c.AdminTLS.ClientCA == ""
}

// FieldError is one invalid value: the field path, the layer that set it,
// and what is wrong.
type FieldError struct {
	Field, Source, Msg string
}

func (e FieldError) Error() string {
	return fmt.Sprintf("%s (%s): %s", e.Field, e.Source, e.Msg)
}

// ValidationError lists every invalid value of a configuration.
type ValidationError struct {
	Errs []FieldError
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Errs))
	for i, fe := range e.Errs {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

type validator struct {
	c    *Config
	errs []FieldError
}

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Field: field, Source: v.c.Source(field), Msg: fmt.Sprintf(format, args...)})
}

// Validate checks the whole configuration and returns a *ValidationError
// listing every problem, or nil.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.addr("http_addr", c.HTTPAddr, false)
	v.addr("metrics_addr", c.MetricsAddr, true)
	v.oneOf("log_level", c.LogLevel, "trace", "debug", "info", "warn", "error")
	v.oneOf("log_format", c.LogFormat, "auto", "json", "text")
	v.oneOf("pq_mode", c.PQMode, "off", "hybrid")
	for _, d := range []struct {
		field string
		val   Duration
	}{
		{"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout},
		{"idle_timeout", c.IdleTimeout}, {"shutdown_timeout", c.ShutdownTimeout},
		{"io_idle_timeout", c.IOIdleTimeout}, {"fetch_timeout", c.FetchTimeout},
		{"dht.reprovide_interval", c.DHT.ReprovideInterval},
	} {
		v.positive(d.field, int64(d.val), d.val.String())
	}
	for _, s := range []struct {
		field string
		val   Size
	}{
		{"max_body_bytes", c.MaxBodyBytes}, {"max_object_bytes", c.MaxObjectBytes},
		{"chunk_bytes", c.ChunkBytes}, {"oap_max_frame_bytes", c.OAPMaxFrameBytes},
	} {
		v.positive(s.field, int64(s.val), s.val.String())
	}
	if c.ChunkBytes > 0 && c.MaxObjectBytes > 0 && c.ChunkBytes > c.MaxObjectBytes {
		v.add("chunk_bytes", "%s is larger than max_object_bytes (%s)", c.ChunkBytes, c.MaxObjectBytes)
	}
	if c.DecompressRatioCap < 1 {
		v.add("decompress_ratio_cap", "must be at least 1, got %d", c.DecompressRatioCap)
	}
	if c.DataDir == "" && !c.Amnesia {
		v.add("data_dir", "must not be empty (or set amnesia: true)")
	}
	if c.RunDir != "" {
		if sock := strings.TrimSuffix(c.RunDir, "/") + "/" + control.SocketName; len(sock) > control.MaxSocketPath {
			v.add("run_dir", "control socket path %q is %d bytes, longer than the %d a Unix socket allows", sock, len(sock), control.MaxSocketPath)
		}
	}
	v.adminToken()
	if c.adminExposed() && !c.devInsecure {
		v.add("http_addr", "%s is not a loopback address and neither admin_token nor admin_tls.client_ca is set: "+
			"anyone who can reach it could stop this node (set one of them; %s=1 allows it for development only)", c.HTTPAddr, EnvDevInsecure)
	}
	v.tls("admin_tls", c.AdminTLS)
	v.tls("gateway_tls", c.GatewayTLS)
	if c.GatewayTLS.ClientCA != "" {
		v.add("gateway_tls.client_ca", "client certificates are not supported on the gateway (only on the admin plane)")
	}
	for _, p := range Planes {
		v.service(p, c.Services[p])
	}
	v.network()
	v.cycles()
	v.conflicts()
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Errs: v.errs}
}

// CheckAddr reports what is wrong with a host:port listen address, or nil.
func CheckAddr(addr string) error {
	noPort := fmt.Errorf("%q is an address without a port (want host:port, e.g. 127.0.0.1:8080)", addr)
	if !strings.Contains(addr, ":") || (strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]")) {
		return noPort
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not a host:port address", addr)
	}
	if port == "" {
		return noPort
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("%q: port %q is not a number", addr, port)
	}
	if n < 1 || n > 65535 {
		return fmt.Errorf("%q: port out of range (1-65535)", addr)
	}
	return nil
}

func (v *validator) addr(field, addr string, optional bool) {
	if addr == "" {
		if !optional {
			v.add(field, "must not be empty (want host:port)")
		}
		return
	}
	if err := CheckAddr(addr); err != nil {
		v.add(field, "%s", err)
	}
}

// adminToken refuses a token no request can present: blank, or with
// surrounding whitespace (a Bearer header's credentials are trimmed).
func (v *validator) adminToken() {
	t := v.c.AdminToken
	switch {
	case t == "":
	case strings.TrimSpace(t) == "":
		v.add("admin_token", "is blank (whitespace only): set a real token, or leave it unset")
	case strings.TrimSpace(t) != t:
		v.add("admin_token", "has leading or trailing whitespace, which an Authorization header cannot carry")
	}
}

func (v *validator) oneOf(field, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(field, "%q is not one of %s", val, strings.Join(allowed, ", "))
}

func (v *validator) positive(field string, n int64, shown string) {
	if n <= 0 {
		v.add(field, "must be greater than 0, got %s", shown)
	}
}

func (v *validator) tls(prefix string, t TLS) {
	if (t.Cert == "") != (t.Key == "") {
		// Blame the field that is set: its source is the one to fix.
		if t.Cert == "" {
			v.add(prefix+".key", "a TLS key is set without %s.cert (set both or neither)", prefix)
		} else {
			v.add(prefix+".cert", "a TLS certificate is set without %s.key (set both or neither)", prefix)
		}
	}
	if t.ClientCA != "" && t.Cert == "" {
		v.add(prefix+".client_ca", "a client CA needs TLS (set cert and key too)")
	}
}

func (v *validator) service(p string, s *Service) {
	pre := "services." + p + "."
	if s == nil {
		v.add("services."+p, "missing")
		return
	}
	if s.Enabled || s.Listen != "" {
		v.addr(pre+"listen", s.Listen, false)
	}
	for _, d := range s.DependsOn {
		switch {
		case d == p:
			v.add(pre+"depends_on", "%s cannot depend on itself", p)
		case !isPlane(d):
			v.add(pre+"depends_on", "unknown service %q (known: %s)", d, strings.Join(Planes, ", "))
		}
	}
	b := s.Backoff
	if b.Initial <= 0 {
		v.add(pre+"backoff.initial", "must be greater than 0, got %s", b.Initial)
	}
	if b.Max < b.Initial {
		v.add(pre+"backoff.max", "%s is less than backoff.initial (%s)", b.Max, b.Initial)
	}
	if b.Multiplier < 1 {
		v.add(pre+"backoff.multiplier", "must be at least 1, got %g", b.Multiplier)
	}
	if s.MaxRestarts < 1 {
		v.add(pre+"max_restarts", "must be at least 1, got %d", s.MaxRestarts)
	}
	for _, d := range []struct {
		name string
		val  Duration
	}{
		{"restart_window", s.RestartWindow}, {"failed_retry", s.FailedRetry},
		{"stable_after", s.StableAfter}, {"start_timeout", s.StartTimeout},
		{"heartbeat_timeout", s.HeartbeatTimeout},
	} {
		v.positive(pre+d.name, int64(d.val), d.val.String())
	}
}

// cycles reports each dependency cycle among the planes once.
func (v *validator) cycles() {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(p string)
	visit = func(p string) {
		state[p] = active
		stack = append(stack, p)
		if s := v.c.Services[p]; s != nil {
			for _, d := range s.DependsOn {
				if !isPlane(d) || d == p {
					continue
				}
				switch state[d] {
				case unseen:
					visit(d)
				case active:
					i := indexOf(stack, d)
					cycle := append(append([]string(nil), stack[i:]...), d)
					// Blame an edge an operator set, if any, rather than a default one.
					field := "services." + p + ".depends_on"
					for _, m := range cycle {
						if f := "services." + m + ".depends_on"; v.c.Source(f) != SourceDefault {
							field = f
							break
						}
					}
					v.add(field, "dependency cycle: %s", strings.Join(cycle, " -> "))
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[p] = done
	}
	for _, p := range Planes {
		if state[p] == unseen {
			visit(p)
		}
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// conflicts reports two listeners (admin, metrics, enabled planes) on one
// address. A wildcard host conflicts with every host on the same port.
func (v *validator) conflicts() {
	type listener struct{ field, addr string }
	ls := []listener{{"http_addr", v.c.HTTPAddr}}
	if v.c.MetricsAddr != "" {
		ls = append(ls, listener{"metrics_addr", v.c.MetricsAddr})
	}
	for _, p := range Planes {
		if s := v.c.Services[p]; s != nil && s.Enabled {
			ls = append(ls, listener{"services." + p + ".listen", s.Listen})
		}
	}
	for i := 1; i < len(ls); i++ {
		for j := 0; j < i; j++ {
			if sameListener(ls[i].addr, ls[j].addr) {
				v.add(ls[i].field, "%s is already used by %s", ls[i].addr, ls[j].field)
				break
			}
		}
	}
}

func sameListener(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

// Enabled returns the enabled planes in start order: dependencies first
// (dependencies on disabled planes are ignored), ties in Planes order.
func (c *Config) Enabled() []string {
	var enabled []string
	for _, p := range Planes {
		if s := c.Services[p]; s != nil && s.Enabled {
			enabled = append(enabled, p)
		}
	}
	placed := map[string]bool{}
	order := make([]string, 0, len(enabled))
	for len(order) < len(enabled) {
		progress := false
		for _, p := range enabled {
			if placed[p] || !c.depsPlaced(p, placed) {
				continue
			}
			placed[p] = true
			order = append(order, p)
			progress = true
			break // restart the scan so ties go to the earliest plane
		}
		if !progress { // a cycle (Validate reports it): keep Planes order
			for _, p := range enabled {
				if !placed[p] {
					placed[p] = true
					order = append(order, p)
				}
			}
		}
	}
	return order
}

func (c *Config) depsPlaced(p string, placed map[string]bool) bool {
	for _, d := range c.Services[p].DependsOn {
		if d == p {
			continue
		}
		if s := c.Services[d]; s != nil && s.Enabled && !placed[d] {
			return false
		}
	}
	return true
}
