package config

import (
	"strings"
	"time"
)

// Default listen addresses of the planes (SPEC §3).
var defaultListen = map[string]string{
	"gateway": "127.0.0.1:8090",
	"overlay": "127.0.0.1:9100",
	"dht":     "127.0.0.1:9200",
	"storage": "127.0.0.1:9300",
	"index":   "127.0.0.1:9400",
	"mailbox": "127.0.0.1:9500",
}

// Default libp2p listen addresses of the planes that have one (SPEC §3).
var defaultP2PListen = map[string][]string{
	"overlay": {"/ip4/0.0.0.0/tcp/9101", "/ip4/0.0.0.0/udp/9101/quic-v1"},
	"dht":     {"/ip4/0.0.0.0/tcp/9201", "/ip4/0.0.0.0/udp/9201/quic-v1"},
}

// Default start-order dependencies (SPEC §3).
var defaultDeps = map[string][]string{
	"gateway": {"storage", "index", "mailbox"},
	"dht":     {"overlay"},
}

// DefaultService returns the built-in settings of one plane.
func DefaultService(plane string) *Service {
	return &Service{
		Enabled:   true,
		Listen:    defaultListen[plane],
		P2PListen: append([]string(nil), defaultP2PListen[plane]...),
		Critical:  true,
		DependsOn: append([]string(nil), defaultDeps[plane]...),
		Backoff: Backoff{
			Initial:    Duration(100 * time.Millisecond),
			Max:        Duration(30 * time.Second),
			Multiplier: 2,
		},
		MaxRestarts:      10,
		RestartWindow:    Duration(60 * time.Second),
		FailedRetry:      Duration(5 * time.Minute),
		StableAfter:      Duration(5 * time.Second),
		StartTimeout:     Duration(10 * time.Second),
		HeartbeatTimeout: Duration(3 * time.Second),
	}
}

func defaultsFrom(env map[string]string) *Config {
	c := &Config{
		HTTPAddr:           "127.0.0.1:8080",
		LogLevel:           "info",
		LogFormat:          "auto",
		ReadTimeout:        Duration(10 * time.Second),
		WriteTimeout:       Duration(10 * time.Second),
		IdleTimeout:        Duration(60 * time.Second),
		ShutdownTimeout:    Duration(15 * time.Second),
		DataDir:            "./data",
		MaxBodyBytes:       1 << 20,
		MaxObjectBytes:     1 << 30,
		ChunkBytes:         64 << 10,
		OAPMaxFrameBytes:   1 << 20,
		DecompressRatioCap: 10,
		PQMode:             "hybrid",
		MetricsPublic:      true,
		IOIdleTimeout:      Duration(30 * time.Second),
		FetchTimeout:       Duration(5 * time.Second),
		GatewayRate:        1000,
		GatewayBurst:       2000,
		GatewayMaxConns:    4096,
		DHT:                DHT{ReprovideInterval: Duration(12 * time.Hour)},
		Services:           make(map[string]*Service, len(Planes)),
		Sources:            map[string]string{},
	}
	for _, p := range Planes {
		c.Services[p] = DefaultService(p)
	}
	for _, path := range c.FieldPaths() {
		c.Sources[path] = SourceDefault
	}
	// systemd joins several RuntimeDirectory= entries with ':'; the first is ours.
	if v, _, _ := strings.Cut(env["RUNTIME_DIRECTORY"], ":"); v != "" {
		c.RunDir = v
		c.Sources["run_dir"] = "env RUNTIME_DIRECTORY"
	}
	if v := env["STATE_DIRECTORY"]; v != "" {
		c.DataDir = v
		c.Sources["data_dir"] = "env STATE_DIRECTORY"
	}
	return c
}
