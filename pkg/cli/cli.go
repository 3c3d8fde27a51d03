// Package cli is the `macronode` command line (SPEC §4): `run` starts the
// daemon (pkg/node), `check`, `config print|validate` and `doctor` inspect
// the configuration and the host, `status`, `restart|stop|start` (which
// wait for the outcome), `reload`, `logs` and `peers` are clients of a
// running node's admin API, `id` asks the node or reads its key file,
// `keygen` writes node keys and `completion` prints shell completion.
//
// Every command loads the configuration the same way (defaults, file, RON_*
// environment, flags) so that `--config` and RON_HTTP_ADDR mean the same to
// the daemon and to its clients. Exit codes are ExitOK, ExitFailure and
// ExitUsage, and ExitNotReady for `status`.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/macronode/macronode/pkg/buildinfo"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/node"
)

// Exit codes of the macronode command.
const (
	ExitOK      = 0 // success
	ExitFailure = 1 // runtime failure: the node failed, the API said no, a doctor check failed
	ExitUsage   = 2 // bad usage or bad configuration
	// ExitNotReady is `status` finding a service not running and ready, or
	// the node not ready (systemctl's "not active").
	ExitNotReady = 3
)

// Env is the outside world a command sees. Tests inject their own.
type Env struct {
	Stdout, Stderr io.Writer
	// Environ returns the environment as KEY=VALUE pairs; nil means
	// os.Environ. `run` calls it again on every reload.
	Environ func() []string

	runNode func(context.Context, node.Options) error // the daemon; nil means node.Run
}

func (e Env) environ() []string {
	if e.Environ == nil {
		return os.Environ()
	}
	return e.Environ()
}

// Main runs the command line with the process environment and returns the
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return Run(context.Background(), args, Env{Stdout: stdout, Stderr: stderr})
}

// Run runs the command line args (args[0] is the program name) and returns
// the exit code. Cancelling ctx stops `run` and `logs -f`.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	app := newApp(env)
	err := app.RunContext(ctx, interspersed(app.Commands, args))
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Errors the flag parser and urfave/cli make are usage errors.
		ee = &exitError{code: ExitUsage, err: err}
	}
	if ee.err != nil {
		fmt.Fprintf(env.Stderr, "macronode: %v\n", ee.err)
	}
	return ee.code
}

// exitError carries an exit code; a nil err prints nothing.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return "exit status " + strconv.Itoa(e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

func configErr(err error) error {
	return &exitError{code: ExitUsage, err: err}
}

func failure(err error) error {
	return &exitError{code: ExitFailure, err: err}
}

// silent ends the command with code, its message already printed.
func silent(code int) error { return &exitError{code: code} }

func newApp(env Env) *ucli.App {
	app := &ucli.App{
		Name:    "macronode",
		Usage:   "an operator-grade node host: one parent supervising the service planes",
		Version: buildinfo.Version,
		Description: "macronode runs each service plane (gateway, storage, index, mailbox, overlay, dht)\n" +
			"as its own process, restarts crashed ones with backoff, and serves one admin API.\n\n" +
			"Configuration comes from built-in defaults, then a file (--config or RON_CONFIG),\n" +
			"then RON_* environment variables, then flags. Exit codes: 0 ok, 1 failure,\n" +
			"2 bad usage or bad config, 3 (status) a service is not running and ready.\n\n" +
			"Example:\n   macronode run --config /etc/macronode/macronode.yaml\n   macronode status",
		Flags:           []ucli.Flag{helpFlag(), &ucli.BoolFlag{Name: "version", Aliases: []string{"v"}, Usage: "print the version, as the version command does", DisableDefaultText: true}},
		Writer:          env.Stdout,
		ErrWriter:       env.Stderr,
		HideVersion:     true,
		HideHelp:        true,                          // we bring our own help flag and command (see prepare)
		ExitErrHandler:  func(*ucli.Context, error) {}, // never os.Exit from inside the library
		OnUsageError:    usageErrorFor("macronode"),
		CommandNotFound: func(c *ucli.Context, name string) {},
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return unknownCommand("macronode", c.Args().First(), c.App.Commands)
			}
			if c.Bool("version") {
				return printVersion(env, false)
			}
			_ = ucli.ShowAppHelp(c)
			return silent(ExitUsage)
		},
		Commands: []*ucli.Command{
			runCommand(env),
			versionCommand(env),
			checkCommand(env),
			configCommand(env),
			doctorCommand(env),
			statusCommand(env),
			actionCommand(env, "restart", "restart services, or all, and wait until they are ready (also clears a failed state)"),
			actionCommand(env, "stop", "stop services, or all, and wait until they are stopped; they stay stopped until started"),
			actionCommand(env, "start", "start stopped services, or all, and wait until they are ready"),
			reloadCommand(env),
			logsCommand(env),
			crashesCommand(env),
			eventsCommand(env),
			chaosCommand(env),
			auditCommand(env),
			idCommand(env),
			peersCommand(env),
			keygenCommand(env),
			completionCommand(env),
			helpCommand(),
		},
	}
	prepare("macronode", app.Commands)
	return app
}

