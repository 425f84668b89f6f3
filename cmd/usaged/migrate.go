package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/flagvalue"
	"github.com/usaged/usaged/internal/termout"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/clickhouse"
	"github.com/usaged/usaged/store/open"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/store/postgres"
	"github.com/usaged/usaged/usage"
)

// migrateConfig are migrate's flags.
type migrateConfig struct {
	from, store, keeper, claims string
	metadata, metadataSchema    string
	dedupeWindow                time.Duration
}

func (c *cli) migrateCommand() *cmdline.Command {
	cmd := c.newCommand("migrate", "move an embedded store into a cluster (ClickHouse, ZooKeeper, Redis, PostgreSQL)",
		`Copies the embedded store of --from, which no usaged may be running on, into
an empty cluster database, and checks the copy:

  - the counts of every hour, client, user, template, method and platform, and
    the latest name of every client, into ClickHouse (--store);
  - the dedupe records of events within --dedupe-window, as committed claims in
    Redis (--claims), under the embedded store's hash seed, which the cluster
    adopts in the keeper (--keeper): an event sent again after the move is still
    a duplicate;
  - the organizations, clients, the service registry, the API keys and the query
    executions with their rows, into PostgreSQL (--metadata).

The embedded store keeps counts, not events: the cluster's journal of raw events
starts at the migration, and the events of earlier history cannot be listed.
The counts are exact. After copying, migrate compares the totals of every
client on every day in the store and in the cluster, prints the comparison and
fails if any differs.

Run it again after it stopped halfway (a crash, a lost server): it writes the
same blocks and claims again, which the cluster recognises, and finishes. No
usaged node may run on the cluster until it has finished. A store that holds
service activity (the service-usage reports) cannot be moved yet: migrate
refuses it.`)
	cfg := &migrateConfig{dedupeWindow: ingest.DefaultDedupeWindow}
	f := cmd.Flags
	f.StringVar(&cfg.from, "from", "", "`location` of the embedded store, as serve's --store: pebble:DIR (required)")
	f.StringVar(&cfg.store, "store", "", "ClickHouse `location`: clickhouse://[user[:password]@]host:port[,host:port…]/database (required)")
	f.StringVar(&cfg.keeper, "keeper", "", "ZooKeeper (or ClickHouse Keeper) `servers`, host:port[,host:port…] (required)")
	f.StringVar(&cfg.claims, "claims", "", "Redis `URL` of the claim store, redis://host:port[/db] (required)")
	f.StringVar(&cfg.metadata, "metadata", "", "PostgreSQL `URL` of the metadata, postgres://user@host:port/database (required)")
	f.StringVar(&cfg.metadataSchema, "metadata-schema", postgres.DefaultSchema, "PostgreSQL `schema` of the metadata")
	f.Var((*flagvalue.DayDuration)(&cfg.dedupeWindow), "dedupe-window", "the cluster's dedupe window: dedupe records of older events are not copied (a `duration`: Go syntax or days, e.g. 35d)")
	cmd.Run = func(ctx context.Context) error { return c.migrate(ctx, cfg) }
	return cmd
}

