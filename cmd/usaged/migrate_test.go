package main

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/zeebo/xxh3"

	"github.com/usaged/usaged/internal/clustertest"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/clickhouse"
	"github.com/usaged/usaged/store/memory"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/store/postgres"
	"github.com/usaged/usaged/store/storetest"
	"github.com/usaged/usaged/usage"
)

// fillMetadata puts a record of every kind into m, times in UTC to the
// millisecond as every backend keeps them.
func fillMetadata(t *testing.T, m store.Metadata) {
	t.Helper()
	ctx := t.Context()
	at := time.Date(2026, 2, 3, 4, 5, 6, 7_000_000, time.UTC)
	partner, reseller, service := usage.NewGUID(), usage.NewGUID(), usage.NewGUID()
	q := usage.Query{OrganizationID: "org1", Interval: usage.Interval{Start: at.Truncate(time.Hour), End: at.Truncate(time.Hour).Add(time.Hour)},
		GroupBy: []usage.Dimension{usage.DimClientID}, Metrics: usage.Metrics, MaxRows: 10}
	err := errors.Join(
		m.PutOrganization(ctx, usage.Organization{ID: "org1", Name: "One", CreatedAt: at}),
		m.PutOrganization(ctx, usage.Organization{ID: "org2", Name: "Two", CreatedAt: at}),
		m.PutClient(ctx, usage.Client{ID: "c1", OrganizationID: "org1", Name: "first", SecretHash: []byte("hash"),
			Permissions: []usage.Permission{usage.PermEventAdd}, AccessTokenValidity: time.Hour, CreatedAt: at}),
		m.PutClient(ctx, usage.Client{ID: "c2", OrganizationID: "org2", Name: "second", SecretHash: []byte("hash2"),
			Permissions: []usage.Permission{usage.PermEventAdd, usage.PermClientView}, AccessTokenValidity: time.Minute, CreatedAt: at}),
		m.PutLimit(ctx, usage.Limit{ID: "l1", OrganizationID: "org1", Name: "daily", Metric: usage.LimitRequests, Value: 100,
			Window: usage.Window{Type: usage.WindowDay, TimeZone: "Europe/Berlin"}, Thresholds: []int{80, 100}, Version: 2, Created: at, Updated: at}),
		m.PutLimit(ctx, usage.Limit{ID: "l2", OrganizationID: "org2", Name: "errors", Scope: usage.ScopeEachClient, Metric: usage.LimitErrorRate, Value: 0.1,
			Window: usage.Window{Type: usage.WindowHour}, Enforced: true, Version: 1, Created: at, Updated: at}),
		m.PutPartner(ctx, usage.Partner{GUID: partner, Name: "partner", Created: at}),
		m.PutReseller(ctx, usage.Reseller{GUID: reseller, PartnerGUID: partner, Name: "reseller", Created: at}),
		m.PutCollection(ctx, usage.Collection{GUID: usage.NewGUID(), Name: "collection", PartnerGUID: partner, Created: at}),
		m.PutService(ctx, usage.Service{GUID: service, Name: "service", Status: usage.StatusBlocked, CreatedOn: at, PartnerGUID: partner, ResellerGUID: reseller}),
		m.PutAPIKey(ctx, usage.APIKey{Digest: [32]byte{1, 2, 3}, Name: "key", Scope: usage.Scope{Kind: usage.ScopeService, GUID: service}, Created: at}),
		m.PutExecution(ctx, usage.Execution{ID: "running", OrganizationID: "org1", Operation: "op", Query: q, Status: usage.ExecutionRunning,
			Created: at, Expires: at.Add(time.Hour)}),
		m.FinishExecution(ctx, usage.Execution{ID: "done", OrganizationID: "org1", Operation: "op", Query: q, Status: usage.ExecutionComplete,
			RowCount: 2, ResultBytes: 100, Created: at, Finished: at, Expires: at.Add(time.Hour)},
			[]usage.Row{{Date: at.Truncate(time.Hour), ClientID: "c1", Counts: usage.Counts{Requests: 3}}, {ClientID: "c2", Counts: usage.Counts{Requests: 1}}}),
	)
	if err != nil {
		t.Fatal(err)
	}
}

