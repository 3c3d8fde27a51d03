package config

import (
	"errors"
	"fmt"
	"strings"
)

// Override is one value set from outside the file and environment layers,
// typically a CLI flag: Field is a field path ("http_addr"), Source names the
// flag ("flag --http-addr").
type Override struct {
	Field, Value, Source string
}

// LoadOptions says where Load finds its layers.
type LoadOptions struct {
	// File is the config file (--config; errors about the file say
	// "(from --config)"); when empty, RON_CONFIG (or the deprecated
	// MACRO_CONFIG) in Environ names it; when both are empty there is no
	// file layer.
	File string
	// FileFrom says who named File, for errors about the file as a whole
	// ("config file x.yaml (from FileFrom): ..."); empty means "--config".
	FileFrom string
	// Environ is the environment as KEY=VALUE pairs (os.Environ()).
	Environ []string
	// Flags are applied last, in order.
	Flags []Override
}

// envVar maps the suffix of a RON_*/MACRO_* variable to a field path.
type envVar struct {
	suffix, field string
}

// envVars is the environment layer of SPEC §3, in the order it is applied.
// RON_SERVICES and RON_<PLANE>_ADDR are handled beside it.
var envVars = []envVar{
	{"HTTP_ADDR", "http_addr"},
	{"METRICS_ADDR", "metrics_addr"},
	{"LOG", "log_level"},
	{"LOG_FORMAT", "log_format"},
	{"READ_TIMEOUT", "read_timeout"},
	{"WRITE_TIMEOUT", "write_timeout"},
	{"IDLE_TIMEOUT", "idle_timeout"},
	{"GRACEFUL_TIMEOUT", "shutdown_timeout"},
	{"RUN_DIR", "run_dir"},
	{"DATA_DIR", "data_dir"},
	{"MAX_BODY_BYTES", "max_body_bytes"},
	{"MAX_OBJECT_BYTES", "max_object_bytes"},
	{"MAX_CHUNK_BYTES", "chunk_bytes"},
	{"OAP_MAX_FRAME_BYTES", "oap_max_frame_bytes"},
	{"DECOMPRESS_RATIO_CAP", "decompress_ratio_cap"},
	{"ADMIN_TOKEN", "admin_token"},
	{"ADMIN_TOKEN_FILE", "admin_token_file"},
	{"ADMIN_ALLOWED_HOSTS", "admin_allowed_hosts"},
	{"METRICS_PUBLIC", "metrics_public"},
	{"ADMIN_TLS_CERT", "admin_tls.cert"},
	{"ADMIN_TLS_KEY", "admin_tls.key"},
	{"ADMIN_TLS_CLIENT_CA", "admin_tls.client_ca"},
	{"GATEWAY_TLS_CERT", "gateway_tls.cert"},
	{"GATEWAY_TLS_KEY", "gateway_tls.key"},
	{"AMNESIA", "amnesia"},
	{"PQ_MODE", "pq_mode"},
	{"IO_IDLE_TIMEOUT", "io_idle_timeout"},
	{"FETCH_TIMEOUT", "fetch_timeout"},
	{"GATEWAY_RATE", "gateway_rate"},
	{"GATEWAY_BURST", "gateway_burst"},
	{"GATEWAY_TRUSTED_PROXIES", "gateway_trusted_proxies"},
	{"GATEWAY_MAX_CONNS", "gateway_max_conns"},
	{"BOOTSTRAP", "network.bootstrap"},
	{"ANNOUNCE", "network.announce"},
	{"OVERLAY_P2P_ADDR", "services.overlay.p2p_listen"},
	{"DHT_P2P_ADDR", "services.dht.p2p_listen"},
	{"DHT_REPROVIDE_INTERVAL", "dht.reprovide_interval"},
}

func allEnvVars() []envVar {
	vars := append([]envVar(nil), envVars...)
	for _, p := range Planes {
		vars = append(vars, envVar{strings.ToUpper(p) + "_ADDR", "services." + p + ".listen"})
	}
	return vars
}

// Load builds the effective configuration: defaults, then the file, then
// the environment, then opts.Flags. It returns warnings (deprecated
// variables) and an error naming the field and source of every value that
// cannot be parsed (all layers are read, so one run shows every such
// problem; a file's problems come first, in line order). It does not
// validate: call Validate on the result.
func Load(opts LoadOptions) (*Config, []string, error) {
	cfg, warnings, err := load(opts)
	if err != nil {
		return nil, warnings, err
	}
	return cfg, warnings, nil
}

