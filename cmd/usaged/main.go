// Command usaged is the usage metering server and its command-line client:
// it serves the API, seeds demo traffic, queries counts, manages
// organizations and clients, and measures ingest throughput.
//
// Run `usaged help` for the commands and `usaged help CMD` for one command's
// flags. Every flag can also be set through an environment variable
// (env): serve's flags and the flags shared by every command that has
// them read USAGED_ and the flag's name in upper snake case
// (--dedupe-window: USAGED_DEDUPE_WINDOW), other commands' own flags add
// the command (--format of query: USAGED_QUERY_FORMAT); the command line
// wins.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	// Time zones of queries (timeZone) come from the system's database,
	// or from this copy where a minimal image has none.
	_ "time/tzdata"

	"github.com/usaged/usaged/internal/cmdline"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	err := (&Main{}).Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(cmdline.ExitCode("usaged", err, os.Stderr))
}

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
	return (&cli{stdout: stdout, stderr: stderr}).program(lookup).Run(ctx, args)
}

// cli is one run of the program: where its commands write.
type cli struct {
	stdout, stderr io.Writer
}

func (c *cli) newCommand(name, summary, details string) *cmdline.Command {
	return cmdline.NewCommand("usaged", name, summary, details)
}

// program is usaged with its commands, reading the environment through lookup.
func (c *cli) program(lookup func(string) (string, bool)) *cmdline.Program {
	return &cmdline.Program{Name: "usaged", About: "usaged " + version + ": API usage metering, Genesys Cloud-compatible.",
		More: overviewMore, Commands: c.commands(), Env: env, LookupEnv: lookup, Stdout: c.stdout, Stderr: c.stderr}
}

// commands returns every command, in the order help lists them.
func (c *cli) commands() []*cmdline.Command {
	return []*cmdline.Command{
		c.serveCommand(),
		c.demoCommand(),
		c.queryCommand(),
		c.eventsCommand(),
		c.benchIngestCommand(),
		c.benchStoreCommand(),
		c.benchQueryCommand(),
		c.orgCreateCommand(),
		c.orgListCommand(),
		c.clientCreateCommand(),
		c.clientListCommand(),
		c.clientDeleteCommand(),
		c.limitCreateCommand(),
		c.limitListCommand(),
		c.limitGetCommand(),
		c.limitUpdateCommand(),
		c.limitDeleteCommand(),
		c.limitStatusCommand(),
		c.partnerCreateCommand(),
		c.partnerListCommand(),
		c.resellerCreateCommand(),
		c.resellerListCommand(),
		c.apikeyCreateCommand(),
		c.apikeyListCommand(),
		c.apikeyDeleteCommand(),
		c.webhookCreateCommand(),
		c.webhookListCommand(),
		c.webhookGetCommand(),
		c.webhookUpdateCommand(),
		c.webhookDeleteCommand(),
		c.webhookDeliveriesCommand(),
		c.webhookReplayCommand(),
		c.webhookTestCommand(),
		c.proxyCommand(),
		c.importCommand(),
		c.migrateCommand(),

		cmdline.VersionCommand("usaged", version, c.stdout),
	}
}

const overviewMore = `
Run usaged help <command> (or usaged <command> -h) for a command's flags.
Every flag falls back to an environment variable, which its help names:
serve's flags and --server, --token, --token-file, --timeout, --log-format,
--log-level and --shutdown-timeout read $USAGED_ and the flag name in upper
snake case (--dedupe-window: $USAGED_DEDUPE_WINDOW); other commands' own
flags add the command (--format of query: $USAGED_QUERY_FORMAT). Flags on
the command line win.

The README (github.com/usaged/usaged) has a five-minute tour, the
configuration table and the API reference.
`