// metadataSnapshot is every record of a store.Metadata, in a fixed order.
type metadataSnapshot struct {
	Organizations []usage.Organization
	Clients       []usage.Client
	Limits        []usage.Limit
	Partners      []usage.Partner
	Resellers     []usage.Reseller
	Collections   []usage.Collection
	Services      []usage.Service
	APIKeys       []usage.APIKey
	Executions    []usage.Execution
	Rows          map[string][]usage.Row
}

func snapshotMetadata(t *testing.T, m store.Metadata) metadataSnapshot {
	t.Helper()
	ctx := t.Context()
	var s metadataSnapshot
	var err error
	must := func(e error) {
		t.Helper()
		if e != nil {
			t.Fatal(e)
		}
	}
	s.Organizations, err = m.Organizations(ctx)
	must(err)
	for _, o := range s.Organizations {
		cs, err := m.Clients(ctx, o.ID)
		must(err)
		s.Clients = append(s.Clients, cs...)
		ls, err := m.Limits(ctx, o.ID)
		must(err)
		s.Limits = append(s.Limits, ls...)
	}
	byGUID := func(a, b usage.GUID) int { return strings.Compare(a.String(), b.String()) }
	s.Partners, err = m.Partners(ctx)
	must(err)
	slices.SortFunc(s.Partners, func(a, b usage.Partner) int { return byGUID(a.GUID, b.GUID) })
	s.Resellers, err = m.Resellers(ctx)
	must(err)
	slices.SortFunc(s.Resellers, func(a, b usage.Reseller) int { return byGUID(a.GUID, b.GUID) })
	s.Collections, err = m.Collections(ctx)
	must(err)
	slices.SortFunc(s.Collections, func(a, b usage.Collection) int { return byGUID(a.GUID, b.GUID) })
	s.Services, err = m.Services(ctx)
	must(err)
	slices.SortFunc(s.Services, func(a, b usage.Service) int { return byGUID(a.GUID, b.GUID) })
	s.APIKeys, err = m.APIKeys(ctx)
	must(err)
	slices.SortFunc(s.APIKeys, func(a, b usage.APIKey) int { return slices.Compare(a.Digest[:], b.Digest[:]) })
	must(m.ExecutionsBy(ctx, func(e usage.Execution) bool { s.Executions = append(s.Executions, e); return true }))
	slices.SortFunc(s.Executions, func(a, b usage.Execution) int { return strings.Compare(a.ID, b.ID) })
	s.Rows = map[string][]usage.Row{}
	for _, e := range s.Executions {
		s.Rows[e.ID], err = m.ExecutionRows(ctx, e.ID, 0, 1000)
		must(err)
	}
	return s
}

func TestCopyMetadata(t *testing.T) {
	t.Parallel()
	from, to := memory.New(), memory.New()
	fillMetadata(t, from)
	want := snapshotMetadata(t, from)
	for run := range 2 { // copying again changes nothing
		st, err := copyMetadata(t.Context(), from, to)
		if err != nil {
			t.Fatal(err)
		}
		wantSt := metadataStats{organizations: 2, clients: 2, limits: 2, partners: 1, resellers: 1, collections: 1, services: 1, apiKeys: 1, executions: 2, rows: 2}
		if st != wantSt {
			t.Errorf("run %d: copied %+v, want %+v", run, st, wantSt)
		}
		if got := snapshotMetadata(t, to); !reflect.DeepEqual(got, want) {
			t.Fatalf("run %d: copy\n%+v\nwant\n%+v", run, got, want)
		}
	}
}

// migrateTarget is a cluster database, a PostgreSQL schema and the flags
// of migrate that name them, all the test's own.
type migrateTarget struct {
	ch     clickhouse.Config
	pgURL  string
	schema string
	args   []string
}

func newMigrateTarget(t *testing.T) *migrateTarget {
	t.Helper()
	cfg := clustertest.ClickHouseDatabase(t)
	pgURL := clustertest.Postgres(t)
	schema := cfg.Database
	t.Cleanup(func() {
		if conn, err := pgx.Connect(context.Background(), pgURL); err == nil {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			conn.Close(context.Background())
		}
	})
	loc := "clickhouse://" + strings.Join(cfg.Replicas, ",") + "/" + cfg.Database
	return &migrateTarget{ch: cfg, pgURL: pgURL, schema: schema, args: []string{
		"--store", loc, "--keeper", strings.Join(cfg.Keeper, ","), "--claims", cfg.Claims,
		"--metadata", pgURL, "--metadata-schema", schema,
	}}
}

