// Command usaged is the usage metering server and its command-line client:
// it serves the API, seeds demo traffic, queries counts, manages
// organizations and clients, and measures ingest throughput.
//
// Run `usaged help` for the commands and `usaged help CMD` for one command's
// flags. Every flag can also be set through an environment variable
// (envNames): serve's flags and the flags shared by every command that has
// them read USAGED_ and the flag's name in upper snake case
// (--dedupe-window: USAGED_DEDUPE_WINDOW), other commands' own flags add
// the command (--format of query: USAGED_QUERY_FORMAT); the command line
// wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	err := (&Main{}).Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err on stderr and returns the process exit status: 0 on
// success, 2 for a command line that could not be parsed, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		if !ue.reported {
			fmt.Fprintln(stderr, "usaged:", err)
		}
		return 2
	default:
		fmt.Fprintln(stderr, "usaged:", err)
		return 1
	}
}

// usageError is a command line that could not be parsed.
type usageError struct {
	err      error
	reported bool // the flag package already printed it with the usage
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Main is the usaged program. Tests run it in-process with their own
// arguments, output and environment.
type Main struct {
	// LookupEnv reads the environment fallbacks of flags; nil means
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Run runs the command in args (without the program name), writing results
// to stdout and diagnostics to stderr, until it finishes or ctx ends.
// SIGINT and SIGTERM end ctx too.
func (m *Main) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	lookup := m.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{stdout: stdout, stderr: stderr, lookup: lookup}
	if len(args) == 0 {
		c.printOverview(stderr)
		return usageError{err: errors.New("no command given"), reported: false}
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return c.help(stdout, args[1:])
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, rest, err := c.find(args)
	if err != nil {
		c.printOverview(stderr)
		return usageError{err: err}
	}
	if err := c.parse(cmd, rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	return cmd.run(ctx)
}

// cli is one run of the program: its output, environment and commands.
type cli struct {
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
}

// command is a subcommand: its flags, bound to the variables its run reads.
type command struct {
	name    string // "serve", "org create"
	args    string // what follows the flags in its synopsis, if anything
	summary string
	details string // a paragraph or two shown by help and -h
	fs      *flag.FlagSet
	run     func(ctx context.Context) error
}

func (c *cli) newCommand(name, summary, details string) *command {
	cmd := &command{name: name, summary: summary, details: details, fs: flag.NewFlagSet("usaged "+name, flag.ContinueOnError)}
	cmd.fs.SetOutput(c.stderr)
	// parse prints the usage: to stdout when asked for with -h, to stderr
	// after an error.
	cmd.fs.Usage = func() {}
	return cmd
}

// commands returns every command, in the order help lists them.
func (c *cli) commands() []*command {
	cmds := []*command{
		c.serveCommand(),
		c.demoCommand(),
		c.queryCommand(),
		c.benchIngestCommand(),
		c.benchStoreCommand(),
		c.benchQueryCommand(),
		c.orgCreateCommand(),
		c.orgListCommand(),
		c.clientCreateCommand(),
		c.clientListCommand(),
		c.clientDeleteCommand(),
		c.partnerCreateCommand(),
		c.partnerListCommand(),
		c.resellerCreateCommand(),
		c.resellerListCommand(),
		c.apikeyCreateCommand(),
		c.apikeyListCommand(),
		c.apikeyDeleteCommand(),
		c.proxyCommand(),
		c.importCommand(),

		c.versionCommand(),
	}
	for _, cmd := range cmds {
		documentEnv(cmd.fs)
	}
	return cmds
}

// find returns the command named by the first one or two arguments and the
// arguments after its name.
func (c *cli) find(args []string) (*command, []string, error) {
	cmds := c.commands()
	if len(args) > 1 {
		for _, cmd := range cmds {
			if cmd.name == args[0]+" "+args[1] {
				return cmd, args[2:], nil
			}
		}
	}
	for _, cmd := range cmds {
		if cmd.name == args[0] {
			return cmd, args[1:], nil
		}
	}
	var subs []string
	for _, cmd := range cmds {
		if group, sub, ok := strings.Cut(cmd.name, " "); ok && group == args[0] {
			subs = append(subs, sub)
		}
	}
	if len(subs) > 0 {
		if len(args) > 1 {
			return nil, nil, fmt.Errorf("%s has no subcommand %q: use one of %s", args[0], args[1], strings.Join(subs, ", "))
		}
		return nil, nil, fmt.Errorf("%s needs a subcommand: one of %s", args[0], strings.Join(subs, ", "))
	}
	return nil, nil, fmt.Errorf("unknown command %q; run usaged help", args[0])
}

// parse parses the command's flags, then fills the rest from the environment.
func (c *cli) parse(cmd *command, args []string) error {
	if err := cmd.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cmd.printUsage(c.stdout)
			return err
		}
		cmd.printUsage(c.stderr)
		return usageError{err: err, reported: true}
	}
	if cmd.fs.NArg() > 0 && cmd.args == "" {
		return usageError{err: fmt.Errorf("%s takes no arguments, got %q; flags go before any argument", cmd.name, cmd.fs.Args())}
	}
	if err := checkSecretFlags(cmd.fs); err != nil {
		return usageError{err: err}
	}
	if err := applyEnv(cmd.fs, c.lookup); err != nil {
		return usageError{err: err}
	}
	if err := readSecretFiles(cmd.fs); err != nil {
		return usageError{err: err}
	}
	return nil
}

// printUsage explains the command and every flag, with its variable.
// usaged help CMD and usaged CMD -h print it to stdout.
func (cmd *command) printUsage(w io.Writer) {
	synopsis := "usaged " + cmd.name + " [flags]"
	if cmd.args != "" {
		synopsis += " " + cmd.args
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", synopsis, cmd.summary)
	if cmd.details != "" {
		fmt.Fprintf(w, "\n%s\n", cmd.details)
	}
	fmt.Fprintf(w, "\nflags:\n")
	out := cmd.fs.Output()
	defer cmd.fs.SetOutput(out)
	cmd.fs.SetOutput(w)
	cmd.fs.PrintDefaults()
}

func (c *cli) printOverview(w io.Writer) {
	fmt.Fprintf(w, "usaged %s: API usage metering, Genesys Cloud-compatible.\n\nusage: usaged <command> [flags]\n\ncommands:\n", version)
	for _, cmd := range c.commands() {
		fmt.Fprintf(w, "  %-16s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "  %-16s %s\n", "help [command]", "explain a command and its flags; without one, this list")
	fmt.Fprintf(w, `
Run usaged help <command> (or usaged <command> -h) for a command's flags.
Every flag falls back to an environment variable, which its help names:
serve's flags and --server, --token, --token-file, --timeout, --log-format,
--log-level and --shutdown-timeout read $USAGED_ and the flag name in upper
snake case (--dedupe-window: $USAGED_DEDUPE_WINDOW); other commands' own
flags add the command (--format of query: $USAGED_QUERY_FORMAT). Flags on
the command line win.

The README (github.com/usaged/usaged) has a five-minute tour, the
configuration table and the API reference.
`)
}

// help explains one command, as its -h does, or lists the commands when
// none is named.
func (c *cli) help(w io.Writer, args []string) error {
	if len(args) > 0 {
		cmd, _, err := c.find(args)
		if err != nil {
			return usageError{err: err}
		}
		cmd.printUsage(w)
		return nil
	}
	c.printOverview(w)
	return nil
}

func (c *cli) versionCommand() *command {
	cmd := c.newCommand("version", "print the version, the Go version and the module build information", "")
	verbose := cmd.fs.Bool("verbose", false, "also list every dependency module and the build settings")
	cmd.run = func(context.Context) error {
		w := c.stdout
		fmt.Fprintf(w, "usaged %s\n", version)
		fmt.Fprintf(w, "go     %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			return nil
		}
		fmt.Fprintf(w, "module %s %s\n", bi.Main.Path, bi.Main.Version)
		for _, s := range bi.Settings {
			switch {
			case *verbose:
				fmt.Fprintf(w, "build  %s=%s\n", s.Key, s.Value)
			case s.Key == "vcs.revision" || s.Key == "vcs.time" || s.Key == "vcs.modified":
				fmt.Fprintf(w, "%-6s %s\n", strings.TrimPrefix(s.Key, "vcs."), s.Value)
			}
		}
		if *verbose {
			for _, d := range bi.Deps {
				fmt.Fprintf(w, "dep    %s %s\n", d.Path, d.Version)
			}
		}
		return nil
	}
	return cmd
}

// newLogger returns the logger for format: text for a person at a
// terminal, JSON for a log collector; auto picks by whether w is a terminal.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{err: fmt.Errorf("--log-level %q is not one of debug, info, warn, error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "auto" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}
