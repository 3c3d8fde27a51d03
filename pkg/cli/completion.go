package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/macronode/macronode/pkg/config"
)

// The shells `macronode completion` writes a script for.
var completionShells = []string{"bash", "zsh", "fish"}

func completionCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		UsageText: "macronode completion bash|zsh|fish",
		Description: "The script completes commands, subcommands, each command's flags, file\n" +
			"paths after --config, and the service names (the six planes, and `all` for\n" +
			"restart, stop and start). It is made from this binary's own command table.\n\n" +
			"Examples:\n" +
			"   source <(macronode completion bash)\n" +
			"   macronode completion bash > /etc/bash_completion.d/macronode\n" +
			"   macronode completion zsh > \"${fpath[1]}/_macronode\"\n" +
			"   macronode completion fish > ~/.config/fish/completions/macronode.fish",
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return usageErr("completion needs one SHELL (one of %s)", strings.Join(completionShells, ", "))
			}
			shell := c.Args().First()
			tree := completionTree(c.App)
			var err error
			switch shell {
			case "bash":
				err = writeBash(env.Stdout, tree)
			case "zsh":
				err = writeZsh(env.Stdout, tree)
			case "fish":
				err = writeFish(env.Stdout, tree)
			default:
				return usageErr("unknown shell %q%s", shell, didYouMean(shell, "shell", completionShells))
			}
			if err != nil {
				return failure(fmt.Errorf("completion: %w", err))
			}
			return nil
		},
	}
}

// compNode is one command as completion sees it.
type compNode struct {
	path  string   // "" for the program, "config print" for a subcommand
	name  string   // the last word of path
	usage string   // one line, for fish's descriptions
	flags []string // "--name" and "-n" forms
	vals  []string // those of flags that take a value
	words []string // what may come as the next positional word: subcommands or arguments
	subs  bool     // words are subcommands
}

// completionTree flattens app's commands (visible ones) into nodes, the
// program first.
func completionTree(app *ucli.App) []compNode {
	root := compNode{flags: flagNames(app.Flags, false), vals: flagNames(app.Flags, true), subs: true}
	var out []compNode
	var walk func(prefix string, cmds []*ucli.Command)
	walk = func(prefix string, cmds []*ucli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			n := compNode{path: strings.TrimSpace(prefix + " " + c.Name), name: c.Name, usage: c.Usage, flags: flagNames(c.Flags, false), vals: flagNames(c.Flags, true)}
			for _, s := range c.Subcommands {
				if !s.Hidden {
					n.words = append(n.words, s.Name)
				}
			}
			n.subs = len(n.words) > 0
			if !n.subs {
				n.words = argWords(n.path, cmds)
			}
			if prefix == "" {
				root.words = append(root.words, c.Name)
			}
			out = append(out, n)
			walk(n.path, c.Subcommands)
		}
	}
	walk("", app.Commands)
	return append([]compNode{root}, out...)
}

// argWords is what a command takes as arguments, for completion.
func argWords(path string, siblings []*ucli.Command) []string {
	switch path {
	case "restart", "stop", "start":
		return append(slices.Clone(config.Planes), "all")
	case "logs", "crashes", "chaos":
		return slices.Clone(config.Planes)
	case "completion":
		return slices.Clone(completionShells)
	case "help":
		var names []string
		for _, c := range siblings {
			if !c.Hidden {
				names = append(names, c.Name)
			}
		}
		return names
	}
	return nil
}

// flagNames lists the flags' names as typed; valued: only those that take
// a value.
func flagNames(flags []ucli.Flag, valued bool) []string {
	var out []string
	for _, f := range flags {
		if dg, ok := f.(ucli.DocGenerationFlag); valued && (!ok || !dg.TakesValue()) {
			continue
		}
		for _, n := range f.Names() {
			if len(n) == 1 {
				out = append(out, "-"+n)
			} else {
				out = append(out, "--"+n)
			}
		}
	}
	return out
}

// valueFlags is every flag of any command that takes a value, as a shell
// case pattern ("--config|-c|...").
func valueFlags(tree []compNode) string {
	var all []string
	for _, n := range tree {
		for _, v := range n.vals {
			if !slices.Contains(all, v) {
				all = append(all, v)
			}
		}
	}
	return strings.Join(all, "|")
}

// withSubs lists the paths whose next word is a subcommand.
func withSubs(tree []compNode) []string {
	var out []string
	for _, n := range tree[1:] {
		if n.subs {
			out = append(out, n.path)
		}
	}
	return out
}