func TestMigrate(t *testing.T) {
	target := newMigrateTarget(t)
	ctx := t.Context()
	dir := t.TempDir()
	db, err := pebble.Open(pebble.Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	fillMetadata(t, db)

	// Events over four days, a window of two; every tenth is sent twice.
	// The oracle counts each distinct event once, per organization, client
	// and day.
	now := time.Now().UTC()
	window := 48 * time.Hour
	start := now.Add(-4 * 24 * time.Hour)
	type dayKey struct{ org, client, day string }
	oracle := map[dayKey]usage.Counts{}
	var evs []usage.Event
	for i := range 600 {
		ev := usage.Event{ID: "ev" + strconv.Itoa(i), Time: start.Add(time.Duration(i) * 9 * time.Minute),
			OrganizationID: []string{"org1", "org2"}[i%2], ClientID: []string{"c1", "c2", "c3"}[i%3], ClientName: "name" + strconv.Itoa(i%3),
			UserID: "u" + strconv.Itoa(i%5), TemplateURI: "items/{id}", HTTPMethod: []string{"GET", "POST"}[i%4/2], Status: []int{200, 404, 429, 503, 301}[i%5]}
		evs = append(evs, ev)
		if i%10 == 0 {
			evs = append(evs, ev)
		}
		k := dayKey{ev.OrganizationID, ev.ClientID, ev.Time.Format(time.DateOnly)}
		c := oracle[k]
		c.Add(usage.CountsFor(ev.Status))
		oracle[k] = c
	}
	outs, err := db.Append(ctx, evs, start.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if dups := len(outs) - len(slices.DeleteFunc(slices.Clone(outs), func(o usage.Outcome) bool { return o == usage.Duplicate })); dups != 60 {
		t.Fatalf("append: %d duplicates, want 60", dups)
	}
	seed := db.Seed()

	t.Run("store in use", func(t *testing.T) {
		_, err := tryCLI(t, nil, append([]string{"migrate", "--from", "pebble:" + dir}, target.args...)...)
		if err == nil || !strings.Contains(err.Error(), "stop it first") {
			t.Fatalf("migrate of a store in use: %v, want an error saying to stop the server", err)
		}
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	args := append([]string{"migrate", "--from", "pebble:" + dir, "--dedupe-window", "2d"}, target.args...)
	out := runCLI(t, nil, args...)
	t.Logf("usaged migrate:\n%s", out)
	for _, want := range []string{"raw events: none copied", "org1: ", "org2: ", ": same", "2 organizations", "2 query executions with 2 rows"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate printed no %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "DIFFERENT") {
		t.Errorf("migrate found differences:\n%s", out)
	}

	// The cluster's totals are the oracle's.
	s, err := clickhouse.Open(ctx, target.ch)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkTotals := func() {
		t.Helper()
		tables, err := s.ClientDayTotals(ctx)
		if err != nil || len(tables) != 3 {
			t.Fatalf("ClientDayTotals: %d tables, %v", len(tables), err)
		}
		for name, rows := range tables {
			got := map[dayKey]usage.Counts{}
			for _, r := range rows {
				got[dayKey{r.OrganizationID, r.ClientID, r.Date.Format(time.DateOnly)}] = r.Counts
			}
			if !reflect.DeepEqual(got, oracle) {
				t.Errorf("%s totals\n got %v\nwant %v", name, got, oracle)
			}
		}
	}
	checkTotals()

	// Every event of the window has its claim, committed at its hour, under
	// the key an event id hashes to with the store's seed; older ones none.
	opts, err := redis.ParseURL(target.ch.Claims)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	from := now.Add(-window).Truncate(time.Hour)
	claimed := 0
	for _, ev := range evs {
		x := xxh3.HashString128Seed(ev.ID, seed)
		h := binary.BigEndian.AppendUint64(nil, x.Hi)
		h = binary.BigEndian.AppendUint32(h, uint32(x.Lo))
		_, val, err := clustertest.Claim(ctx, rdb, target.ch.Database, 'e', ev.OrganizationID, [12]byte(h))
		hour := ev.Time.Truncate(time.Hour)
		switch {
		case hour.Before(from.Add(-time.Hour)) && errors.Is(err, redis.Nil):
		case hour.Before(from.Add(time.Hour)):
			// At the window's edge: which side depends on when migrate ran.
		case err == nil && val == "c|"+strconv.FormatInt(hour.Unix(), 10):
			claimed++
		default:
			t.Fatalf("claim of %s at %s: %q, %v", ev.ID, ev.Time, val, err)
		}
	}
	if claimed == 0 {
		t.Fatal("no claims checked")
	}

	meta, err := postgres.Open(ctx, postgres.Config{URL: target.pgURL, Schema: target.schema})
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	src, err := pebble.Open(pebble.Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	want := snapshotMetadata(t, src)
	src.Close()
	if got := snapshotMetadata(t, meta); !reflect.DeepEqual(got, want) {
		t.Errorf("metadata in PostgreSQL\n%+v\nwant\n%+v", got, want)
	}

	t.Run("again", func(t *testing.T) {
		out := runCLI(t, nil, args...)
		if strings.Contains(out, "DIFFERENT") || !strings.Contains(out, ": same") {
			t.Errorf("second migrate:\n%s", out)
		}
		checkTotals()
	})
}

// TestMigrateActivity moves a store with services' activity: migrate
// prints the comparison of every service's reports, all the same, and the
// cluster's reports are the oracle's; the dedupe record of an activity
// event within the window became its claim.
func TestMigrateActivity(t *testing.T) {
	target := newMigrateTarget(t)
	ctx := t.Context()
	dir := t.TempDir()
	db, err := pebble.Open(pebble.Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	g := storetest.NewActivityGen(3)
	o := storetest.NewActivityOracle()
	from := g.Start.AddDate(0, -1, 0)
	add := func(service usage.GUID, batch []usage.Activity) {
		t.Helper()
		want := o.Append(service, batch, from)
		got, err := db.AppendActivity(ctx, service, batch, from)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("AppendActivity: %v, %v; want %v", got, err, want)
		}
	}
	for range 20 {
		i := g.R.IntN(len(g.Casts))
		add(g.Casts[i].GUID, g.Batch(i, 100))
	}
	recent := usage.Activity{ID: "recent", Time: time.Now().Add(-time.Hour), Kind: usage.ActivityStorage, StorageBytes: 1}
	add(g.Casts[0].GUID, []usage.Activity{recent})
	seed := db.Seed()
	db.Close()

	out := runCLI(t, nil, append([]string{"migrate", "--from", "pebble:" + dir, "--dedupe-window", "2d"}, target.args...)...)
	t.Logf("usaged migrate:\n%s", out)
	if strings.Contains(out, "DIFFERENT") {
		t.Errorf("migrate found differences:\n%s", out)
	}
	for _, want := range []string{"activity: ", " records of 3 services", "verified the reports of every service"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate printed no %q:\n%s", want, out)
		}
	}
	for _, c := range g.Casts {
		if !regexp.MustCompile(c.GUID.String() + `: .*messages in the store (\d+), in the cluster (\d+): same`).MatchString(out) {
			t.Errorf("migrate printed no comparison of service %s:\n%s", c.GUID, out)
		}
	}

	s, err := clickhouse.Open(ctx, target.ch)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckReports(t, s, o, g)

	opts, err := redis.ParseURL(target.ch.Claims)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	x := xxh3.HashString128Seed(recent.ID, seed)
	h := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, x.Hi), uint32(x.Lo))
	if key, val, err := clustertest.Claim(ctx, rdb, target.ch.Database, 'a', g.Casts[0].GUID.String(), [12]byte(h)); err != nil || val != "c|"+strconv.FormatInt(recent.Time.Truncate(time.Hour).Unix(), 10) {
		t.Errorf("claim of the recent activity %s (in %s) = %q, %v; want committed at its hour", recent.ID, key, val, err)
	}
}

// compareReports lists every difference of a service's reports.
func TestCompareReports(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	day := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	service, user := usage.GUID{1}, usage.GUID{2}
	acts := []usage.Activity{
		{ID: "m", Time: day.Add(time.Hour), Kind: usage.ActivityMessage, User: user},
		{ID: "s", Time: day.Add(25 * time.Hour), Kind: usage.ActivityStorage, StorageBytes: 5},
	}
	spans := serviceSpans{}
	for _, a := range acts {
		spans.add(service, a.Time)
	}
	f := func(target []usage.Activity, diffs int, says ...string) {
		t.Helper()
		src, dst := memory.New(), memory.New()
		if _, err := src.AppendActivity(ctx, service, acts, day); err != nil {
			t.Fatal(err)
		}
		if _, err := dst.AppendActivity(ctx, service, target, day); err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		n, err := compareReports(ctx, &out, spans, src, dst)
		if err != nil || n != diffs {
			t.Errorf("%d differences, %v; want %d:\n%s", n, err, diffs, out.String())
		}
		for _, s := range says {
			if !strings.Contains(out.String(), s) {
				t.Errorf("comparison does not say %q:\n%s", s, out.String())
			}
		}
	}
	f(acts, 0, service.String()+": 2026-01-02 to 2026-01-03, 1 user, messages in the store 1, in the cluster 1: same")
	// The message missing: the totals, its day and its sender differ.
	f(acts[1:], 3, "DIFFERENT  service "+service.String()+" totals", "DIFFERENT  service "+service.String()+" on 2026-01-02",
		"DIFFERENT  service "+service.String()+" user "+user.String(), "messages in the store 1, in the cluster 0: 3 differences")
	// The gauge missing: the totals and its day differ.
	f(acts[:1], 2, " on 2026-01-03: store {Users:{Total:0 Pro:0 Guest:0 Disabled:0 Unregistered:0} StorageBytes:5")
}

func TestCompareTotals(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	row := func(org, client string, d time.Time, n int64) usage.Row {
		return usage.Row{OrganizationID: org, ClientID: client, Date: d, Counts: usage.Counts{Requests: n, Status200: n}}
	}
	source := []usage.Row{row("o", "a", day, 3), row("o", "b", day, 1), row("p", "a", day.Add(24*time.Hour), 2)}
	f := func(target []usage.Row, diffs int, says ...string) {
		t.Helper()
		var out strings.Builder
		if n := compareTotals(&out, source, map[string][]usage.Row{"t": target}); n != diffs {
			t.Errorf("%d differences, want %d:\n%s", n, diffs, out.String())
		}
		for _, s := range says {
			if !strings.Contains(out.String(), s) {
				t.Errorf("comparison does not say %q:\n%s", s, out.String())
			}
		}
	}
	f(source, 0, "o: 2 client days, requests in the store 4, in the cluster's t 4: same", "p: 1 client day")
	f(source[:2], 1, "DIFFERENT  p client a on 2026-01-03", "p: 1 client day, requests in the store 2, in the cluster's t 0: 1 difference")
	f(append(slices.Clone(source), row("q", "z", day, 1)), 1, "DIFFERENT  q client z")
	f([]usage.Row{row("o", "a", day, 3), row("o", "b", day, 2), source[2]}, 1, "DIFFERENT  o client b on 2026-01-02")
}

// A --from that holds no store is refused before anything is opened.
func TestMigrateNeedsAStore(t *testing.T) {
	t.Parallel()
	f := func(from, want string) {
		t.Helper()
		_, err := tryCLI(t, nil, "migrate", "--from", from, "--store", "clickhouse://127.0.0.1:1/x", "--keeper", "127.0.0.1:1",
			"--claims", "redis://127.0.0.1:1", "--metadata", "postgres://127.0.0.1:1/x")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("migrate --from %s: %v, want an error saying %q", from, err, want)
		}
	}
	dir := t.TempDir()
	f("pebble:"+dir, "no embedded store at "+dir+" (the directory is empty)")
	f("pebble:"+dir+"/missing", "no embedded store at "+dir+"/missing")
	f("memory:", "migrate moves an embedded store")
}
