package clickhouse_test

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/go-zookeeper/zk"
	"github.com/redis/go-redis/v9"

	"github.com/usaged/usaged/internal/clustertest"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/clickhouse"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/store/storetest"
	"github.com/usaged/usaged/usage"
)

// importSource is a hand-made embedded store's history: hourly groups in
// the order pebble's Export gives them, client names and dedupe records.
type importSource struct {
	groups  []usage.Row
	names   [][3]string
	records []importRecord
	// days is the oracle: per organization, day and client, the counts of
	// the events the groups were made of.
	days map[[3]string]usage.Counts
}

type importRecord struct {
	org  string
	hash [12]byte
	hour time.Time
}

func newImportSource(start time.Time, hours int) *importSource {
	r := rand.New(rand.NewPCG(1, 2))
	src := &importSource{days: map[[3]string]usage.Counts{}}
	groups := map[usage.Row]usage.Counts{}
	for i := range 2000 {
		ev := usage.Row{
			Date:           start.Add(time.Duration(r.IntN(hours)) * time.Hour),
			OrganizationID: fmt.Sprintf("org%d", r.IntN(3)),
			ClientID:       fmt.Sprintf("client%d", r.IntN(4)),
			UserID:         fmt.Sprintf("user%d", r.IntN(3)),
			TemplateURI:    []string{"a", "b/{id}"}[r.IntN(2)],
			HTTPMethod:     []string{"GET", "POST"}[r.IntN(2)],
		}
		c := usage.CountsFor([]int{200, 201, 302, 404, 429, 500}[r.IntN(6)])
		acc := groups[ev]
		acc.Add(c)
		groups[ev] = acc
		day := [3]string{ev.OrganizationID, ev.Date.Truncate(24 * time.Hour).Format(time.DateOnly), ev.ClientID}
		acc = src.days[day]
		acc.Add(c)
		src.days[day] = acc
		var h [12]byte
		binary.BigEndian.PutUint64(h[:], uint64(i)+1)
		src.records = append(src.records, importRecord{ev.OrganizationID, h, ev.Date})
	}
	for g, c := range groups {
		g.Counts = c
		src.groups = append(src.groups, g)
	}
	slices.SortFunc(src.groups, func(a, b usage.Row) int {
		return cmp.Or(strings.Compare(a.OrganizationID, b.OrganizationID), a.Date.Compare(b.Date),
			strings.Compare(a.ClientID, b.ClientID), strings.Compare(a.UserID, b.UserID),
			strings.Compare(a.TemplateURI, b.TemplateURI), strings.Compare(a.HTTPMethod, b.HTTPMethod))
	})
	for o := range 3 {
		for c := range 4 {
			src.names = append(src.names, [3]string{fmt.Sprintf("org%d", o), fmt.Sprintf("client%d", c), fmt.Sprintf("name %d.%d", o, c)})
		}
	}
	return src
}

