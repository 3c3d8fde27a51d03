package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// loadAndValidate is Resolve: every problem of loading and validating.
func loadAndValidate(opts LoadOptions) (*Config, []string, error) { return Resolve(opts) }

func TestTestdataFiles(t *testing.T) {
	// Every *.bad.* file must appear here with a fragment of its error.
	badWant := map[string][]string{
		"unknown-key.bad.yaml":           {`unknown-key.bad.yaml: line 3: unknown field "htp_addr"`},
		"unknown-key.bad.json":           {`unknown-key.bad.json: line 1: unknown field "htp_addr"`},
		"duplicate.bad.json":             {`duplicate.bad.json: line 5: duplicate key "TOKEN" in services.storage.env`, `duplicate.bad.json: line 8: duplicate key "log_level" in the top level`},
		"mixed.bad.yaml":                 {`line 1: read_timeout: invalid duration 10`, `line 2: unknown field "htp_addr"`, `line 5: unknown field "lisen" in services.storage`, `line 6: services.storage.max_restarts: `},
		"mixed.bad.json":                 {`line 2: read_timeout: invalid duration 10`, `line 3: unknown field "htp_addr"`, `line 6: unknown field "lisen" in services.storage`, `line 7: services.storage.max_restarts: cannot use a JSON string as int`},
		"parsecs.bad.yaml":               {`line 1: read_timeout: invalid duration "5 parsecs"`},
		"number-duration.bad.yaml":       {`write_timeout: invalid duration 10`},
		"port-range.bad.yaml":            {"http_addr (file ", "port out of range"},
		"no-port.bad.yaml":               {"http_addr (file ", "address without a port"},
		"unknown-plane.bad.yaml":         {`line 2: unknown service "storag" under services`},
		"unknown-service-field.bad.yaml": {`line 3: unknown field "lisen" in services.storage`},
		"bad-size.bad.yaml":              {"max_body_bytes: ", "must not be negative"},
		"chunk-too-big.bad.yaml":         {"chunk_bytes (file ", "larger than max_object_bytes"},
		"cycle.bad.yaml":                 {"services.overlay.depends_on (file testdata/cycle.bad.yaml): dependency cycle: overlay -> dht -> overlay"},
		"same-addr.bad.yaml":             {"services.index.listen (file ", "already used by services.storage.listen"},
		"tls-half.bad.yaml":              {"gateway_tls.cert (file testdata/tls-half.bad.yaml): a TLS certificate is set without gateway_tls.key"},
		"log-level.bad.yaml":             {`log_level (file `, `"verbose" is not one of trace, debug, info, warn, error`},
		"backoff.bad.yaml":               {"services.mailbox.backoff.max", "services.mailbox.backoff.multiplier", "services.mailbox.max_restarts"},
		"unknown-dep.bad.yaml":           {`services.gateway.depends_on (file `, `unknown service "blobs"`},
		"duplicate.bad.yaml":             {`line 2: duplicate key "log_level"`},
		"syntax.bad.yaml":                {"syntax.bad.yaml: "},
		"several.bad.yaml":               {"line 2: read_timeout: invalid duration 10", `http_addr (file testdata/several.bad.yaml): "127.0.0.1" is an address without a port`, `log_level (file testdata/several.bad.yaml): "verbose" is not one of`},
	}
	files, err := filepath.Glob("testdata/*.*.*")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			_, _, err := loadAndValidate(LoadOptions{File: f})
			switch {
			case strings.Contains(name, ".good."):
				if err != nil {
					t.Fatalf("want ok, got %v", err)
				}
			case strings.Contains(name, ".bad."):
				seen++
				want, ok := badWant[name]
				if !ok {
					t.Fatalf("no expected error listed for %s", name)
				}
				if err == nil {
					t.Fatalf("want error containing %q, got nil", want)
				}
				for _, w := range want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
			}
		})
	}
	if seen != len(badWant) {
		t.Errorf("ran %d bad files, table lists %d", seen, len(badWant))
	}
}

