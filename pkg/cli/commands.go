package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/macronode/macronode/pkg/buildinfo"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/logging"
	"github.com/macronode/macronode/pkg/node"
)

func runCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "run",
		Usage:     "run the node: supervise the planes and serve the admin API",
		UsageText: "macronode run " + runUsage,
		Description: "Loads the configuration (defaults < file < RON_* environment < flags), validates it,\n" +
			"starts every enabled plane as its own process in dependency order and serves the\n" +
			"admin API on http_addr. SIGTERM or SIGINT drain and stop; SIGHUP re-reads the\n" +
			"configuration with the same file and flags and the current environment.\n\n" +
			"Examples:\n" +
			"   macronode run --config /etc/macronode/macronode.yaml\n" +
			"   RON_SERVICES=storage,gateway macronode run --http-addr 127.0.0.1:8080 --amnesia",
		Flags: runFlags(),
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErr("run takes no arguments, got %q", c.Args().Slice())
			}
			file, flags := c.String("config"), overrides(c, runFlagFields)
			cfg, err := loadConfig(c, env, file, flags)
			if err != nil {
				return err
			}
			logger, logOut, err := logging.NewParent(cfg.LogLevel, cfg.LogFormat, env.Stderr, env.environ())
			if err != nil {
				return configErr(fmt.Errorf("logger: %w", err))
			}
			defer func() { _ = logOut.Close() }()
			reload := func() (*config.Config, error) {
				next, warns, err := config.Resolve(config.LoadOptions{File: file, Environ: env.environ(), Flags: flags})
				for _, w := range warns {
					logger.Warn(w)
				}
				return next, err
			}
			runNode := env.runNode
			if runNode == nil {
				runNode = node.Run
			}
			err = runNode(c.Context, node.Options{Config: cfg, Reload: reload, Logger: logger, LogOutput: logOut})
			if err != nil {
				logger.Error("node stopped", "error", err)
				return silent(ExitFailure)
			}
			return nil
		},
	}
}

func versionCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:        "version",
		Usage:       "print the version, git sha, build time and Go version",
		UsageText:   "macronode version [--json]",
		Description: "Example:\n   macronode version --json   # the same JSON as GET /version",
		Flags:       []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print the /version JSON document"}},
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErr("version takes no arguments")
			}
			return printVersion(env, c.Bool("json"))
		},
	}
}

// printVersion is `macronode version` (and --version, -v).
func printVersion(env Env, asJSON bool) error {
	info := buildinfo.Get("macronode")
	if asJSON {
		if err := json.NewEncoder(env.Stdout).Encode(info); err != nil {
			return failure(fmt.Errorf("version: %w", err))
		}
		return nil
	}
	fmt.Fprintf(env.Stdout, "macronode %s\ngit sha:  %s\nbuilt:    %s\ngo:       %s\n", info.Version, info.GitSHA, info.BuildTS, info.Go)
	return nil
}

func checkCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "check",
		Usage:     "load and validate the configuration; bind nothing",
		UsageText: "macronode check " + runUsage,
		Description: "Runs every layer (defaults, file, RON_* environment, the same flags as `run`)\n" +
			"and every validation rule `macronode run` would, then stops. Each error names\n" +
			"the field and who set it. Exit 0 with \"config ok\", or 2 with the errors.\n\n" +
			"Example:\n   RON_CONFIG=/etc/macronode/macronode.yaml macronode check --http-addr 0.0.0.0:8080",
		Flags: runFlags(),
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErr("check takes no arguments, got %q (a file goes after --config)", c.Args().Slice())
			}
			if _, err := loadConfig(c, env, c.String("config"), overrides(c, runFlagFields)); err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, "config ok")
			return nil
		},
	}
}

func configCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "config",
		Usage:     "inspect the configuration",
		UsageText: "macronode config print [--config PATH] [RUN FLAGS] | macronode config validate [PATH]",
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return unknownCommand("macronode config", c.Args().First(), c.Command.Subcommands)
			}
			_ = ucli.ShowSubcommandHelp(c)
			return silent(ExitUsage)
		},
		Subcommands: []*ucli.Command{
			{
				Name:      "print",
				Usage:     "print the effective configuration with the source of each value",
				UsageText: "macronode config print " + runUsage,
				Description: "One line per field: `field = value  # source`, where source is default,\n" +
					"file <path>, env <VAR> or flag --<name>; takes the same flags as `run`. The admin\n" +
					"token is shown as (set) and service env values as KEY=(set), never their values.\n" +
					"An invalid configuration is printed, then its errors reported with exit 2.\n\n" +
					"Example:\n   RON_LOG=debug macronode config print --log-format text | grep log_\n" +
					"   log_level = \"debug\"  # env RON_LOG\n" +
					"   log_format = \"text\"  # flag --log-format",
				Flags: runFlags(),
				Action: func(c *ucli.Context) error {
					if c.Args().Present() {
						return usageErr("config print takes no arguments, got %q (a file goes after --config)", c.Args().Slice())
					}
					cfg, warns, err := config.Load(config.LoadOptions{File: c.String("config"), Environ: env.environ(), Flags: overrides(c, runFlagFields)})
					for _, w := range warns {
						fmt.Fprintf(env.Stderr, "warning: %s\n", w)
					}
					if err != nil {
						return loadErr(err)
					}
					if err := cfg.Print(env.Stdout); err != nil {
						return failure(err)
					}
					if err := cfg.Validate(); err != nil {
						return invalidErr(err)
					}
					return nil
				},
			},
			{
				Name:      "validate",
				Usage:     "validate a config file, or the layered configuration",
				UsageText: "macronode config validate [PATH]",
				Description: "With PATH, checks that file on top of the defaults alone (the environment is\n" +
					"ignored, so the file is judged by itself). Without PATH, behaves like `check`.\n\n" +
					"Example:\n   macronode config validate deploy/macronode.example.yaml",
				Flags: []ucli.Flag{configFlag()},
				Action: func(c *ucli.Context) error {
					if c.NArg() > 1 {
						return usageErr("config validate takes at most one PATH, got %d", c.NArg())
					}
					if c.NArg() == 0 {
						if _, err := loadConfig(c, env, c.String("config"), nil); err != nil {
							return err
						}
						fmt.Fprintln(env.Stdout, "config ok")
						return nil
					}
					path := c.Args().First()
					if _, _, err := config.Resolve(config.LoadOptions{File: path, FileFrom: "the PATH argument"}); err != nil {
						return resolveErr(err)
					}
					fmt.Fprintf(env.Stdout, "%s: ok\n", path)
					return nil
				},
			},
		},
	}
}

// indentErr indents each line of a (possibly multi-line) error by two spaces.
func indentErr(err error) error {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return &indented{msg: strings.Join(lines, "\n"), err: err}
}

type indented struct {
	msg string
	err error
}

func (e *indented) Error() string { return e.msg }
func (e *indented) Unwrap() error { return e.err }
