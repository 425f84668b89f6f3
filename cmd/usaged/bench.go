package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/usaged/usaged/bench"
	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/flagvalue"
	"github.com/usaged/usaged/internal/termout"
)

// benchIngestFlags are bench ingest's flags: those of the load bind to
// its configuration.
type benchIngestFlags struct {
	remote *remoteFlags
	org    string
	orgs   int
	format flagvalue.OneOf
	cfg    bench.IngestConfig
}

func (c *cli) benchIngestCommand() *cmdline.Command {
	cmd := c.newCommand("bench ingest", "measure a server's ingest throughput and latency",
		`Pre-encodes --variety distinct NDJSON batches of demo traffic from the last day,
then posts them from --concurrency workers over keep-alive connections for
--duration, giving every event a fresh id so that all are accepted. Reports
events/s, batch latency percentiles and the server's resident memory, read from
its /metrics every second. Run it against a server you may load: it writes real
events into the organizations it uses (by default "Bench Org", created if
missing).

With --clickhouse, the same bodies (the k-th batch byte for byte, gzipped iff
usaged's were) also go to ClickHouse's own INSERT … FORMAT JSONEachRow over HTTP,
into a plain MergeTree table made for the run, which neither deduplicates nor
syncs to disk; the report gives both sides, the rows ClickHouse holds at the end
(it must be every event it acknowledged) and usaged's events/s as a multiple of
ClickHouse's.`)
	f := &benchIngestFlags{format: flagvalue.OneOf{Value: "text", Allowed: []string{"text", "json"}}}
	f.remote = addRemoteFlags(cmd.Flags, "admin token, or a client token with usage:event:add together with --org")
	fs := cmd.Flags
	fs.DurationVar(&f.cfg.Duration, "duration", 30*time.Second, "how long to send batches")
	fs.IntVar(&f.cfg.Batch, "batch", 5000, "events per request")
	fs.IntVar(&f.cfg.Concurrency, "concurrency", 4, "requests in flight")
	fs.StringVar(&f.org, "org", "", "organization id to send events for; default: find or create \"Bench Org\" (and \"Bench Org N\" for --orgs)")
	fs.IntVar(&f.orgs, "orgs", 1, "organizations to spread events over when --org is not given")
	fs.IntVar(&f.cfg.Clients, "clients", 8, "clients per organization in the generated events")
	fs.IntVar(&f.cfg.Users, "users", 200, "users per organization in the generated events")
	fs.IntVar(&f.cfg.Templates, "templates", 150, fmt.Sprintf("route templates in the generated events, at most %d", demo.TemplateCount))
	fs.Int64Var(&f.cfg.Seed, "seed", 1, "seed of the generated events")
	fs.IntVar(&f.cfg.Variety, "variety", 8, "distinct pre-encoded batches cycled through")
	fs.BoolVar(&f.cfg.Gzip, "gzip", false, "gzip each request body (costs client CPU, which competes with the server on one machine)")
	fs.StringVar(&f.cfg.ClickHouse, "clickhouse", "", "also measure ClickHouse's own INSERT … FORMAT JSONEachRow of the same bodies at this HTTP `URL` (http://[user[:password]@]host:port), into a MergeTree table made for the run and dropped after it")
	fs.StringVar(&f.cfg.ClickHouseDatabase, "clickhouse-database", "default", "ClickHouse database of that table")
	fs.IntVar(&f.cfg.Rounds, "rounds", 1, "with --clickhouse: alternate usaged and ClickHouse this many times, each still getting --duration in all")
	fs.Var(&f.format, "format", "report `format`: text or json")
	cmd.Run = func(ctx context.Context) error { return c.benchIngest(ctx, f) }
	return cmd
}