// prepare gives every command our usage-error handler and its own help
// flag. urfave/cli's default help flag and help command are package-level
// values that it mutates while parsing; owning ours keeps concurrent Run
// calls (parallel tests) race-free.
// Each handler knows its command's full path, so a usage error points at
// the right help (`macronode config print --help`).
func prepare(path string, cmds []*ucli.Command) {
	for _, c := range cmds {
		full := path + " " + c.Name
		c.OnUsageError = usageErrorFor(full)
		c.HideHelp = true
		c.Flags = append(c.Flags, helpFlag())
		prepare(full, c.Subcommands)
	}
}

func helpFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "help", Aliases: []string{"h"}, Usage: "show help", DisableDefaultText: true}
}

func helpCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "help",
		Aliases:   []string{"h"},
		Usage:     "show the commands, or one command's help",
		UsageText: "macronode help [COMMAND]",
		Action: func(c *ucli.Context) error {
			if !c.Args().Present() {
				return ucli.ShowAppHelp(c)
			}
			name := c.Args().First()
			if c.App.Command(name) == nil {
				return unknownCommand("macronode", name, c.App.Commands)
			}
			return ucli.ShowCommandHelp(c, name)
		},
	}
}

// interspersed moves flags that follow positional arguments in front of
// them, so `macronode logs storage -n 50 -f` parses like
// `macronode logs -n 50 -f storage` (Go's flag package stops at the first
// positional argument).
func interspersed(cmds []*ucli.Command, args []string) []string {
	if len(args) < 2 {
		return args
	}
	i, cmd := 1, findCommand(cmds, args[1])
	for cmd != nil && len(cmd.Subcommands) > 0 && i+1 < len(args) {
		sub := findCommand(cmd.Subcommands, args[i+1])
		if sub == nil {
			break
		}
		i, cmd = i+1, sub
	}
	if cmd == nil || len(cmd.Subcommands) > 0 {
		return args
	}
	var flags, positional []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			positional = append(positional, rest[j:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasValue && takesValue(cmd, name) && j+1 < len(rest) {
			j++
			flags = append(flags, rest[j])
		}
	}
	out := append(append([]string(nil), args[:i+1]...), flags...)
	return append(out, positional...)
}

func findCommand(cmds []*ucli.Command, name string) *ucli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue reports whether the named flag of cmd expects a value.
func takesValue(cmd *ucli.Command, name string) bool {
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if dg, ok := f.(ucli.DocGenerationFlag); ok {
				return dg.TakesValue()
			}
			return true
		}
	}
	return false
}

// usageErrorFor is the flag-parse error handler of the command at path
// ("macronode config print").
func usageErrorFor(path string) ucli.OnUsageErrorFunc {
	return func(_ *ucli.Context, err error, _ bool) error {
		return usageErr("%v (see '%s --help')", err, path)
	}
}

// configFlag is --config on every command that reads the configuration.
func configFlag() ucli.Flag {
	return &ucli.StringFlag{
		Name:    "config",
		Aliases: []string{"c"},
		Usage:   "config file `PATH` (.yaml, .yml or .json); default: $RON_CONFIG",
	}
}