// writeWalk writes the loop both bash and zsh scripts start with: it sets
// cmdpath to the command (and subcommand) typed so far, skipping flags and
// their values. words is the shell's array of words, first the index of
// the word after the program name, current the index being completed.
func writeWalk(b *strings.Builder, tree []compNode, words, first, current string) {
	fmt.Fprintf(b, `    local cmdpath="" i w
    for ((i = %s; i < %s; i++)); do
        w="${%s[i]}"
        case "$w" in
            %s) ((i++)); continue ;;
            -*) continue ;;
        esac
        if [[ -z $cmdpath ]]; then
            cmdpath="$w"
        else
            case "$cmdpath" in
`, first, current, words, valueFlags(tree))
	for _, p := range withSubs(tree) {
		fmt.Fprintf(b, "            %q) cmdpath=\"$cmdpath $w\" ;;\n", p)
	}
	b.WriteString(`            *) break ;;
            esac
        fi
    done
`)
}

// candidates is what completes after path n: its words, then its flags.
func candidates(n compNode) string {
	return strings.Join(append(slices.Clone(n.words), n.flags...), " ")
}

func writeBash(w io.Writer, tree []compNode) error {
	var b strings.Builder
	b.WriteString(`# bash completion for macronode (macronode completion bash)
_macronode() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
`)
	writeWalk(&b, tree, "COMP_WORDS", "1", "COMP_CWORD")
	b.WriteString(`    case "$prev" in
        --config|-c|--out)
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
    esac
    local words=""
    case "$cmdpath" in
`)
	for _, n := range tree {
		fmt.Fprintf(&b, "        %q) words=%q ;;\n", n.path, candidates(n))
	}
	b.WriteString(`    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _macronode macronode
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeZsh(w io.Writer, tree []compNode) error {
	var b strings.Builder
	b.WriteString(`#compdef macronode
# zsh completion for macronode (macronode completion zsh)
_macronode() {
    local -a cands
`)
	writeWalk(&b, tree, "words", "2", "CURRENT")
	b.WriteString(`    case "${words[CURRENT-1]}" in
        --config|-c|--out)
            _files
            return ;;
    esac
    case "$cmdpath" in
`)
	for _, n := range tree {
		fmt.Fprintf(&b, "        %q) cands=(%s) ;;\n", n.path, candidates(n))
	}
	b.WriteString(`    esac
    compadd -- "${cands[@]}"
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _macronode "$@"
else
    compdef _macronode macronode
fi
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeFish(w io.Writer, tree []compNode) error {
	var b strings.Builder
	b.WriteString("# fish completion for macronode (macronode completion fish)\ncomplete -c macronode -f\n")
	top := tree[0]
	for _, f := range top.flags {
		fmt.Fprintf(&b, "complete -c macronode -n __fish_use_subcommand %s\n", fishFlag(f))
	}
	for _, n := range tree[1:] {
		parent, _, nested := strings.Cut(n.path, " ")
		cond := "__fish_use_subcommand"
		if nested {
			cond = fmt.Sprintf("__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s", parent, strings.Join(siblingNames(tree, parent), " "))
		}
		fmt.Fprintf(&b, "complete -c macronode -n %s -a %s -d %s\n", fishQuote(cond), n.name, fishQuote(n.usage))
		seen := fmt.Sprintf("__fish_seen_subcommand_from %s", n.name)
		if nested {
			seen = fmt.Sprintf("__fish_seen_subcommand_from %s; and __fish_seen_subcommand_from %s", parent, n.name)
		}
		for _, f := range n.flags {
			fmt.Fprintf(&b, "complete -c macronode -n %s %s\n", fishQuote(seen), fishFlag(f))
		}
		if !n.subs && len(n.words) > 0 {
			fmt.Fprintf(&b, "complete -c macronode -n %s -a %s\n", fishQuote(seen), fishQuote(strings.Join(n.words, " ")))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// siblingNames are the subcommands of parent.
func siblingNames(tree []compNode, parent string) []string {
	for _, n := range tree {
		if n.path == parent {
			return n.words
		}
	}
	return nil
}

// fishFlag is the complete(1) option for a flag: -l name or -s n; the
// file-taking ones also complete paths.
func fishFlag(f string) string {
	opt := "-l " + strings.TrimPrefix(f, "--")
	if !strings.HasPrefix(f, "--") {
		opt = "-s " + strings.TrimPrefix(f, "-")
	}
	switch f {
	case "--config", "-c", "--out":
		opt += " -r -F"
	}
	return opt
}

// fishQuote single-quotes s for fish.
func fishQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}
