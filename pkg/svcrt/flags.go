package svcrt

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/buildinfo"
	"github.com/macronode/macronode/pkg/control"
	"github.com/macronode/macronode/pkg/logging"
)

// EnvAmnesia turns on --amnesia by default when set to 1/true.
const EnvAmnesia = "RON_AMNESIA"

// DefaultShutdownTimeout is the default drain grace (--shutdown-timeout).
const DefaultShutdownTimeout = 10 * time.Second

// options are the parsed common flags.
type options struct {
	listen          string
	dataDir         string
	logLevel        hclog.Level
	logFormat       string
	amnesia         bool
	shutdownTimeout time.Duration
	version         bool
	tlsCert         string
	tlsKey          string
	pqMode          string
}

// commonFlags lists the runtime's own flags in the order help shows them.
var commonFlags = []string{"listen", "data-dir", "log-level", "log-format", "amnesia", "shutdown-timeout", "tls-cert", "tls-key", "pq-mode", "version"}

// parseFlags parses args into options. Help is printed on -h/--help and
// reported as flag.ErrHelp; bad input is a *UsageError.
func parseFlags(p Plane, args []string, stderr io.Writer, getenv func(string) string) (options, error) {
	return parseFlagsTo(p, args, stderr, stderr, getenv)
}

// parseFlagsTo is parseFlags with help printed to help, errors to stderr.
func parseFlagsTo(p Plane, args []string, help, stderr io.Writer, getenv func(string) string) (options, error) {
	var o options
	bin := "svc-" + p.Name

	amnesiaDefault := false
	if v := getenv(EnvAmnesia); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, usageErr(stderr, bin, fmt.Errorf("invalid %s=%q: want 1/true or 0/false: %w", EnvAmnesia, v, err))
		}
		amnesiaDefault = b
	}

	fs := flag.NewFlagSet(bin, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // help and errors are printed below, once
	fs.Usage = func() {}
	var level string
	fs.StringVar(&o.listen, "listen", p.DefaultAddr,
		"`address` to serve HTTP on (host:port; port 0 picks a free port, reported in the logs and to the parent)")
	fs.StringVar(&o.dataDir, "data-dir", "./"+filepath.Join("data", p.Name),
		"`directory` for the plane's durable state (created if missing)")
	fs.StringVar(&level, "log-level", "info", "log `level`: trace, debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "auto",
		"log `format`: json, text, or auto (text on a terminal, json otherwise: under a parent, whose pipe is no terminal)")
	fs.BoolVar(&o.amnesia, "amnesia", amnesiaDefault,
		"keep everything in RAM and write nothing under --data-dir (also "+EnvAmnesia+"=1)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout,
		"`grace` from SIGTERM or a parent shutdown to exit: in-flight requests get most of it, the rest (up to 3s) is kept for closing the stores")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate `file`: serve HTTPS instead of HTTP (with --tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.StringVar(&o.pqMode, "pq-mode", "hybrid",
		"TLS key exchange: hybrid (prefer post-quantum X25519MLKEM768, then X25519) or off (classical only)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	if p.Flags != nil {
		p.Flags(fs)
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(help, p, fs)
			return o, fmt.Errorf("%s: %w", bin, err)
		}
		return o, usageErr(stderr, bin, err)
	}
	if fs.NArg() > 0 {
		return o, usageErr(stderr, bin, fmt.Errorf("unexpected argument %q (this command takes flags only)", fs.Arg(0)))
	}
	o.logLevel = hclog.LevelFromString(level)
	if o.logLevel == hclog.NoLevel || strings.EqualFold(level, "off") {
		return o, usageErr(stderr, bin, fmt.Errorf("invalid --log-level %q: want trace, debug, info, warn or error", level))
	}
	switch o.logFormat {
	case "json", "text", "auto":
	default:
		return o, usageErr(stderr, bin, fmt.Errorf("invalid --log-format %q: want auto, json or text", o.logFormat))
	}
	if o.listen == "" {
		return o, usageErr(stderr, bin, errors.New("--listen must not be empty"))
	}
	if o.dataDir == "" && !o.amnesia {
		return o, usageErr(stderr, bin, errors.New("--data-dir must not be empty (or use --amnesia)"))
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return o, usageErr(stderr, bin, errors.New("--tls-cert and --tls-key go together"))
	}
	if o.pqMode != "hybrid" && o.pqMode != "off" {
		return o, usageErr(stderr, bin, fmt.Errorf("invalid --pq-mode %q: want hybrid or off", o.pqMode))
	}
	if o.shutdownTimeout <= 0 {
		return o, usageErr(stderr, bin, fmt.Errorf("invalid --shutdown-timeout %s: must be positive", o.shutdownTimeout))
	}
	return o, nil
}