// runFlags are the config overrides of `run`. `check`, `config print` and
// `doctor` take them too, so they judge exactly what `run` would run.
func runFlags() []ucli.Flag {
	return []ucli.Flag{
		configFlag(),
		&ucli.StringFlag{Name: "http-addr", Usage: "admin API listen `ADDR` (host:port); env RON_HTTP_ADDR"},
		&ucli.StringFlag{Name: "metrics-addr", Usage: "separate /metrics listen `ADDR`; empty serves it on the admin API; env RON_METRICS_ADDR"},
		&ucli.StringFlag{Name: "log-level", Usage: "`LEVEL`: trace, debug, info, warn, error (any case); env RON_LOG"},
		&ucli.StringFlag{Name: "log-format", Usage: "`FORMAT`: auto (json unless a terminal), json, text; env RON_LOG_FORMAT"},
		&ucli.StringFlag{Name: "data-dir", Usage: "`DIR` holding each plane's data (DIR/<plane>); env RON_DATA_DIR"},
		&ucli.StringFlag{Name: "graceful-timeout", Usage: "the children's whole stop budget `DURATION`, shared out by dependency tier, e.g. 15s; env RON_GRACEFUL_TIMEOUT"},
		&ucli.BoolFlag{Name: "amnesia", Usage: "keep everything in RAM, write nothing to disk; env RON_AMNESIA"},
		&ucli.StringSliceFlag{Name: "bootstrap", Usage: "peer `MULTIADDR` ending in /p2p/<node id> to join (repeat, or comma-separate); env RON_BOOTSTRAP"},
	}
}

// runUsage is the synopsis of the commands that take runFlags.
const runUsage = "[--config PATH] [--http-addr ADDR] [--metrics-addr ADDR] [--log-level L] [--log-format F]\n" +
	"       [--data-dir D] [--graceful-timeout DURATION] [--amnesia] [--bootstrap MULTIADDR]..."

// flagField maps a flag to the config field it overrides.
type flagField struct{ flag, field string }

var runFlagFields = []flagField{
	{"http-addr", "http_addr"},
	{"metrics-addr", "metrics_addr"},
	{"log-level", "log_level"},
	{"log-format", "log_format"},
	{"data-dir", "data_dir"},
	{"graceful-timeout", "shutdown_timeout"},
	{"amnesia", "amnesia"},
	{"bootstrap", "network.bootstrap"},
}

// overrides turns the flags the user actually set into config overrides.
func overrides(c *ucli.Context, table []flagField) []config.Override {
	var out []config.Override
	for _, ff := range table {
		if !c.IsSet(ff.flag) {
			continue
		}
		value := c.String(ff.flag)
		if list := c.StringSlice(ff.flag); list != nil {
			value = strings.Join(list, ",") // a repeatable flag
		}
		out = append(out, config.Override{Field: ff.field, Value: value, Source: "flag --" + ff.flag})
	}
	return out
}

// loadConfig loads and validates the configuration for a command, printing
// warnings to stderr. Any error is a config error (exit 2) listing every
// problem of every layer.
func loadConfig(c *ucli.Context, env Env, file string, flags []config.Override) (*config.Config, error) {
	cfg, warns, err := config.Resolve(config.LoadOptions{File: file, Environ: env.environ(), Flags: flags})
	for _, w := range warns {
		fmt.Fprintf(env.Stderr, "warning: %s\n", w)
	}
	if err != nil {
		return nil, resolveErr(err)
	}
	return cfg, nil
}

// resolveErr reports a config.Resolve error (exit 2): validation problems
// alone as invalidErr, anything else (with or without them) as loadErr.
func resolveErr(err error) error {
	var ve *config.ValidationError
	if errors.As(err, &ve) && ve == err {
		return invalidErr(err)
	}
	return loadErr(err)
}

// loadErr reports a config.Load error (exit 2). Its messages already say
// where each problem is (config file X, env RON_X, flag --x, x.yaml: line
// N), so one problem is shown as is; several are listed.
func loadErr(err error) error {
	if !strings.Contains(err.Error(), "\n") {
		return configErr(err)
	}
	return configErr(fmt.Errorf("config errors:\n%w", indentErr(err)))
}

// invalidErr reports a Validate error (exit 2), one field per line.
func invalidErr(err error) error {
	return configErr(fmt.Errorf("invalid config:\n%w", indentErr(err)))
}
