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
  - the activity of every service as the store keeps it for the service-usage
    reports (the counters of every service's and user's day, the gauge reports
    and the user events), into ClickHouse: the reports on the cluster start from
    it and add the activity recorded there after;
  - the dedupe records of events and of activity within --dedupe-window, as
    committed claims in Redis (--claims), under the embedded store's hash seed,
    which the cluster adopts in the keeper (--keeper): an event sent again after
    the move is still a duplicate;
  - the organizations, clients, the service registry, the API keys and the query
    executions with their rows, into PostgreSQL (--metadata).

The embedded store keeps counts, not events: the cluster's journals of raw
events and activity start at the migration, and the events of earlier history
cannot be listed. The counts are exact. After copying, migrate compares the
totals of every client on every day, and the reports of every service (its
totals and its users over its whole history, and its daily series), in the
store and in the cluster, prints the comparison and fails if any differs.

Run it again after it stopped halfway (a crash, a lost server): it writes the
same blocks and claims again, which the cluster recognises, and finishes. No
usaged node may run on the cluster until it has finished.`)
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
	chCfg.DedupeWindow = cfg.dedupeWindow

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
	services := serviceSpans{}
	err = src.Export(ctx, pebble.ExportVisitor{
		Groups:      func(r usage.Row) error { return imp.Group(ctx, r) },
		ClientDays:  func(r usage.Row) error { sourceDays = append(sourceDays, r); return nil },
		ClientNames: func(org, client, name string) error { return imp.ClientName(ctx, org, client, name) },
		Dedupe: func(r pebble.DedupeRecord) error {
			if r.OrganizationID == "" {
				return imp.ActivityClaim(ctx, r.Service, r.Hash, r.Hour)
			}
			return imp.EventClaim(ctx, r.OrganizationID, r.Hash, r.Hour)
		},
		ServiceDays: func(service usage.GUID, day time.Time, t usage.ServiceTally) error {
			services.add(service, day)
			return imp.ServiceDay(ctx, service, day, t)
		},
		UserDays: func(service usage.GUID, day time.Time, t usage.UserTally) error {
			services.add(service, day)
			return imp.UserDay(ctx, service, day, t)
		},
		Gauges: func(service usage.GUID, a usage.Activity) error {
			services.add(service, a.Time)
			return imp.Gauge(ctx, service, a)
		},
		UserEvents: func(service usage.GUID, a usage.Activity) error {
			services.add(service, a.Time)
			return imp.UserEvent(ctx, service, a)
		},
	})
	if err != nil {
		return err
	}
	st, err := imp.Finish(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "counts: %s, activity: %s of %s (days of counters, gauge reports, user events), in %d migration batches; %s; claims: %s within the %s window (%s before it not copied)\n",
		termout.Plural(st.Groups, "hourly group"), termout.Plural(st.Activity, "record"), termout.Plural(len(services), "service"),
		st.Batches, termout.Plural(st.Names, "client name"),
		termout.Plural(st.Claims, "dedupe record"), (*flagvalue.DayDuration)(&cfg.dedupeWindow), termout.Plural(st.Expired, "record"))
	mst, err := copyMetadata(ctx, src, meta)
	if err != nil {
		return fmt.Errorf("copy metadata: %w", err)
	}
	fmt.Fprintf(c.stdout, "metadata: %s, %s, %s, %s, %s, %s, %s, %s, %s with %s\n",
		termout.Plural(mst.organizations, "organization"), termout.Plural(mst.clients, "client"), termout.Plural(mst.limits, "usage limit"),
		termout.Plural(mst.partners, "partner"), termout.Plural(mst.resellers, "reseller"), termout.Plural(mst.collections, "collection"),
		termout.Plural(mst.services, "service"), termout.Plural(mst.apiKeys, "API key"), termout.Plural(mst.executions, "query execution"),
		termout.Plural(mst.rows, "row"))
	fmt.Fprintln(c.stdout, "raw events: none copied (the embedded store keeps counts, not events); the cluster's journals start now")

	tables, err := dst.ClientDayTotals(ctx)
	if err != nil {
		return err
	}
	diffs := compareTotals(c.stdout, sourceDays, tables)
	reportDiffs, err := compareReports(ctx, c.stdout, services, src, dst)
	if err != nil {
		return err
	}
	if diffs += reportDiffs; diffs > 0 {
		return fmt.Errorf("the cluster's totals and reports differ from the store's in %s (listed above)", termout.Plural(diffs, "place"))
	}
	return nil
}

// serviceSpans are the services with activity, each with the UTC days its
// activity spans: from the first, included, to the last, excluded.
type serviceSpans map[usage.GUID]*[2]time.Time

// add widens the span of service to the UTC day of t.
func (ss serviceSpans) add(service usage.GUID, t time.Time) {
	day := usage.PeriodOf(usage.Daily, t)
	sp := ss[service]
	if sp == nil {
		ss[service] = &[2]time.Time{day.Start, day.End()}
		return
	}
	if day.Start.Before(sp[0]) {
		sp[0] = day.Start
	}
	if day.End().After(sp[1]) {
		sp[1] = day.End()
	}
}

// compareReports prints, per service, the reports of the source and of
// the target over the service's whole span: its totals, its users and its
// daily series, with every difference; it returns the number of differences.
func compareReports(ctx context.Context, w io.Writer, services serviceSpans, source, target store.Reports) (int, error) {
	diffs := 0
	byGUID := func(a, b usage.GUID) int { return slices.Compare(a[:], b[:]) }
	guids := slices.SortedFunc(maps.Keys(services), byGUID)
	var lines []string
	for _, g := range guids {
		from, to := services[g][0], services[g][1]
		n := 0
		differ := func(what string, want, got any) {
			n++
			fmt.Fprintf(w, "DIFFERENT  service %s %s: store %+v, cluster %+v\n", g, what, want, got)
		}
		var tot [2]usage.ServiceTotals
		var users [2][]usage.UserUsage
		var series [2][]usage.ServiceTotals
		for i, r := range []store.Reports{source, target} {
			var err error
			if tot[i], err = r.ServiceTotals(ctx, g, from, to); err != nil {
				return diffs, err
			}
			if users[i], err = r.ServiceUsers(ctx, g, from, to, usage.GUID{}); err != nil {
				return diffs, err
			}
			if series[i], err = r.ServiceSeries(ctx, g, from, to, usage.Daily); err != nil {
				return diffs, err
			}
		}
		if tot[0] != tot[1] {
			differ("totals", tot[0], tot[1])
		}
		for i := range max(len(series[0]), len(series[1])) {
			var want, got usage.ServiceTotals
			if i < len(series[0]) {
				want = series[0][i]
			}
			if i < len(series[1]) {
				got = series[1][i]
			}
			if want != got {
				differ("on "+from.AddDate(0, 0, i).Format(time.DateOnly), want, got)
			}
		}
		byUser := func(us []usage.UserUsage) map[usage.GUID]usage.UserUsage {
			m := make(map[usage.GUID]usage.UserUsage, len(us))
			for _, u := range us {
				m[u.User] = inUTC(u)
			}
			return m
		}
		want, got := byUser(users[0]), byUser(users[1])
		all := map[usage.GUID]bool{}
		for u := range want {
			all[u] = true
		}
		for u := range got {
			all[u] = true
		}
		for _, u := range slices.SortedFunc(maps.Keys(all), byGUID) {
			if want[u] != got[u] {
				differ("user "+u.String(), want[u], got[u])
			}
		}
		verdict := "same"
		if n > 0 {
			verdict = termout.Plural(n, "difference")
		}
		diffs += n
		lines = append(lines, fmt.Sprintf("  %s: %s to %s, %s, messages in the store %d, in the cluster %d: %s", g,
			from.Format(time.DateOnly), to.AddDate(0, 0, -1).Format(time.DateOnly), termout.Plural(len(users[0]), "user"),
			tot[0].Messages, tot[1].Messages, verdict))
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "verified the reports of every service (totals, users, daily series):\n")
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return diffs, nil
}

// inUTC returns u with its times in UTC, so that equal instants compare
// equal.
func inUTC(u usage.UserUsage) usage.UserUsage {
	for _, t := range []*time.Time{&u.CreatedOn, &u.RegisteredOn, &u.LastLogin, &u.LastMsgSent, &u.LastMsgRetrieved, &u.LastActivity} {
		*t = t.UTC()
	}
	return u
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
	organizations, clients, limits             int
	partners, resellers, collections, services int
	apiKeys, executions, rows                  int
}

// copyMetadata copies every record of from into to: the registries, the
// organizations' usage limits, the service registry and the query executions with their rows. Records are
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
		limits, err := from.Limits(ctx, o.ID)
		if err != nil {
			return st, err
		}
		for _, l := range limits {
			if err := to.PutLimit(ctx, l); err != nil {
				return st, err
			}
		}
		st.organizations++
		st.clients += len(clients)
		st.limits += len(limits)
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
