package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/flagvalue"
	"github.com/usaged/usaged/internal/termout"
	"github.com/usaged/usaged/meter/accesslog"
	"github.com/usaged/usaged/usage"
)

// importConfig are import's flags: those of the attribution bind to it.
type importConfig struct {
	remote    *remoteFlags
	format    flagvalue.OneOf
	routes    *templateFlags
	source    string
	keepGoing bool
	batch     int
	attr      accesslog.Attribution
}

func (c *cli) importCommand() *cmdline.Command {
	cmd := c.newCommand("import", "send the requests of access logs as usage events",
		`Reads nginx/Apache combined (or common) logs, or JSON logs (Caddy, Envoy, and
generic time/method/path/status objects), gzipped or not, and sends one usage
event per request line to --server: its time, method, route template (from
--templates; unmatched paths count under --catch-all), status, bytes and
duration. Each event's id is derived from --source, the line's bytes and how
many identical lines came before it in this import, never from the file's name
or the line's number: importing a log again, renamed, rotated, compressed or
appended to, counts nothing twice. Name every file that may hold lines of the
same second together (access.log.1 with access.log), and give each log that is
not the same host's one log its own --source.

Requests are attributed to --org and --client, or, in JSON logs, to the values
of --field-org, --field-client, --field-client-name and --field-user (dotted
paths such as request.headers.X-Org-Id). Lines that cannot be read are reported
with their file and line number; the import goes on, and exits non-zero at the
end if any line was bad (unless --keep-going).`)
	cfg := &importConfig{format: flagvalue.OneOf{Value: "combined", Allowed: []string{"combined", "json"}}}
	cfg.remote = addRemoteFlags(cmd.Flags, "bearer token: the admin token, or a client token with usage:event:add")
	f := cmd.Flags
	f.Var(&cfg.format, "format", "log `format`: combined or json")
	cfg.routes = addTemplateFlags(f)
	f.StringVar(&cfg.source, "source", "", "`label` of the host (or log) that wrote the files, part of every event id (default: this host's name)")
	f.StringVar(&cfg.attr.Org, "org", "", "organization of every request (with the admin token; a client token's own by default)")
	f.StringVar(&cfg.attr.Client, "client", "", "OAuth client id of every request")
	f.StringVar(&cfg.attr.ClientName, "client-name", "", "client name of every request (default: the client id)")
	f.StringVar(&cfg.attr.FieldOrg, "field-org", "", "JSON logs: field holding the organization")
	f.StringVar(&cfg.attr.FieldClient, "field-client", "", "JSON logs: field holding the client id")
	f.StringVar(&cfg.attr.FieldClientName, "field-client-name", "", "JSON logs: field holding the client name")
	f.StringVar(&cfg.attr.FieldUser, "field-user", "", "JSON logs: field holding the user")
	f.BoolVar(&cfg.attr.RemoteUserIsUser, "remote-user", true, "combined logs: record the authenticated remote user (%u) as the user")
	f.BoolVar(&cfg.keepGoing, "keep-going", false, "exit zero even when some lines could not be read")
	f.IntVar(&cfg.batch, "batch", 5000, "events per request")
	cmd.Args = "FILE..."
	cmd.Run = func(ctx context.Context) error { return c.importLogs(ctx, cfg, cmd.Flags.Args()) }
	return cmd
}

// importStats is the outcome of an import.
type importStats struct {
	lines, bad int
	sent       ingest.Result
}

func (c *cli) importLogs(ctx context.Context, cfg *importConfig, files []string) error {
	switch {
	case len(files) == 0:
		return cmdline.UsageError{Err: errors.New("name at least one log FILE")}
	case cfg.attr.Client == "" && cfg.attr.FieldClient == "":
		return cmdline.UsageError{Err: errors.New("--client or --field-client is required: every event belongs to an OAuth client")}
	case cfg.batch < 1 || cfg.batch > 100_000:
		return cmdline.UsageError{Err: fmt.Errorf("--batch must be from 1 to 100000, got %d", cfg.batch)}
	}
	format, err := accesslog.ParseFormat(cfg.format.Value)
	if err != nil {
		return cmdline.UsageError{Err: err}
	}
	matcher, err := cfg.routes.matcher()
	if err != nil {
		return err
	}
	api, err := cfg.remote.client(true, 1)
	if err != nil {
		return err
	}
	if cfg.source == "" {
		if cfg.source, err = os.Hostname(); err != nil {
			return cmdline.UsageError{Err: fmt.Errorf("--source is needed: this host's name cannot be read: %w", err)}
		} else if cfg.source == "" {
			return cmdline.UsageError{Err: errors.New("--source is needed: this host has no name")}
		}
	}
	total, err := accesslog.Size(files)
	if errors.Is(err, accesslog.ErrSameFile) {
		return cmdline.UsageError{Err: err}
	} else if err != nil {
		return err
	}
	ids := accesslog.NewEventIDs(cfg.source)
	attr := &cfg.attr
	attr.Template, attr.Platform = matcher.Match, "import"
	prog := termout.StartProgress(c.stderr, "importing bytes", int(total))
	var st importStats
	for _, name := range files {
		if err := c.importFile(ctx, cfg, api, attr, format, ids, name, prog, &st); err != nil {
			prog.Finish()
			return err
		}
	}
	prog.Finish()
	fmt.Fprintf(c.stdout, "%s in %s: %d sent (%d accepted, %s, %d rejected by usaged), %d could not be read\n",
		termout.Plural(st.lines, "line"), termout.Plural(len(files), "file"), st.lines-st.bad, st.sent.Accepted, termout.Plural(st.sent.Duplicates, "duplicate"), st.sent.Rejected, st.bad)
	if st.bad > 0 && !cfg.keepGoing {
		return fmt.Errorf("%s could not be read (listed above); pass --keep-going to accept that", termout.Plural(st.bad, "line"))
	}
	return nil
}

func (c *cli) importFile(ctx context.Context, cfg *importConfig, api *client.Client, attr *accesslog.Attribution, format accesslog.Format, ids *accesslog.EventIDs, name string, prog *termout.Progress, st *importStats) error {
	send := func(evs []usage.Event) error {
		res, err := api.SendEvents(ctx, evs, client.Brief)
		if err != nil {
			return err
		}
		for _, e := range res.Errors {
			fmt.Fprintf(c.stderr, "%s: usaged rejected event %s: %s: %s\n", name, e.ID, e.Code, e.Message)
		}
		st.sent.Accepted += res.Accepted
		st.sent.Duplicates += res.Duplicates
		st.sent.Rejected += res.Rejected
		return nil
	}
	bad := func(pe *accesslog.ParseError) {
		st.bad++
		fmt.Fprintf(c.stderr, "%s:%d: %s\n", name, pe.Line, pe.Reason)
	}
	n, err := accesslog.ReadFile(name, format, ids, attr, cfg.batch, prog.Add, send, bad)
	st.lines += n
	return err
}
