package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/usaged/usaged/bench"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/flagvalue"
	"github.com/usaged/usaged/internal/termout"
	"github.com/usaged/usaged/usage"
)

// benchQueryFlags are bench query's flags: the organization and the load
// bind to its configuration, the query is made of the others.
type benchQueryFlags struct {
	remote                *remoteFlags
	interval, granularity string
	groupBy               flagvalue.List
	format                flagvalue.OneOf
	cfg                   bench.QueryConfig
}

func (c *cli) benchQueryCommand() *cmdline.Command {
	cmd := c.newCommand("bench query", "measure a server's organization query latency and rate over HTTP",
		`Runs --concurrency loops for --duration, each starting an organization usage
query (POST /api/v2/usage/query) and polling its results URI, at once and then
every 5 ms doubling, until it is no longer Running, as usaged query does.
Reports executions/s and the POST-to-Complete latency: up to the moment the
Complete document has been received, and up to when the client has parsed
it (its status and row count). Every execution must return as many rows as the first; one that does
not, fails, or is refused counts as a failure (after a refusal such as 429 the
loop pauses 100 ms). All loops share one client: a server that limits requests
per client must allow them, e.g. usaged serve --rate-limit.

It needs the admin token: it creates a client "`+bench.ViewerName+`" with
usage:organization:view in --org for the run, queries with that client's
token, and deletes the client at the end. Without --org it queries the first
organization the server lists. To time a large store, build it with
usaged bench store --dir DATA/store and serve DATA (see bench store -h).`)
	f := &benchQueryFlags{format: flagvalue.OneOf{Value: "text", Allowed: []string{"text", "json"}}}
	f.remote = addRemoteFlags(cmd.Flags, "admin token")
	fs := cmd.Flags
	fs.StringVar(&f.cfg.Org, "org", "", "organization `id` to query; default: the first organization the server lists")
	fs.StringVar(&f.interval, "interval", "", "ISO-8601 interval to query; default: the 90 days ending at the next whole hour")
	fs.StringVar(&f.granularity, "granularity", "Day", "time buckets: Hour, Day, Week or Month; empty for none")
	fs.Var(&f.groupBy, "group-by", "comma-separated `dimensions` to group by (default OAuthClientId)")
	fs.IntVar(&f.cfg.Concurrency, "concurrency", 1, "query loops running at once")
	fs.DurationVar(&f.cfg.Duration, "duration", 30*time.Second, "how long to start executions")
	fs.Var(&f.format, "format", "report `format`: text or json")
	cmd.Run = func(ctx context.Context) error { return c.benchQuery(ctx, f) }
	return cmd
}

func (c *cli) benchQuery(ctx context.Context, f *benchQueryFlags) error {
	if err := inRange(bound{"concurrency", f.cfg.Concurrency, 1, 1024}); err != nil {
		return err
	}
	if f.cfg.Duration <= 0 || f.cfg.Duration > 12*time.Hour {
		return cmdline.UsageError{Err: errors.New("--duration must be positive and at most 12h")}
	}
	admin, err := f.remote.client(true, f.cfg.Concurrency)
	if err != nil {
		return err
	}
	info := c.stdout
	if f.format.Value == "json" {
		info = c.stderr
	}
	if f.interval == "" {
		end := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
		f.interval = end.Add(-90*24*time.Hour).Format(time.RFC3339) + "/" + end.Format(time.RFC3339)
	}
	groupBy := []string(f.groupBy)
	if len(groupBy) == 0 {
		groupBy = []string{usage.DimClientID.String()}
	}

	if f.cfg.Org == "" {
		orgs, err := admin.Organizations(ctx)
		if err != nil {
			return fmt.Errorf("listing organizations (needs the admin token): %w", err)
		}
		if len(orgs) == 0 {
			return errors.New("the server has no organization to query")
		}
		f.cfg.Org = orgs[0].ID
		fmt.Fprintf(info, "querying organization %q (%s)\n", orgs[0].Name, f.cfg.Org)
	}
	f.cfg.Req, f.cfg.Timeout = queryRequest(f.interval, f.granularity, groupBy, nil), f.remote.timeout
	f.cfg.Started = func(rows int) {
		fmt.Fprintf(info, "%s rows per execution; running %d at once for %s…\n", termout.Group(int64(rows)), f.cfg.Concurrency, f.cfg.Duration)
	}
	f.cfg.Warn = func(err error) { fmt.Fprintf(c.stderr, "usaged: %v\n", err) }
	rep, err := bench.Query(ctx, admin, f.cfg)
	if err != nil {
		return err
	}
	if f.format.Value == "json" {
		return termout.WriteJSON(c.stdout, rep)
	}
	rep.WriteText(c.stdout)
	return nil
}