func (src *importSource) importInto(t *testing.T, s *clickhouse.Store, cfg clickhouse.ImportConfig) clickhouse.ImportStats {
	t.Helper()
	ctx := context.Background()
	imp, err := s.Import(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range src.groups {
		if err := imp.Group(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range src.names {
		if err := imp.ClientName(ctx, n[0], n[1], n[2]); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range src.records {
		if err := imp.EventClaim(ctx, r.org, r.hash, r.hour); err != nil {
			t.Fatal(err)
		}
	}
	st, err := imp.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// checkTotals compares the cluster's totals per organization, client and
// day with the oracle's.
func (src *importSource) checkTotals(t *testing.T, s *clickhouse.Store) {
	t.Helper()
	tables, err := s.ClientDayTotals(context.Background())
	if err != nil || len(tables) != 3 {
		t.Fatalf("ClientDayTotals: %d tables, %v", len(tables), err)
	}
	for name, rows := range tables {
		got := map[[3]string]usage.Counts{}
		for _, r := range rows {
			got[[3]string{r.OrganizationID, r.Date.Format(time.DateOnly), r.ClientID}] = r.Counts
		}
		if !reflect.DeepEqual(got, src.days) {
			t.Errorf("totals from %s:\n got %v\nwant %v", name, got, src.days)
		}
	}
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	// Four days across a month's end; the window starts on the third. Now
	// is the real time: Redis expires claims by its own clock.
	start := time.Date(2026, 1, 30, 0, 0, 0, 0, time.UTC)
	now := time.Now().Truncate(time.Millisecond)
	src := newImportSource(start, 4*24)
	icfg := clickhouse.ImportConfig{Seed: 0x0123456789abcdef, DedupeFrom: start.Add(2*24*time.Hour + 30*time.Minute), Now: func() time.Time { return now }, BlockRows: 97}
	st := src.importInto(t, s, icfg)
	if st.Groups != len(src.groups) || st.Names != len(src.names) || st.Claims+st.Expired != len(src.records) || st.Claims == 0 || st.Expired == 0 {
		t.Errorf("stats %+v: want %d groups, %d names, %d records in all, some claimed and some expired", st, len(src.groups), len(src.names), len(src.records))
	}
	if st.Batches <= 2*3 { // at least one per organization and month, and more of the blocks are full
		t.Errorf("%d batches for %d groups in blocks of %d", st.Batches, st.Groups, icfg.BlockRows)
	}
	src.checkTotals(t, s)
	checkSeed(t, cfg, icfg.Seed)
	checkClaims(t, cfg, src, icfg, now)
	checkNames(t, cfg, src)

	t.Run("again", func(t *testing.T) {
		// A second run, as after a crash, writes the same blocks and claims:
		// nothing changes.
		if again := src.importInto(t, s, icfg); again != st {
			t.Errorf("second run: stats %+v, first %+v", again, st)
		}
		src.checkTotals(t, s)
		checkClaims(t, cfg, src, icfg, now)
		checkNames(t, cfg, src)
	})
	t.Run("after events", func(t *testing.T) {
		// Once the cluster has recorded events, the import is done: a run
		// now could count twice.
		conn, err := ch.Open(&ch.Options{Addr: cfg.Replicas[:1]})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b, err := conn.PrepareBatch(ctx, "INSERT INTO "+cfg.Database+".events (batch_id, org_id, hour, client_id, event_id)")
		if err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(b.Append("b", "org0", now.Truncate(time.Hour), "client0", "e"), b.Send()); err != nil {
			t.Fatal(err)
		}
		_, err = s.Import(ctx, icfg)
		if !errors.Is(err, clickhouse.ErrNotEmpty) || !strings.Contains(err.Error(), "the import is done") {
			t.Fatalf("import after events: %v, want ErrNotEmpty saying the import is done", err)
		}
	})
	t.Run("another source", func(t *testing.T) {
		other := icfg
		other.Seed++
		_, err := s.Import(ctx, other)
		if !errors.Is(err, clickhouse.ErrNotEmpty) || !strings.Contains(err.Error(), "another store") {
			t.Fatalf("import of another store: %v, want ErrNotEmpty saying it holds another store", err)
		}
	})
}

func TestImportRefusesUsedDatabase(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	rdb := redisClient(t, cfg)
	if err := rdb.Set(ctx, "usaged:"+cfg.Database+":e:org:00", "c|0", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Import(ctx, clickhouse.ImportConfig{Seed: 1, DedupeFrom: time.Now()})
	if !errors.Is(err, clickhouse.ErrNotEmpty) || !strings.Contains(err.Error(), "claims") {
		t.Fatalf("import into a database with claims: %v, want ErrNotEmpty naming the claims", err)
	}
}

// mustOpen opens a store on cfg, closed at cleanup.
func mustOpen(t *testing.T, cfg clickhouse.Config) *clickhouse.Store {
	t.Helper()
	s, err := clickhouse.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func redisClient(t *testing.T, cfg clickhouse.Config) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(cfg.Claims)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func checkSeed(t *testing.T, cfg clickhouse.Config, seed uint64) {
	t.Helper()
	conn, _, err := zk.Connect(cfg.Keeper, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data, _, err := conn.Get("/usaged/" + cfg.Database + "/seed")
	if err != nil {
		t.Fatal(err)
	}
	if want := binary.BigEndian.AppendUint64(nil, seed); string(data) != string(want) {
		t.Errorf("keeper seed %x, want %x", data, want)
	}
}

// checkClaims looks up the claim of every dedupe record: committed at its
// hour, for the records in the window, in a hash expiring no earlier than
// an hour after the window has passed the record, and no later than the
// latest record's; none for the others.
func checkClaims(t *testing.T, cfg clickhouse.Config, src *importSource, icfg clickhouse.ImportConfig, now time.Time) {
	t.Helper()
	ctx := context.Background()
	rdb := redisClient(t, cfg)
	from := icfg.DedupeFrom.Truncate(time.Hour)
	expiry := func(hour time.Time) time.Time {
		return latest(hour.Add(now.Sub(icfg.DedupeFrom)+2*time.Hour), now.Add(time.Hour))
	}
	var last time.Time
	for _, r := range src.records {
		last = latest(last, expiry(r.hour))
	}
	for _, r := range src.records {
		key, val, err := clustertest.Claim(ctx, rdb, cfg.Database, 'e', r.org, r.hash)
		if r.hour.Before(from) {
			if !errors.Is(err, redis.Nil) {
				t.Fatalf("record of %s at %s, before the window: claim %q, %v; want none", r.org, r.hour, val, err)
			}
			continue
		}
		if err != nil || val != "c|"+strconv.FormatInt(r.hour.Unix(), 10) {
			t.Fatalf("claim of %s %x = %q, %v; want committed at %s", r.org, r.hash, val, err, r.hour)
		}
		at, err := rdb.Do(ctx, "PEXPIRETIME", key).Int64()
		if want := expiry(r.hour); err != nil || at < want.UnixMilli() || at > last.UnixMilli() {
			t.Fatalf("claim hash %s expires at %d, %v; want from %s to %s", key, at, err, want, last)
		}
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// checkNames reads the client names straight from the table.
func checkNames(t *testing.T, cfg clickhouse.Config, src *importSource) {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: cfg.Replicas[:1]})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(context.Background(), "SELECT org_id, client_id, argMax(client_name, seq), count() FROM "+cfg.Database+".client_names GROUP BY org_id, client_id ORDER BY org_id, client_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got [][3]string
	for rows.Next() {
		var n [3]string
		var copies uint64
		if err := rows.Scan(&n[0], &n[1], &n[2], &copies); err != nil {
			t.Fatal(err)
		}
		if copies != 1 {
			t.Errorf("client %s of %s has %d rows, want 1", n[1], n[0], copies)
		}
		got = append(got, n)
	}
	if !reflect.DeepEqual(got, src.names) {
		t.Errorf("client names\n got %q\nwant %q", got, src.names)
	}
}

// TestImportActivity moves an embedded store's activity into the cluster:
// every report then answers what the oracle does, a second run changes
// nothing, and activity recorded on the cluster afterwards (duplicates of
// imported ids within the window among it) adds to the imported.
func TestImportActivity(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	g := storetest.NewActivityGen(7)
	o := storetest.NewActivityOracle()
	longAgo := g.Start.AddDate(0, -1, 0)

	src, err := pebble.Open(pebble.Config{Dir: t.TempDir(), FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	imported := map[string]bool{} // the ids the embedded store accepted
	appendAll := func(st store.ActivityAppender, n int, from time.Time) (outs []usage.Outcome, ids []string) {
		t.Helper()
		for n > 0 {
			i := g.R.IntN(len(g.Casts))
			batch := g.Batch(i, min(n, 1+g.R.IntN(200)))
			n -= len(batch)
			want := o.Append(g.Casts[i].GUID, batch, from)
			got, err := st.AppendActivity(ctx, g.Casts[i].GUID, batch, from)
			if err != nil {
				t.Fatal(err)
			}
			for j, a := range batch {
				if got[j] != want[j] {
					t.Fatalf("AppendActivity: event %d (id %q, %s at %s) is %v, want %v", j, a.ID, a.Kind, a.Time, got[j], want[j])
				}
				ids = append(ids, a.ID)
			}
			outs = append(outs, got...)
		}
		return outs, ids
	}
	_, ids := appendAll(src, 4000, longAgo)
	for _, id := range ids {
		imported[id] = true
	}

	// The window starts at midnight in the middle of the activity: a claim
	// is the hour of its event, the oracle's window the exact time.
	now := time.Now().Truncate(time.Millisecond)
	icfg := clickhouse.ImportConfig{Seed: src.Seed(), DedupeFrom: g.Start.AddDate(0, 0, g.Days/2), Now: func() time.Time { return now }, BlockRows: 97}
	importActivity := func() (clickhouse.ImportStats, int) {
		t.Helper()
		imp, err := s.Import(ctx, icfg)
		if err != nil {
			t.Fatal(err)
		}
		records := 0
		count := func(err error) error { records++; return err }
		err = src.Export(ctx, pebble.ExportVisitor{
			ServiceDays: func(svc usage.GUID, day time.Time, v usage.ServiceTally) error {
				return count(imp.ServiceDay(ctx, svc, day, v))
			},
			UserDays: func(svc usage.GUID, day time.Time, v usage.UserTally) error {
				return count(imp.UserDay(ctx, svc, day, v))
			},
			Gauges:     func(svc usage.GUID, a usage.Activity) error { return count(imp.Gauge(ctx, svc, a)) },
			UserEvents: func(svc usage.GUID, a usage.Activity) error { return count(imp.UserEvent(ctx, svc, a)) },
			Dedupe: func(r pebble.DedupeRecord) error {
				return imp.ActivityClaim(ctx, r.Service, r.Hash, r.Hour)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		st, err := imp.Finish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st, records
	}
	st, records := importActivity()
	if st.Activity != records || st.Batches <= 3*4 || st.Claims == 0 || st.Expired == 0 {
		t.Errorf("stats %+v: want %d activity records in more than a batch per service and kind, some claims within the window and some before it", st, records)
	}
	storetest.CheckReports(t, s, o, g)

	t.Run("again", func(t *testing.T) {
		if again, _ := importActivity(); again != st {
			t.Errorf("second run: stats %+v, first %+v", again, st)
		}
		storetest.CheckReports(t, s, o, g)
	})

	t.Run("then activity", func(t *testing.T) {
		// A node opened after the import, as usaged's are: it hashes ids
		// with the seed the import set.
		s := mustOpen(t, cfg)
		outs, ids := appendAll(s, 2000, icfg.DedupeFrom)
		var dup, again int // imported ids: duplicates within the window, accepted again before it
		for i, id := range ids {
			switch {
			case !imported[id]:
			case outs[i] == usage.Duplicate:
				dup++
			default:
				again++
			}
		}
		if dup == 0 || again == 0 {
			t.Fatalf("of the imported ids sent again, %d were duplicates and %d accepted again: the test checks neither", dup, again)
		}
		storetest.CheckReports(t, s, o, g)
	})
}
