// Package cmdline runs a program made of subcommands: it finds the command
// the arguments name, parses its flags and fills the rest from the
// environment and from secret files, explains the commands and their flags,
// and turns what a run returns into an exit status.
package cmdline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/usaged/usaged/internal/termout"
)

// Command is a subcommand: its flags, bound to the variables its Run reads.
type Command struct {
	Name    string // "serve", "org create"
	Args    string // what follows the flags in its synopsis, if anything
	Summary string
	Details string // a paragraph or two shown by help and -h
	Flags   *flag.FlagSet
	Run     func(ctx context.Context) error
}

// NewCommand returns a command of program without a Run, ready for its
// flags.
func NewCommand(program, name, summary, details string) *Command {
	return &Command{Name: name, Summary: summary, Details: details, Flags: flag.NewFlagSet(program+" "+name, flag.ContinueOnError)}
}

// UsageError is a command line that could not be parsed or that asks for
// something the command cannot do as given: the program exits 2.
type UsageError struct {
	Err      error
	reported bool // the flag package already printed it with the usage
}

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// ExitCode reports err of program on stderr and returns the process exit
// status: 0 on success, 2 for a UsageError, 1 otherwise.
func ExitCode(program string, err error, stderr io.Writer) int {
	var ue UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		if !ue.reported {
			fmt.Fprintln(stderr, program+":", err)
		}
		return 2
	default:
		fmt.Fprintln(stderr, program+":", err)
		return 1
	}
}

// Program is one run of a program: its commands, environment and output.
type Program struct {
	Name     string     // "usaged"
	About    string     // the first line of the overview
	More     string     // the overview's closing paragraphs
	Commands []*Command // in the order the overview lists them
	Env      Env
	// LookupEnv reads the environment fallbacks of flags.
	LookupEnv      func(string) (string, bool)
	Stdout, Stderr io.Writer
}

// Run runs the command in args (without the program name) until it
// finishes or ctx ends. help, -h, -help and --help explain the program or
// the command that follows; -version and --version run the version command.
func (p *Program) Run(ctx context.Context, args []string) error {
	p.prepare()
	if len(args) == 0 {
		p.printOverview(p.Stderr)
		return UsageError{Err: errors.New("no command given")}
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return p.help(p.Stdout, args[1:])
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, err := p.Parse(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	return cmd.Run(ctx)
}

// Parse returns the command args name with its flags set from the rest of
// args, the environment and the secret files, without running it.
func (p *Program) Parse(args []string) (*Command, error) {
	p.prepare()
	cmd, rest, err := p.find(args)
	if err != nil {
		p.printOverview(p.Stderr)
		return nil, UsageError{Err: err}
	}
	return cmd, p.parse(cmd, rest)
}

// prepare sends the flag package's diagnostics to Stderr, leaves the
// usage to parse, and names each flag's variables in its help.
func (p *Program) prepare() {
	for _, cmd := range p.Commands {
		cmd.Flags.SetOutput(p.Stderr)
		// parse prints the usage: to stdout when asked for with -h, to
		// stderr after an error.
		cmd.Flags.Usage = func() {}
		p.Env.Document(cmd.Name, cmd.Flags)
	}
}

// find returns the command named by the first one or two arguments and the
// arguments after its name.
func (p *Program) find(args []string) (*Command, []string, error) {
	if len(args) > 1 {
		for _, cmd := range p.Commands {
			if cmd.Name == args[0]+" "+args[1] {
				return cmd, args[2:], nil
			}
		}
	}
	for _, cmd := range p.Commands {
		if cmd.Name == args[0] {
			return cmd, args[1:], nil
		}
	}
	var subs []string
	for _, cmd := range p.Commands {
		if group, sub, ok := strings.Cut(cmd.Name, " "); ok && group == args[0] {
			subs = append(subs, sub)
		}
	}
	if len(subs) > 0 {
		if len(args) > 1 {
			return nil, nil, fmt.Errorf("%s has no subcommand %q: use one of %s", args[0], args[1], strings.Join(subs, ", "))
		}
		return nil, nil, fmt.Errorf("%s needs a subcommand: one of %s", args[0], strings.Join(subs, ", "))
	}
	return nil, nil, fmt.Errorf("unknown command %q; run %s help", args[0], p.Name)
}

// parse parses the command's flags, then fills the rest from the
// environment and the secret files.
func (p *Program) parse(cmd *Command, args []string) error {
	fs := cmd.Flags
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			p.printUsage(p.Stdout, cmd)
			return err
		}
		p.printUsage(p.Stderr, cmd)
		return UsageError{Err: err, reported: true}
	}
	if fs.NArg() > 0 && cmd.Args == "" {
		return UsageError{Err: fmt.Errorf("%s takes no arguments, got %q; flags go before any argument", cmd.Name, fs.Args())}
	}
	if err := p.Env.checkSecretFlags(fs); err != nil {
		return UsageError{Err: err}
	}
	if err := p.Env.Apply(p.Name, cmd.Name, fs, p.LookupEnv); err != nil {
		return UsageError{Err: err}
	}
	if err := p.Env.readSecretFiles(fs); err != nil {
		return UsageError{Err: err}
	}
	return nil
}

// printUsage explains the command and every flag, with its variable.
func (p *Program) printUsage(w io.Writer, cmd *Command) {
	synopsis := p.Name + " " + cmd.Name + " [flags]"
	if cmd.Args != "" {
		synopsis += " " + cmd.Args
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", synopsis, cmd.Summary)
	if cmd.Details != "" {
		fmt.Fprintf(w, "\n%s\n", cmd.Details)
	}
	fmt.Fprintf(w, "\nflags:\n")
	out := cmd.Flags.Output()
	defer cmd.Flags.SetOutput(out)
	cmd.Flags.SetOutput(w)
	cmd.Flags.PrintDefaults()
}

func (p *Program) printOverview(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nusage: %s <command> [flags]\n\ncommands:\n", p.About, p.Name)
	width := len("help [command]")
	for _, cmd := range p.Commands {
		width = max(width, len(cmd.Name))
	}
	for _, cmd := range p.Commands {
		fmt.Fprintf(w, "  %-*s %s\n", width, cmd.Name, cmd.Summary)
	}
	fmt.Fprintf(w, "  %-*s %s\n", width, "help [command]", "explain a command and its flags; without one, this list")
	fmt.Fprint(w, p.More)
}

// help explains one command, as its -h does, or lists the commands when
// none is named.
func (p *Program) help(w io.Writer, args []string) error {
	if len(args) > 0 {
		cmd, _, err := p.find(args)
		if err != nil {
			return UsageError{Err: err}
		}
		p.printUsage(w, cmd)
		return nil
	}
	p.printOverview(w)
	return nil
}

// NewLogger returns the logger of a command's --log-format and --log-level
// (termout.NewLogger), a bad value being a usage error.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	log, err := termout.NewLogger(w, format, level)
	if err != nil {
		return nil, UsageError{Err: err}
	}
	return log, nil
}