func (c *cli) migrate(ctx context.Context, cfg *migrateConfig) error {
	if err := required("--from, --store, --keeper, --claims and --metadata are required",
		cfg.from == "", cfg.store == "", cfg.keeper == "", cfg.claims == "", cfg.metadata == ""); err != nil {
		return err
	}
	if cfg.dedupeWindow <= 0 {
		return cmdline.UsageError{Err: fmt.Errorf("--dedupe-window must be positive, got %s", cfg.dedupeWindow)}
	}
	from, err := open.Parse(cfg.from)
	if err != nil {
		return cmdline.UsageError{Err: err}
	}
	if from.Scheme != open.SchemePebble {
		return cmdline.UsageError{Err: fmt.Errorf("--from %q: migrate moves an embedded store, pebble:DIR", cfg.from)}
	}
	chCfg, err := clickhouse.ParseLocation(cfg.store)
	if err != nil {
		return cmdline.UsageError{Err: err}
	}
	chCfg.Keeper = strings.Split(cfg.keeper, ",")
	chCfg.Claims = cfg.claims

	// Opening a store creates it where there is none: an empty source
	// would move nothing, and succeed.
	if entries, err := os.ReadDir(from.Path); err != nil || len(entries) == 0 {
		return fmt.Errorf("--from: no embedded store at %s (%v)", from.Path, cmp.Or(err, errors.New("the directory is empty")))
	}
	src, err := pebble.Open(pebble.Config{Dir: from.Path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return fmt.Errorf("%w (is usaged serve still running on it? stop it first)", err)
	}
	defer src.Close()
	if active, err := src.HasActivity(ctx); err != nil {
		return err
	} else if active {
		return errors.New("the store holds service activity (the service-usage reports), which migrate cannot move yet: " +
			"the cluster keeps activity as raw events and the store keeps only its daily counters, gauges and user events; nothing was written")
	}
	dst, err := clickhouse.Open(ctx, chCfg)
	if err != nil {
		return err
	}
	defer dst.Close()
	meta, err := postgres.Open(ctx, postgres.Config{URL: cfg.metadata, Schema: cfg.metadataSchema})
	if err != nil {
		return err
	}
	defer meta.Close()

	imp, err := dst.Import(ctx, clickhouse.ImportConfig{Seed: src.Seed(), DedupeFrom: time.Now().Add(-cfg.dedupeWindow)})
	if err != nil {
		return err
	}
	var sourceDays []usage.Row
	activityRecords := 0
	err = src.Export(ctx, pebble.ExportVisitor{
		Groups:      func(r usage.Row) error { return imp.Group(ctx, r) },
		ClientDays:  func(r usage.Row) error { sourceDays = append(sourceDays, r); return nil },
		ClientNames: func(org, client, name string) error { return imp.ClientName(ctx, org, client, name) },
		Dedupe: func(r pebble.DedupeRecord) error {
			if r.OrganizationID == "" {
				activityRecords++ // without activity, only records of activity whose counters were never written
				return nil
			}
			return imp.EventClaim(ctx, r.OrganizationID, r.Hash, r.Hour)
		},
	})
	if err != nil {
		return err
	}
	st, err := imp.Finish(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "counts: %s (migration batches: %d); %s; claims: %s within the %s window (%s before it not copied)\n",
		termout.Plural(st.Groups, "hourly group"), st.Batches, termout.Plural(st.Names, "client name"),
		termout.Plural(st.Claims, "dedupe record"), (*flagvalue.DayDuration)(&cfg.dedupeWindow), termout.Plural(st.Expired, "record"))
	if activityRecords > 0 {
		fmt.Fprintf(c.stdout, "skipped %s of activity events\n", termout.Plural(activityRecords, "dedupe record"))
	}
	mst, err := copyMetadata(ctx, src, meta)
	if err != nil {
		return fmt.Errorf("copy metadata: %w", err)
	}
	fmt.Fprintf(c.stdout, "metadata: %s, %s, %s, %s, %s, %s, %s, %s with %s\n",
		termout.Plural(mst.organizations, "organization"), termout.Plural(mst.clients, "client"),
		termout.Plural(mst.partners, "partner"), termout.Plural(mst.resellers, "reseller"), termout.Plural(mst.collections, "collection"),
		termout.Plural(mst.services, "service"), termout.Plural(mst.apiKeys, "API key"), termout.Plural(mst.executions, "query execution"),
		termout.Plural(mst.rows, "row"))
	fmt.Fprintln(c.stdout, "raw events: none copied (the embedded store keeps counts, not events); the cluster's journal starts now")

	hourly, rollup, err := dst.ClientDayTotals(ctx)
	if err != nil {
		return err
	}
	diffs := compareTotals(c.stdout, sourceDays, map[string][]usage.Row{"hourly counts": hourly, "daily counts": rollup})
	if diffs > 0 {
		return fmt.Errorf("the cluster's totals differ from the store's in %s (listed above)", termout.Plural(diffs, "place"))
	}
	return nil
}

// dayKey is a client's day in an organization.
type dayKey struct {
	org, client string
	day         time.Time
}

// compareTotals prints, per organization, the requests of the source and
// of each target, and every client and day whose counts differ; it returns
// the number of differences.
func compareTotals(w io.Writer, source []usage.Row, targets map[string][]usage.Row) int {
	byKey := func(rows []usage.Row) map[dayKey]usage.Counts {
		m := make(map[dayKey]usage.Counts, len(rows))
		for _, r := range rows {
			k := dayKey{r.OrganizationID, r.ClientID, r.Date}
			c := m[k]
			c.Add(r.Counts)
			m[k] = c
		}
		return m
	}
	want := byKey(source)
	names := slices.Sorted(maps.Keys(targets))
	got := map[string]map[dayKey]usage.Counts{}
	keys := map[dayKey]bool{}
	for k := range want {
		keys[k] = true
	}
	for _, n := range names {
		got[n] = byKey(targets[n])
		for k := range got[n] {
			keys[k] = true
		}
	}
	sorted := slices.SortedFunc(maps.Keys(keys), func(a, b dayKey) int {
		return cmp.Or(strings.Compare(a.org, b.org), a.day.Compare(b.day), strings.Compare(a.client, b.client))
	})
	type orgTotals struct {
		days, diffs int
		source      int64
		targets     map[string]int64
	}
	var orgs []string
	totals := map[string]*orgTotals{}
	diffs := 0
	for _, k := range sorted {
		t := totals[k.org]
		if t == nil {
			t = &orgTotals{targets: map[string]int64{}}
			totals[k.org] = t
			orgs = append(orgs, k.org)
		}
		t.days++
		t.source += want[k].Requests
		for _, n := range names {
			t.targets[n] += got[n][k].Requests
			if got[n][k] != want[k] {
				t.diffs++
				diffs++
				fmt.Fprintf(w, "DIFFERENT  %s client %s on %s: store %+v, cluster's %s %+v\n",
					k.org, k.client, k.day.Format(time.DateOnly), want[k], n, got[n][k])
			}
		}
	}
	fmt.Fprintf(w, "verified the totals of every client on every day:\n")
	for _, org := range orgs {
		t := totals[org]
		verdict := "same"
		if t.diffs > 0 {
			verdict = termout.Plural(t.diffs, "difference")
		}
		var in []string
		for _, n := range names {
			in = append(in, fmt.Sprintf("%s %d", n, t.targets[n]))
		}
		fmt.Fprintf(w, "  %s: %s, requests in the store %d, in the cluster's %s: %s\n",
			org, termout.Plural(t.days, "client day"), t.source, strings.Join(in, ", "), verdict)
	}
	return diffs
}

// metadataStats counts what copyMetadata copied.
type metadataStats struct {
	organizations, clients                     int
	partners, resellers, collections, services int
	apiKeys, executions, rows                  int
}

// copyMetadata copies every record of from into to: the registries, the
// service registry and the query executions with their rows. Records are
// created or replaced by their keys, so copying again changes nothing.
func copyMetadata(ctx context.Context, from, to store.Metadata) (metadataStats, error) {
	var st metadataStats
	orgs, err := from.Organizations(ctx)
	if err != nil {
		return st, err
	}
	for _, o := range orgs {
		if err := to.PutOrganization(ctx, o); err != nil {
			return st, err
		}
		clients, err := from.Clients(ctx, o.ID)
		if err != nil {
			return st, err
		}
		for _, cl := range clients {
			if err := to.PutClient(ctx, cl); err != nil {
				return st, err
			}
		}
		st.organizations++
		st.clients += len(clients)
	}
	if st.partners, err = copyAll(ctx, from.Partners, to.PutPartner); err != nil {
		return st, err
	}
	if st.resellers, err = copyAll(ctx, from.Resellers, to.PutReseller); err != nil {
		return st, err
	}
	if st.collections, err = copyAll(ctx, from.Collections, to.PutCollection); err != nil {
		return st, err
	}
	if st.services, err = copyAll(ctx, from.Services, to.PutService); err != nil {
		return st, err
	}
	if st.apiKeys, err = copyAll(ctx, from.APIKeys, to.PutAPIKey); err != nil {
		return st, err
	}
	var execs []usage.Execution
	if err := from.ExecutionsBy(ctx, func(e usage.Execution) bool { execs = append(execs, e); return true }); err != nil {
		return st, err
	}
	for _, e := range execs {
		// One row more than the record counts, to notice a mismatch.
		rows, err := from.ExecutionRows(ctx, e.ID, 0, e.RowCount+1)
		switch {
		case err != nil:
			return st, err
		case !e.Status.Done() && len(rows) == 0:
			err = to.PutExecution(ctx, e)
		case len(rows) != e.RowCount:
			return st, fmt.Errorf("execution %s: its record counts %d rows, the store holds %d", e.ID, e.RowCount, len(rows))
		default:
			err = to.FinishExecution(ctx, e, rows)
		}
		if err != nil {
			return st, fmt.Errorf("execution %s: %w", e.ID, err)
		}
		st.executions++
		st.rows += len(rows)
	}
	return st, nil
}

// copyAll puts every record list returns, and returns how many there were.
func copyAll[T any](ctx context.Context, list func(context.Context) ([]T, error), put func(context.Context, T) error) (int, error) {
	all, err := list(ctx)
	if err != nil {
		return 0, err
	}
	for _, v := range all {
		if err := put(ctx, v); err != nil {
			return 0, err
		}
	}
	return len(all), nil
}