func usageErr(stderr io.Writer, bin string, err error) error {
	fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", bin, err, bin)
	return &UsageError{Err: err}
}

// printUsage writes help that teaches: what the binary is, every flag, an
// example, and how supervised mode is selected.
func printUsage(w io.Writer, p Plane, fs *flag.FlagSet) {
	bin := "svc-" + p.Name
	var b strings.Builder
	summary := p.Summary
	if summary == "" {
		summary = "the " + p.Name + " plane of macronode"
	}
	fmt.Fprintf(&b, "%s - %s\n\n", bin, summary)
	fmt.Fprintf(&b, "Usage:\n  %s [flags]\n\n", bin)
	fmt.Fprintf(&b, "Serves the %s API and the runtime's routes on --listen (see HTTP routes below).\n\n", p.Name)

	common := make(map[string]bool, len(commonFlags))
	b.WriteString("Common flags:\n")
	for _, name := range commonFlags {
		common[name] = true
		if f := fs.Lookup(name); f != nil {
			writeFlag(&b, f)
		}
	}
	var planeFlags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if !common[f.Name] {
			planeFlags = append(planeFlags, f)
		}
	})
	if len(planeFlags) > 0 {
		fmt.Fprintf(&b, "\n%s flags:\n", p.Name)
		for _, f := range planeFlags {
			writeFlag(&b, f)
		}
	}

	writeRoutes(&b, p)
	fmt.Fprintf(&b, "\nExample (standalone, no parent):\n  %s --listen %s --data-dir /tmp/%s\n", bin, p.DefaultAddr, p.Name)
	fmt.Fprintf(&b, "\nModes:\n"+
		"  standalone  the default: serve until SIGTERM/SIGINT, then drain and exit 0.\n"+
		"  supervised  when %s is set (the macronode parent sets it):\n"+
		"              connect to that Unix socket, say hello with %s,\n"+
		"              report ready with the bound address, heartbeat every %s, obey\n"+
		"              shutdown and apply reload {\"log_level\": ...} live. If the\n"+
		"              parent's connection drops, drain and exit 1.\n",
		control.EnvSocket, control.EnvToken, control.HeartbeatInterval)
	fmt.Fprintf(&b, "\nEnvironment:\n"+
		"  %s  control socket path (selects supervised mode)\n"+
		"  %s   per-spawn token sent in hello\n"+
		"  %s         service name announced to the parent (default %q)\n"+
		"  %s               1/true: default for --amnesia\n",
		control.EnvSocket, control.EnvToken, control.EnvService, p.Name, EnvAmnesia)
	fmt.Fprintf(&b, "\nExit codes: %d ok, %d runtime failure, %d bad usage.\n", ExitOK, ExitFailure, ExitUsage)
	_, _ = io.WriteString(w, b.String())
}

// writeFlag formats one flag GNU-style: "  --name type\n      usage (default x)".
func writeFlag(b *strings.Builder, f *flag.Flag) {
	typ, usage := flag.UnquoteUsage(f)
	fmt.Fprintf(b, "  --%s", f.Name)
	if typ != "" {
		fmt.Fprintf(b, " %s", typ)
	}
	fmt.Fprintf(b, "\n      %s", strings.ReplaceAll(usage, "\n", "\n      "))
	if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
		fmt.Fprintf(b, " (default %s)", f.DefValue)
	}
	b.WriteString("\n")
}

func printVersion(w io.Writer, name string) {
	i := buildinfo.Get("svc-" + name)
	fmt.Fprintf(w, "%s %s (git %s, built %s, %s)\n", i.Service, i.Version, i.GitSHA, i.BuildTS, i.Go)
}

// newLogger builds the runtime's root logger on stderr: by default (auto)
// text on a terminal, when run by hand, and JSON otherwise, as under a
// parent, which passes each JSON line on with the service spliced in.
func newLogger(name string, o options, stderr io.Writer) (hclog.Logger, error) {
	log, err := logging.NewNamed("svc-"+name, o.logLevel, o.logFormat, stderr)
	if err != nil {
		return nil, fmt.Errorf("logger: %w", err)
	}
	return log, nil
}