func TestFileMergesPartialService(t *testing.T) {
	f := filepath.Join("testdata", "full.good.yaml")
	cfg, _, err := loadAndValidate(LoadOptions{File: f})
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Services["storage"]
	def := DefaultService("storage")
	if st.Listen != "127.0.0.1:19300" || !st.Enabled || !st.Critical || st.MaxRestarts != def.MaxRestarts {
		t.Errorf("storage = %+v", st)
	}
	if st.Backoff.Initial != Duration(200*time.Millisecond) || st.Backoff.Max != def.Backoff.Max {
		t.Errorf("backoff = %+v", st.Backoff)
	}
	if !reflect.DeepEqual(st.Args, []string{"--fsync=always"}) || st.Env["GOMAXPROCS"] != "2" {
		t.Errorf("args/env = %v %v", st.Args, st.Env)
	}
	if cfg.Services["dht"].Enabled {
		t.Error("dht should be disabled")
	}
	if got := cfg.Source("services.storage.listen"); got != "file "+f {
		t.Errorf("source of services.storage.listen = %q", got)
	}
	if got := cfg.Source("services.storage.critical"); got != SourceDefault {
		t.Errorf("source of services.storage.critical = %q", got)
	}
	if cfg.MaxBodyBytes != 2<<20 || cfg.OAPMaxFrameBytes != 1e6 || cfg.ChunkBytes != 64<<10 {
		t.Errorf("sizes = %d %d %d", cfg.MaxBodyBytes, cfg.OAPMaxFrameBytes, cfg.ChunkBytes)
	}
	if !reflect.DeepEqual(cfg.Enabled(), []string{"storage", "index", "mailbox", "overlay", "gateway"}) {
		t.Errorf("enabled = %v", cfg.Enabled())
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("log_level: warn\nread_timeout: 3s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flag := Override{Field: "log_level", Value: "error", Source: "flag --log-level"}
	tokenFile := filepath.Join(dir, "token")
	credFile := filepath.Join(dir, CredentialName)
	for _, f := range []string{tokenFile, credFile} {
		if err := os.WriteFile(f, []byte("t0ken\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		opts       LoadOptions
		field      string
		wantValue  any
		wantSource string
		wantWarn   string
	}{
		{"default", LoadOptions{}, "log_level", "info", "default", ""},
		{"file", LoadOptions{File: file}, "log_level", "warn", "file " + file, ""},
		{"RON_CONFIG names the file", LoadOptions{Environ: []string{"RON_CONFIG=" + file}}, "log_level", "warn", "file " + file, ""},
		{"env beats file", LoadOptions{File: file, Environ: []string{"RON_LOG=debug"}}, "log_level", "debug", "env RON_LOG", ""},
		{"flag beats env", LoadOptions{File: file, Environ: []string{"RON_LOG=debug"}, Flags: []Override{flag}}, "log_level", "error", "flag --log-level", ""},
		{"MACRO alias", LoadOptions{Environ: []string{"MACRO_LOG=trace"}}, "log_level", "trace", "env MACRO_LOG", "MACRO_LOG is deprecated; use RON_LOG"},
		{"RON beats MACRO", LoadOptions{Environ: []string{"MACRO_LOG=trace", "RON_LOG=warn"}}, "log_level", "warn", "env RON_LOG", "MACRO_LOG is deprecated and ignored because RON_LOG is set"},
		{"graceful timeout", LoadOptions{Environ: []string{"RON_GRACEFUL_TIMEOUT=30s"}}, "shutdown_timeout", Duration(30 * time.Second), "env RON_GRACEFUL_TIMEOUT", ""},
		{"file duration kept", LoadOptions{File: file, Environ: []string{"RON_LOG=debug"}}, "read_timeout", Duration(3 * time.Second), "file " + file, ""},
		{"plane addr", LoadOptions{Environ: []string{"RON_STORAGE_ADDR=127.0.0.1:1"}}, "services.storage.listen", "127.0.0.1:1", "env RON_STORAGE_ADDR", ""},
		{"chunk env", LoadOptions{Environ: []string{"RON_MAX_CHUNK_BYTES=128KiB"}}, "chunk_bytes", Size(128 << 10), "env RON_MAX_CHUNK_BYTES", ""},
		{"tls env", LoadOptions{Environ: []string{"RON_ADMIN_TLS_CLIENT_CA=/ca.pem"}}, "admin_tls.client_ca", "/ca.pem", "env RON_ADMIN_TLS_CLIENT_CA", ""},
		{"amnesia", LoadOptions{Environ: []string{"RON_AMNESIA=1"}}, "amnesia", true, "env RON_AMNESIA", ""},
		{"amnesia flag", LoadOptions{Environ: []string{"RON_AMNESIA=0"}, Flags: []Override{{"amnesia", "true", "flag --amnesia"}}}, "amnesia", true, "flag --amnesia", ""},
		{"state dir", LoadOptions{Environ: []string{"STATE_DIRECTORY=/var/lib/mn"}}, "data_dir", "/var/lib/mn", "env STATE_DIRECTORY", ""},
		{"runtime dir", LoadOptions{Environ: []string{"RUNTIME_DIRECTORY=/run/mn:/run/other"}}, "run_dir", "/run/mn", "env RUNTIME_DIRECTORY", ""},
		{"token file env", LoadOptions{Environ: []string{"RON_ADMIN_TOKEN_FILE=" + tokenFile}}, "admin_token", "t0ken", "admin_token_file " + tokenFile, ""},
		{"credentials directory", LoadOptions{Environ: []string{"CREDENTIALS_DIRECTORY=" + dir}}, "admin_token_file", credFile, "env CREDENTIALS_DIRECTORY", ""},
		{"credential ignored under a token", LoadOptions{Environ: []string{"CREDENTIALS_DIRECTORY=" + dir, "RON_ADMIN_TOKEN=x"}}, "admin_token", "x", "env RON_ADMIN_TOKEN", ""},
		{"allowed hosts", LoadOptions{Environ: []string{"RON_ADMIN_ALLOWED_HOSTS=a.example, b.example:80"}}, "admin_allowed_hosts", []string{"a.example", "b.example:80"}, "env RON_ADMIN_ALLOWED_HOSTS", ""},
		{"metrics public", LoadOptions{Environ: []string{"MACRO_METRICS_PUBLIC=false"}}, "metrics_public", false, "env MACRO_METRICS_PUBLIC", "MACRO_METRICS_PUBLIC is deprecated; use RON_METRICS_PUBLIC"},
		{"io idle", LoadOptions{Environ: []string{"RON_IO_IDLE_TIMEOUT=2s"}}, "io_idle_timeout", Duration(2 * time.Second), "env RON_IO_IDLE_TIMEOUT", ""},
		{"fetch timeout", LoadOptions{Environ: []string{"RON_FETCH_TIMEOUT=1s"}}, "fetch_timeout", Duration(time.Second), "env RON_FETCH_TIMEOUT", ""},
		{"gateway rate", LoadOptions{Environ: []string{"RON_GATEWAY_RATE=0"}}, "gateway_rate", 0.0, "env RON_GATEWAY_RATE", ""},
		{"gateway burst", LoadOptions{Environ: []string{"RON_GATEWAY_BURST=7"}}, "gateway_burst", 7, "env RON_GATEWAY_BURST", ""},
		{"trusted proxies", LoadOptions{Environ: []string{"RON_GATEWAY_TRUSTED_PROXIES=10.0.0.0/8"}}, "gateway_trusted_proxies", []string{"10.0.0.0/8"}, "env RON_GATEWAY_TRUSTED_PROXIES", ""},
		{"max conns", LoadOptions{Environ: []string{"RON_GATEWAY_MAX_CONNS=9"}}, "gateway_max_conns", 9, "env RON_GATEWAY_MAX_CONNS", ""},
		{"bootstrap env", LoadOptions{Environ: []string{"RON_BOOTSTRAP=/ip4/127.0.0.1/tcp/1/p2p/A,/ip4/127.0.0.1/tcp/2/p2p/B"}}, "network.bootstrap", []string{"/ip4/127.0.0.1/tcp/1/p2p/A", "/ip4/127.0.0.1/tcp/2/p2p/B"}, "env RON_BOOTSTRAP", ""},
		{"bootstrap flag", LoadOptions{Environ: []string{"RON_BOOTSTRAP=/ip4/127.0.0.1/tcp/1/p2p/A"}, Flags: []Override{{"network.bootstrap", "/ip4/127.0.0.1/tcp/3/p2p/C", "flag --bootstrap"}}}, "network.bootstrap", []string{"/ip4/127.0.0.1/tcp/3/p2p/C"}, "flag --bootstrap", ""},
		{"announce", LoadOptions{Environ: []string{"RON_ANNOUNCE=/dns4/n.example/tcp/9101"}}, "network.announce", []string{"/dns4/n.example/tcp/9101"}, "env RON_ANNOUNCE", ""},
		{"overlay p2p", LoadOptions{Environ: []string{"RON_OVERLAY_P2P_ADDR=/ip4/127.0.0.1/tcp/0"}}, "services.overlay.p2p_listen", []string{"/ip4/127.0.0.1/tcp/0"}, "env RON_OVERLAY_P2P_ADDR", ""},
		{"dht p2p default", LoadOptions{}, "services.dht.p2p_listen", []string{"/ip4/0.0.0.0/tcp/9201", "/ip4/0.0.0.0/udp/9201/quic-v1"}, "default", ""},
		{"dht p2p", LoadOptions{Environ: []string{"RON_DHT_P2P_ADDR=/ip6/::1/udp/0/quic-v1"}}, "services.dht.p2p_listen", []string{"/ip6/::1/udp/0/quic-v1"}, "env RON_DHT_P2P_ADDR", ""},
		{"reprovide", LoadOptions{Environ: []string{"RON_DHT_REPROVIDE_INTERVAL=1h"}}, "dht.reprovide_interval", Duration(time.Hour), "env RON_DHT_REPROVIDE_INTERVAL", ""},
		{"RON_DATA_DIR beats STATE_DIRECTORY", LoadOptions{Environ: []string{"STATE_DIRECTORY=/a", "RON_DATA_DIR=/b"}}, "data_dir", "/b", "env RON_DATA_DIR", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, warns, err := Load(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			v, err := cfg.field(tc.field)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.Interface(); !reflect.DeepEqual(got, tc.wantValue) {
				t.Errorf("%s = %v, want %v", tc.field, got, tc.wantValue)
			}
			if got := cfg.Source(tc.field); got != tc.wantSource {
				t.Errorf("source = %q, want %q", got, tc.wantSource)
			}
			if tc.wantWarn == "" && len(warns) > 0 {
				t.Errorf("unexpected warnings %v", warns)
			}
			if tc.wantWarn != "" && (len(warns) != 1 || warns[0] != tc.wantWarn) {
				t.Errorf("warnings = %v, want %q", warns, tc.wantWarn)
			}
		})
	}
}

func TestServicesEnv(t *testing.T) {
	tests := []struct {
		value string
		want  []string
	}{
		{"gateway,storage", []string{"storage", "gateway"}},
		{" dht , overlay ", []string{"overlay", "dht"}},
		{"none", nil},
		{"", nil},
	}
	for _, tc := range tests {
		cfg, _, err := loadAndValidate(LoadOptions{Environ: []string{"RON_SERVICES=" + tc.value}})
		if err != nil {
			t.Fatalf("%q: %v", tc.value, err)
		}
		if got := cfg.Enabled(); !reflect.DeepEqual(got, tc.want) && (len(got) != 0 || len(tc.want) != 0) {
			t.Errorf("RON_SERVICES=%q: enabled %v, want %v", tc.value, got, tc.want)
		}
		if got := cfg.Source("services.dht.enabled"); got != "env RON_SERVICES" {
			t.Errorf("source = %q", got)
		}
	}
	_, _, err := Load(LoadOptions{Environ: []string{"RON_SERVICES=storage,blobs"}})
	if err == nil || !strings.Contains(err.Error(), `env RON_SERVICES: services: unknown service "blobs"`) {
		t.Errorf("err = %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		opts LoadOptions
		want string
	}{
		{"env duration", LoadOptions{Environ: []string{"RON_READ_TIMEOUT=abc"}}, `env RON_READ_TIMEOUT: read_timeout: invalid duration "abc"`},
		{"env size", LoadOptions{Environ: []string{"RON_MAX_BODY_BYTES=lots"}}, `env RON_MAX_BODY_BYTES: max_body_bytes: invalid size "lots"`},
		{"env bool", LoadOptions{Environ: []string{"MACRO_AMNESIA=maybe"}}, `env MACRO_AMNESIA: amnesia: invalid boolean "maybe"`},
		{"env int", LoadOptions{Environ: []string{"RON_DECOMPRESS_RATIO_CAP=x"}}, `env RON_DECOMPRESS_RATIO_CAP: decompress_ratio_cap: invalid integer "x"`},
		{"flag duration", LoadOptions{Flags: []Override{{"shutdown_timeout", "soon", "flag --graceful-timeout"}}}, `flag --graceful-timeout: shutdown_timeout: invalid duration "soon"`},
		{"flag unknown field", LoadOptions{Flags: []Override{{"nope", "1", "flag --nope"}}}, `flag --nope: unknown field "nope"`},
		{"missing file", LoadOptions{File: "testdata/absent.yaml"}, "config file testdata/absent.yaml (from --config): open testdata/absent.yaml: no such file or directory"},
		{"missing file from env", LoadOptions{Environ: []string{"RON_CONFIG=/x.yaml"}}, "config file /x.yaml (from RON_CONFIG): open /x.yaml: no such file or directory"},
		{"missing file from MACRO", LoadOptions{Environ: []string{"MACRO_CONFIG=/x.yaml"}}, "config file /x.yaml (from MACRO_CONFIG): open /x.yaml"},
		{"bad extension", LoadOptions{File: "testdata/x.toml"}, `config file testdata/x.toml (from --config): unsupported extension ".toml"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string // "" means valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"port zero", func(c *Config) { c.HTTPAddr = "127.0.0.1:0" }, "http_addr (default): \"127.0.0.1:0\": port out of range"},
		{"named port", func(c *Config) { c.MetricsAddr = "127.0.0.1:http" }, `port "http" is not a number`},
		{"trailing colon", func(c *Config) { c.Services["dht"].Listen = "127.0.0.1:" }, "services.dht.listen (default): \"127.0.0.1:\" is an address without a port"},
		{"empty metrics ok", func(c *Config) { c.MetricsAddr = "" }, ""},
		{"metrics clashes", func(c *Config) { c.MetricsAddr = "0.0.0.0:8080" }, "metrics_addr (default): 0.0.0.0:8080 is already used by http_addr"},
		{"disabled may share", func(c *Config) {
			c.Services["dht"].Enabled = false
			c.Services["dht"].Listen = c.Services["overlay"].Listen
		}, ""},
		{"zero timeout", func(c *Config) { c.IdleTimeout = 0 }, "idle_timeout (default): must be greater than 0"},
		{"zero size", func(c *Config) { c.OAPMaxFrameBytes = 0 }, "oap_max_frame_bytes (default): must be greater than 0"},
		{"pq", func(c *Config) { c.PQMode = "pure" }, `pq_mode (default): "pure" is not one of off, hybrid`},
		{"format", func(c *Config) { c.LogFormat = "xml" }, `log_format (default): "xml" is not one of auto, json, text`},
		{"key only", func(c *Config) { c.AdminTLS.Key = "/k" }, "admin_tls.key (default): a TLS key is set without admin_tls.cert"},
		{"self dep", func(c *Config) { c.Services["index"].DependsOn = []string{"index"} }, "index cannot depend on itself"},
		{"long run dir", func(c *Config) { c.RunDir = "/" + strings.Repeat("r", 100) }, "run_dir (default): control socket path"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data_dir (default): must not be empty"},
		{"amnesia no data dir", func(c *Config) { c.DataDir = ""; c.Amnesia = true }, ""},
		{"blank token", func(c *Config) { c.AdminToken = " \t" }, "admin_token (default): is blank"},
		{"padded token", func(c *Config) { c.AdminToken = "abc " }, "admin_token (default): has leading or trailing whitespace"},
		{"allowed host with path", func(c *Config) { c.AdminAllowedHosts = []string{"ok.example", "http://x"} }, `admin_allowed_hosts (default): entry 2: "http://x" is not a host name`},
		{"allowed host port", func(c *Config) { c.AdminAllowedHosts = []string{"x:99999"} }, `port "99999"`},
		{"allowed hosts ok", func(c *Config) { c.AdminAllowedHosts = []string{"x", "x:80", "[::1]:80"} }, ""},
		{"zero io idle", func(c *Config) { c.IOIdleTimeout = 0 }, "io_idle_timeout (default): must be greater than 0"},
		{"zero fetch", func(c *Config) { c.FetchTimeout = 0 }, "fetch_timeout (default): must be greater than 0"},
		{"zero reprovide", func(c *Config) { c.DHT.ReprovideInterval = 0 }, "dht.reprovide_interval (default): must be greater than 0"},
		{"rate off", func(c *Config) { c.GatewayRate, c.GatewayBurst = 0, 0 }, ""},
		{"negative rate", func(c *Config) { c.GatewayRate = -1 }, "gateway_rate (default): must be 0 (off)"},
		{"rate without burst", func(c *Config) { c.GatewayBurst = 0 }, "gateway_burst (default): must be at least 1 while gateway_rate is 1000"},
		{"negative burst", func(c *Config) { c.GatewayBurst = -1 }, "gateway_burst (default): must not be negative"},
		{"zero conns", func(c *Config) { c.GatewayMaxConns = 0 }, "gateway_max_conns (default): must be at least 1"},
		{"bad proxy", func(c *Config) { c.GatewayTrustedProxies = []string{"10.0.0.0/33"} }, `gateway_trusted_proxies (default): entry 1: "10.0.0.0/33" is neither`},
		{"bootstrap without id", func(c *Config) { c.Network.Bootstrap = []string{"/ip4/1.2.3.4/tcp/9101"} }, `network.bootstrap (default): entry 1: "/ip4/1.2.3.4/tcp/9101" does not end in /p2p/<node id>`},
		{"bootstrap not multiaddr", func(c *Config) { c.Network.Bootstrap = []string{"1.2.3.4:9101"} }, "is not a multiaddr"},
		{"announce bad ip", func(c *Config) { c.Network.Announce = []string{"/ip4/::1/tcp/1"} }, `network.announce (default): entry 1: "/ip4/::1/tcp/1": "::1" is not an IPv4 address`},
		{"p2p empty", func(c *Config) { c.Services["overlay"].P2PListen = nil }, "services.overlay.p2p_listen (default): must list at least one multiaddr"},
		{"p2p empty disabled", func(c *Config) { c.Services["overlay"].P2PListen = nil; c.Services["overlay"].Enabled = false }, ""},
		{"p2p on storage", func(c *Config) { c.Services["storage"].P2PListen = []string{"/ip4/127.0.0.1/tcp/1"} }, "services.storage.p2p_listen (default): only overlay and dht"},
		{"p2p bad port", func(c *Config) { c.Services["dht"].P2PListen = []string{"/ip4/0.0.0.0/udp/x/quic-v1"} }, `port "x" is not a number`},
		{"zero heartbeat", func(c *Config) { c.Services["gateway"].HeartbeatTimeout = 0 }, "services.gateway.heartbeat_timeout (default): must be greater than 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := defaultsFrom(nil)
			tc.mutate(c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want *ValidationError, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestResolveReportsEveryProblem: a value that does not parse does not hide
// the ones that do not validate; the *ValidationError stays findable.
func TestResolveReportsEveryProblem(t *testing.T) {
	_, _, err := Resolve(LoadOptions{File: filepath.Join("testdata", "several.bad.yaml")})
	if err == nil {
		t.Fatal("want an error")
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 3 {
		t.Errorf("want 3 problems, got %d:\n%s", len(lines), err)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errs) != 2 {
		t.Errorf("want a *ValidationError with 2 entries in %v", err)
	}
}

// TestExposedAdminRefused: a non-loopback admin with no credential is a
// config error unless MACRONODE_DEV_INSECURE=1, which warns instead.
func TestExposedAdminRefused(t *testing.T) {
	const exposed = "RON_HTTP_ADDR=0.0.0.0:8080"
	tests := []struct {
		name     string
		environ  []string
		wantErr  string
		wantWarn string
	}{
		{"loopback", nil, "", ""},
		{"exposed", []string{exposed}, "http_addr (env RON_HTTP_ADDR): 0.0.0.0:8080 is not a loopback address and neither admin_token nor admin_tls.client_ca is set", ""},
		{"every interface", []string{"RON_HTTP_ADDR=:8080"}, "http_addr (env RON_HTTP_ADDR): :8080 is not a loopback", ""},
		{"token", []string{exposed, "RON_ADMIN_TOKEN=t"}, "", ""},
		{"client CA", []string{exposed, "RON_ADMIN_TLS_CERT=/c", "RON_ADMIN_TLS_KEY=/k", "RON_ADMIN_TLS_CLIENT_CA=/ca"}, "", ""},
		{"dev insecure", []string{exposed, "MACRONODE_DEV_INSECURE=1"}, "", "INSECURE: MACRONODE_DEV_INSECURE=1: the admin plane on 0.0.0.0:8080 has neither"},
		{"dev insecure not 1", []string{exposed, "MACRONODE_DEV_INSECURE=yes"}, "is not a loopback address", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, warns, err := Resolve(LoadOptions{Environ: tc.environ})
			if tc.wantErr == "" && err != nil {
				t.Fatalf("want ok, got %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if got := strings.Join(warns, "\n"); !strings.Contains(got, tc.wantWarn) || (tc.wantWarn == "" && got != "") {
				t.Errorf("warnings %q, want %q", got, tc.wantWarn)
			}
		})
	}
}

func TestCheckMultiaddr(t *testing.T) {
	tests := []struct {
		addr, want string // want "" means valid
	}{
		{"/ip4/127.0.0.1/tcp/9101", ""},
		{"/ip4/0.0.0.0/udp/9101/quic-v1", ""},
		{"/ip6/::/tcp/0", ""},
		{"/dns4/seed.example/tcp/9101/p2p/12D3KooW", ""},
		{"/dnsaddr/bootstrap.example", ""},
		{"", "is not a multiaddr"},
		{"ip4/1.2.3.4", "is not a multiaddr"},
		{"/ip4", "/ip4 needs a value"},
		{"/ip4/", "/ip4 needs a value"},
		{"/tcp/1", "must start with /ip4"},
		{"/ip4/1.2.3/tcp/1", "is not an IPv4 address"},
		{"/ip6/1.2.3.4/tcp/1", "is not an IPv6 address"},
		{"/ip4/1.2.3.4/tcp", "/tcp needs a port"},
		{"/ip4/1.2.3.4/tcp/70000", "not a number in 0-65535"},
		{"/ip4/1.2.3.4/tcp/1/", "empty component"},
		{"/ip4/1.2.3.4/tcp/1/p2p", "/p2p needs a node id"},
	}
	for _, tc := range tests {
		err := CheckMultiaddr(tc.addr)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: want valid, got %v", tc.addr, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: err = %v, want %q", tc.addr, err, tc.want)
		}
	}
}

func TestAdminTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "  s3cret\n")
	blank := write("blank", " \n\t\n")
	big := write("big", strings.Repeat("x", maxTokenFileBytes+1))
	credDir, goodCreds, blankCreds := filepath.Join(dir, "creds"), filepath.Join(dir, "good-creds"), filepath.Join(dir, "blank-creds")
	for _, d := range []string{credDir, goodCreds, blankCreds} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write("good-creds/"+CredentialName, "cred-s3cret \r\n\n")
	blankCred := write("blank-creds/"+CredentialName, "\n")
	tests := []struct {
		name, wantToken, wantErr string
		environ                  []string
	}{
		{"trimmed", "s3cret", "", []string{"RON_ADMIN_TOKEN_FILE=" + good}},
		{"blank", "", "admin_token_file (env RON_ADMIN_TOKEN_FILE): " + blank + " is blank", []string{"RON_ADMIN_TOKEN_FILE=" + blank}},
		{"missing", "", "admin_token_file (env MACRO_ADMIN_TOKEN_FILE): open " + dir + "/absent", []string{"MACRO_ADMIN_TOKEN_FILE=" + dir + "/absent"}},
		{"too big", "", "is larger than", []string{"RON_ADMIN_TOKEN_FILE=" + big}},
		{"both", "", "set only one of admin_token_file and admin_token (set by env RON_ADMIN_TOKEN)", []string{"RON_ADMIN_TOKEN_FILE=" + good, "RON_ADMIN_TOKEN=x"}},
		{"no credential file", "", "", []string{"CREDENTIALS_DIRECTORY=" + credDir}},
		{"credential trimmed", "cred-s3cret", "", []string{"CREDENTIALS_DIRECTORY=" + goodCreds}},
		{"blank credential", "", "admin_token_file (env CREDENTIALS_DIRECTORY): " + blankCred + " is blank", []string{"CREDENTIALS_DIRECTORY=" + blankCreds}},
		{"token beats credential", "x", "", []string{"CREDENTIALS_DIRECTORY=" + goodCreds, "RON_ADMIN_TOKEN=x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Load(LoadOptions{Environ: tc.environ})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.AdminToken != tc.wantToken {
				t.Errorf("token = %q, want %q", cfg.AdminToken, tc.wantToken)
			}
		})
	}
}

func TestEnabledOrder(t *testing.T) {
	c := defaultsFrom(nil)
	if got, want := c.Enabled(), []string{"storage", "index", "mailbox", "overlay", "dht", "gateway"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Enabled = %v, want %v", got, want)
	}
	c.Services["storage"].DependsOn = []string{"dht"}
	if got, want := c.Enabled(), []string{"index", "mailbox", "overlay", "dht", "storage", "gateway"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Enabled = %v, want %v", got, want)
	}
	c.Services["overlay"].DependsOn = []string{"storage"} // a cycle: still every plane once
	if got := c.Enabled(); len(got) != 6 {
		t.Errorf("Enabled with a cycle = %v", got)
	}
}

func TestUnits(t *testing.T) {
	sizes := map[string]int64{"1048576": 1 << 20, "64KiB": 64 << 10, "1MiB": 1 << 20, "1GiB": 1 << 30, "1KB": 1000, "1MB": 1e6, "2 mib": 2 << 20, "7B": 7}
	for in, want := range sizes {
		got, err := ParseSize(in)
		if err != nil || int64(got) != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "-1KiB", "+1", "1.5MiB", "lots", "KiB", "99999999999999999999", "9000000000GiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): want error", in)
		}
	}
	for in, want := range map[string]time.Duration{"500ms": 500 * time.Millisecond, "10s": 10 * time.Second, "1m": time.Minute, "0": 0} {
		got, err := ParseDuration(in)
		if err != nil || got.D() != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "10", "abc", "5 parsecs"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q): want error", in)
		}
	}
	for d, want := range map[Duration]string{Duration(time.Minute): "1m", Duration(90 * time.Minute): "1h30m", Duration(time.Hour): "1h", Duration(1500 * time.Millisecond): "1.5s"} {
		if d.String() != want {
			t.Errorf("%d.String() = %q, want %q", d, d.String(), want)
		}
	}
	for s, want := range map[Size]string{1 << 20: "1MiB", 64 << 10: "64KiB", 1000: "1000", 0: "0"} {
		if s.String() != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), s.String(), want)
		}
	}
}