// Resolve is Load then Validate, with the problems of both in one pass: a
// value that does not parse does not hide another that is invalid. On any
// problem the config is nil and the error is Load's error joined with the
// *ValidationError (errors.As finds it), or either alone.
func Resolve(opts LoadOptions) (*Config, []string, error) {
	cfg, warnings, lerr := load(opts)
	verr := cfg.Validate()
	switch {
	case lerr != nil && verr != nil:
		return nil, warnings, errors.Join(lerr, verr)
	case lerr != nil:
		return nil, warnings, lerr
	case verr != nil:
		return nil, warnings, verr
	}
	return cfg, warnings, nil
}

// load is Load, but returns the configuration even when some values could
// not be applied (those keep the value of the layer below).
func load(opts LoadOptions) (*Config, []string, error) {
	env := envMap(opts.Environ)
	cfg := defaultsFrom(env)
	var warnings []string

	lookup := func(suffix string) (value, name string, ok bool) {
		ron, macro := "RON_"+suffix, "MACRO_"+suffix
		rv, rok := env[ron]
		mv, mok := env[macro]
		switch {
		case rok && mok:
			warnings = append(warnings, fmt.Sprintf("%s is deprecated and ignored because %s is set", macro, ron))
			return rv, ron, true
		case rok:
			return rv, ron, true
		case mok:
			warnings = append(warnings, fmt.Sprintf("%s is deprecated; use %s", macro, ron))
			return mv, macro, true
		}
		return "", "", false
	}

	var errs []error
	file, origin := opts.File, opts.FileFrom
	if origin == "" {
		origin = "--config"
	}
	if file == "" {
		file, origin, _ = lookup("CONFIG")
	}
	if file != "" {
		// Keep going after a bad file: the environment's and the flags'
		// problems are reported in the same pass.
		if err := cfg.applyFile(file, origin); err != nil {
			errs = append(errs, err)
		}
	}

	for _, e := range allEnvVars() {
		value, name, ok := lookup(e.suffix)
		if !ok {
			continue
		}
		if err := cfg.Set(e.field, value, "env "+name); err != nil {
			errs = append(errs, fmt.Errorf("env %s: %w", name, err))
		}
	}
	if value, name, ok := lookup("SERVICES"); ok {
		if err := cfg.SetEnabled(value, "env "+name); err != nil {
			errs = append(errs, fmt.Errorf("env %s: %w", name, err))
		}
	}

	for _, o := range opts.Flags {
		var err error
		if o.Field == "services" {
			err = cfg.SetEnabled(o.Value, o.Source)
		} else {
			err = cfg.Set(o.Field, o.Value, o.Source)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.Source, err))
		}
	}
	if err := cfg.readAdminTokenFile(env); err != nil {
		errs = append(errs, err)
	}
	cfg.devInsecure = env[EnvDevInsecure] == "1"
	if cfg.devInsecure && cfg.adminExposed() {
		warnings = append(warnings, fmt.Sprintf("INSECURE: %s=1: the admin plane on %s has neither admin_token nor admin_tls.client_ca; anyone who can reach it may stop, restart or reload this node",
			EnvDevInsecure, cfg.HTTPAddr))
	}
	return cfg, warnings, errors.Join(errs...)
}

// SetEnabled enables exactly the planes named in a comma-separated list
// ("gateway,storage"); "none" or "" leaves the parent alone with no planes.
func (c *Config) SetEnabled(list, source string) error {
	names := splitList(list)
	if len(names) == 1 && strings.EqualFold(names[0], "none") {
		names = nil
	}
	want := map[string]bool{}
	for _, n := range names {
		n = strings.ToLower(n)
		if !isPlane(n) {
			return fmt.Errorf("services: unknown service %q (known: %s, or none)", n, strings.Join(Planes, ", "))
		}
		want[n] = true
	}
	for _, p := range Planes {
		path := "services." + p + ".enabled"
		v, err := c.field(path)
		if err != nil {
			return err
		}
		v.SetBool(want[p])
		c.setSource(path, source)
	}
	return nil
}

// envMap turns KEY=VALUE pairs into a map; later pairs win.
func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			m[k] = v
		}
	}
	return m
}