func (c *cli) benchIngest(ctx context.Context, f *benchIngestFlags) error {
	if err := inRange(bound{"batch", f.cfg.Batch, 1, 1_000_000}, bound{"concurrency", f.cfg.Concurrency, 1, 1024},
		bound{"orgs", f.orgs, 1, 1000}, bound{"clients", f.cfg.Clients, 1, demo.MaxClients},
		bound{"templates", f.cfg.Templates, 1, demo.TemplateCount}, bound{"variety", f.cfg.Variety, 1, 1000},
		bound{"rounds", f.cfg.Rounds, 1, 1000}); err != nil {
		return err
	}
	if f.cfg.Duration <= 0 {
		return cmdline.UsageError{Err: errors.New("--duration must be positive")}
	}
	api, err := f.remote.client(true, f.cfg.Concurrency)
	if err != nil {
		return err
	}
	info := c.stdout
	if f.format.Value == "json" {
		info = c.stderr
	}
	f.cfg.Orgs = []demo.Org{{ID: f.org}}
	if f.org == "" {
		f.cfg.Orgs, err = bench.Orgs(ctx, api, f.orgs, func(o wire.Organization) {
			fmt.Fprintf(info, "created organization %q (%s)\n", o.Name, o.ID)
		})
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(info, "sending batches of %s events from %d workers for %s…\n", termout.Group(int64(f.cfg.Batch)), f.cfg.Concurrency, f.cfg.Duration)
	f.cfg.Warn = func(err error) { fmt.Fprintf(c.stderr, "usaged: %v\n", err) }
	if f.cfg.ClickHouse != "" {
		fmt.Fprintf(info, "and the same batches to ClickHouse for as long, in %d round(s)…\n", f.cfg.Rounds)
	}
	rep, err := bench.Ingest(ctx, api, f.cfg)
	if err != nil {
		return err
	}
	if f.format.Value == "json" {
		err = termout.WriteJSON(c.stdout, rep)
	} else {
		rep.WriteText(c.stdout)
	}
	if ch := rep.ClickHouse; err == nil && ch != nil && ch.Rows != uint64(ch.Events) {
		err = fmt.Errorf("ClickHouse holds %d rows, not the %d events of the batches it acknowledged", ch.Rows, ch.Events)
	}
	return err
}

func (c *cli) benchStoreCommand() *cmdline.Command {
	cmd := c.newCommand("bench store", "load a local store in-process and time the organization query",
		`Fills a fresh store through the ingest pipeline (no HTTP) with --events events over
--days days, then times a 90-day daily query by client for one organization.
The store is made in --dir, or in a temporary directory removed afterwards.

The generated organizations (ids bench-org-00, bench-org-01, …, named "Bench
Store Org 00", …) are registered in the store, so that a server can serve it:
make the store in the "store" directory of a data directory, e.g. --dir
DATA/store, then run usaged serve --data DATA; the admin API lists the
organizations and creates clients in them, e.g. for usaged bench query.`)
	cfg := bench.StoreConfig{}
	format := flagvalue.OneOf{Value: "text", Allowed: []string{"text", "json"}}
	var seed int64
	fs := cmd.Flags
	fs.StringVar(&cfg.Dir, "dir", "", "directory for the store; must not hold one already (default: a temporary directory)")
	fs.IntVar(&cfg.Events, "events", 1_000_000, "events to load")
	fs.IntVar(&cfg.Orgs, "orgs", 10, "organizations")
	fs.IntVar(&cfg.Clients, "clients", 50, "clients per organization")
	fs.IntVar(&cfg.Users, "users", 1000, "users per organization")
	fs.IntVar(&cfg.Templates, "templates", 300, "route templates")
	fs.IntVar(&cfg.Days, "days", 90, "days the events span, ending now")
	fs.IntVar(&cfg.Batch, "batch", 5000, "events per ingest call")
	fs.IntVar(&cfg.Workers, "workers", 4, "concurrent ingest calls")
	fs.IntVar(&cfg.Queries, "queries", 20, "times the query is run")
	fs.Int64Var(&seed, "seed", 1, "seed of the generated events")
	fs.Var(&format, "format", "report `format`: text or json")
	cmd.Run = func(ctx context.Context) error {
		cfg.Seed = uint64(seed)
		cfg.Progress = c.stdout
		if format.Value == "json" {
			cfg.Progress = c.stderr
		}
		if cfg.Dir == "" {
			dir, err := os.MkdirTemp("", "usaged-bench-store-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			cfg.Dir = dir
		}
		rep, err := bench.Store(ctx, cfg)
		if err != nil {
			return err
		}
		if format.Value == "json" {
			return termout.WriteJSON(c.stdout, rep)
		}
		_, err = fmt.Fprintln(c.stdout, rep)
		return err
	}
	return cmd
}
