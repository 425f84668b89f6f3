package clickhouse_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/clickhouse"
	"github.com/usaged/usaged/store/memory"
	"github.com/usaged/usaged/store/storetest"
	"github.com/usaged/usaged/usage"
)

// The read side is checked against tables written as committed batches
// leave them (export_test.go), without the write protocol: the counts
// against storetest's oracle, which counts by hand, the events against the
// accepted ones sorted by hand, the reports against the memory backend.

func openStore(t *testing.T) *clickhouse.Store {
	t.Helper()
	s, err := clickhouse.Open(t.Context(), testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eventFixture is a store holding the accepted events of a generator in
// published batches, and a batch that never committed.
type eventFixture struct {
	s        *clickhouse.Store
	g        *storetest.Gen
	o        *storetest.Oracle
	ghosts   []usage.Event // the events of the batch that never committed
	accepted map[string][]usage.Event
}

func newEventFixture(t *testing.T) *eventFixture {
	t.Helper()
	f := &eventFixture{s: openStore(t), g: storetest.NewGen(7), o: storetest.NewOracle(), accepted: map[string][]usage.Event{}}
	r := f.g.R
	var (
		batches []clickhouse.EventBatch
		batch   []usage.Event
	)
	flush := func() {
		seq := uint64(len(batches) + 1)
		batches = append(batches, clickhouse.EventBatch{ID: fmt.Sprintf("batch-%03d", seq), Seq: seq, Events: batch, Published: true})
		batch = nil
	}
	for range 4000 {
		ev := f.g.Event()
		ev.DurationMs, ev.RequestBytes, ev.ResponseBytes = r.Int64N(5000), r.Int64N(1<<20), r.Int64N(1<<40)
		if r.IntN(20) == 0 {
			ev.Time = ev.Time.Truncate(time.Second) // a whole second, a bound the listing must keep
		}
		if f.o.Offer(ev) == usage.Accepted {
			batch = append(batch, ev)
			f.accepted[ev.OrganizationID] = append(f.accepted[ev.OrganizationID], ev)
		}
		if len(batch) > 1+r.IntN(400) {
			flush()
		}
	}
	flush()
	for i := range 200 {
		ev := f.g.Event()
		ev.ID = fmt.Sprintf("ghost-%d", i)
		f.ghosts = append(f.ghosts, ev)
	}
	batches = append(batches, clickhouse.EventBatch{ID: "batch-never-committed", Seq: uint64(len(batches) + 1), Events: f.ghosts})
	if err := f.s.WriteEvents(t.Context(), batches...); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SyncReplicas(t.Context()); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestEventReads(t *testing.T) {
	f := newEventFixture(t)
	t.Run("QueryMatchesOracle", func(t *testing.T) { testQuery(t, f) })
	t.Run("ClientNamesMatchOracle", func(t *testing.T) { testClientNames(t, f) })
	t.Run("ListEventsPages", func(t *testing.T) { testListEvents(t, f) })
	t.Run("ListEventsCursor", func(t *testing.T) { testCursor(t, f) })
	t.Run("ReadsFallBackToNextReplica", func(t *testing.T) { testFallback(t, f) })
}

func testQuery(t *testing.T, f *eventFixture) {
	for i := range 300 {
		q := f.g.RandomQuery(t)
		want := f.o.Answer(q)
		got, err := f.s.Query(t.Context(), q)
		if err != nil {
			t.Fatalf("query %d, Query(%+v): %v", i, q, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("query %d, Query(%+v):\n got %d rows %v\nwant %d rows %v", i, q, len(got), head(got), len(want), head(want))
		}
		if got, err = f.s.QueryWithoutRollup(t.Context(), q); err != nil || !slices.Equal(got, want) {
			t.Fatalf("query %d, from event_counts alone, Query(%+v) = %d rows %v, %v\nwant %d rows %v", i, q, len(got), head(got), err, len(want), head(want))
		}
	}

	// The organization query of a dashboard, which the daily rollup answers.
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, g := range []usage.Granularity{usage.GranularityNone, usage.GranularityDay, usage.GranularityWeek, usage.GranularityMonth} {
		q, _ := usage.Query{OrganizationID: "org-b", Interval: usage.Interval{Start: start, End: start.AddDate(0, 0, 90)},
			Granularity: g, GroupBy: []usage.Dimension{usage.DimClientID, usage.DimOrganizationID}}.Normalize()
		if tables := clickhouse.PlanTables(q); !slices.Equal(tables, []string{"client_day_counts"}) {
			t.Fatalf("%+v reads %v, not the daily rollup alone", q, tables)
		}
		if got, err := f.s.Query(t.Context(), q); err != nil || !slices.Equal(got, f.o.Answer(q)) || len(got) == 0 {
			t.Fatalf("Query(%+v) = %v, %v\nwant %v", q, head(got), err, head(f.o.Answer(q)))
		}
	}

	// MaxRows bounds the groups, also where the rows are summed here (by
	// client at a rollup's own resolution), which outnumber them.
	for _, g := range [][]usage.Dimension{nil, {usage.DimClientID}} {
		big, _ := usage.Query{OrganizationID: "org-a", Interval: usage.Interval{Start: start, End: start.AddDate(0, 2, 0)},
			Granularity: usage.GranularityDay, GroupBy: g, MaxRows: 3}.Normalize()
		for _, rollup := range []bool{true, false} {
			query := f.s.Query
			if !rollup {
				query = f.s.QueryWithoutRollup
			}
			if rows, err := query(t.Context(), big); usage.KindOf(err) != usage.KindInvalid {
				t.Fatalf("by %v, rollup %v: Query over MaxRows = %d rows, %v; want an invalid-query error", g, rollup, len(rows), err)
			}
			exact := big
			exact.MaxRows = len(f.o.Answer(big))
			if rows, err := query(t.Context(), exact); err != nil || !slices.Equal(rows, f.o.Answer(big)) {
				t.Fatalf("by %v, rollup %v: Query with MaxRows %d, its rows = %d rows, %v", g, rollup, exact.MaxRows, len(rows), err)
			}
		}
	}
	for _, q := range []usage.Query{
		{OrganizationID: "nobody", Interval: usage.Interval{Start: start, End: start.AddDate(0, 1, 0)}},
		{OrganizationID: "org-a", Interval: usage.Interval{Start: start, End: start.AddDate(0, 1, 0)}, Filter: usage.Filter{ClientNames: []string{"nobody's"}}},
		{OrganizationID: "org-a", Interval: usage.Interval{End: start.AddDate(-1, 0, 0)}},
	} {
		q, _ = q.Normalize()
		if rows, err := f.s.Query(t.Context(), q); err != nil || len(rows) != 0 {
			t.Fatalf("Query(%+v) = %v, %v; want no rows", q, rows, err)
		}
	}
	all, _ := usage.Query{OrganizationID: "org-c", Interval: usage.Interval{End: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}}.Normalize()
	if got, err := f.s.Query(t.Context(), all); err != nil || !slices.Equal(got, f.o.Answer(all)) {
		t.Fatalf("Query over all time = %v, %v; want %v", got, err, f.o.Answer(all))
	}
}

func head(rows []usage.Row) []usage.Row { return rows[:min(len(rows), 5)] }

func TestPlanTables(t *testing.T) {
	day := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	f := func(q usage.Query, want ...string) {
		t.Helper()
		if q.Interval.Start.IsZero() {
			q.Interval = usage.Interval{Start: day, End: day.AddDate(0, 0, 90)}
		}
		if got := clickhouse.PlanTables(q); !slices.Equal(got, want) {
			t.Errorf("PlanTables(%+v) = %v, want %v", q, got, want)
		}
	}
	byClient := []usage.Dimension{usage.DimClientID}
	f(usage.Query{Granularity: usage.GranularityDay, GroupBy: byClient}, "client_day_counts")
	f(usage.Query{Granularity: usage.GranularityNone}, "client_day_counts")
	f(usage.Query{Granularity: usage.GranularityWeek, GroupBy: []usage.Dimension{usage.DimClientID, usage.DimOrganizationID}}, "client_day_counts")
	f(usage.Query{Granularity: usage.GranularityMonth, Filter: usage.Filter{ClientIDs: []string{"c"}, ClientNames: []string{"n"}}}, "client_day_counts")
	f(usage.Query{Granularity: usage.GranularityHour, GroupBy: byClient}, "client_hour_counts")
	f(usage.Query{Granularity: usage.GranularityDay, GroupBy: []usage.Dimension{usage.DimUserID}}, "event_counts")
	f(usage.Query{Granularity: usage.GranularityDay, Filter: usage.Filter{Platforms: []string{"p"}}}, "event_counts")
	f(usage.Query{Granularity: usage.GranularityHour, Filter: usage.Filter{TemplateURIs: []string{"t"}}}, "event_counts")
	// The 90 days ending now: whole days from the daily rollup, the edges
	// from the hourly one; less than a whole day, all from the hourly one.
	f(usage.Query{Granularity: usage.GranularityDay, GroupBy: byClient,
		Interval: usage.Interval{Start: day.Add(17 * time.Hour), End: day.AddDate(0, 0, 90).Add(17 * time.Hour)}},
		"client_day_counts", "client_hour_counts")
	f(usage.Query{Granularity: usage.GranularityDay, Interval: usage.Interval{Start: day.Add(time.Hour), End: day.AddDate(0, 0, 1)}}, "client_hour_counts")
	f(usage.Query{Granularity: usage.GranularityDay, Interval: usage.Interval{Start: day, End: day.Add(23 * time.Hour)}}, "client_hour_counts")
	f(usage.Query{Granularity: usage.GranularityMonth, Interval: usage.Interval{Start: day, End: day.AddDate(0, 0, 2).Add(time.Hour)}},
		"client_day_counts", "client_hour_counts")
}

func TestPlanSQL(t *testing.T) {
	day := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	f := func(q usage.Query, clients []string, rollups bool, want []string, wantArgs ...[]any) {
		t.Helper()
		q.OrganizationID, q.MaxRows = "o", 10
		if q.Interval.End.IsZero() {
			q.Interval = usage.Interval{Start: day, End: day.AddDate(0, 0, 90)}
		}
		got, args := clickhouse.PlanSQL("db", q, clients, rollups)
		if !slices.Equal(got, want) || !reflect.DeepEqual(args, wantArgs) {
			t.Errorf("PlanSQL(%+v, %v, %v) =\n %q %v\nwant\n %q %v", q, clients, rollups, got, args, want, wantArgs)
		}
	}
	sums := "sum(requests), sum(status_2xx), sum(status_3xx), sum(status_4xx), sum(status_5xx), sum(status_429)"
	counts := "requests, status_2xx, status_3xx, status_4xx, status_5xx, status_429"
	in := func(values ...any) any { return ch.GroupSet{Value: values} }

	// The organization query, from the daily rollup, whose rows are its
	// groups but for the parts not merged yet.
	f(usage.Query{Granularity: usage.GranularityDay, GroupBy: []usage.Dimension{usage.DimClientID}}, nil, true,
		[]string{"SELECT toUInt32(toDateTime(day, 'UTC')) AS bucket, client_id, " + counts + " FROM db.client_day_counts" +
			" WHERE org_id = ? AND day >= toDate(?) AND day < toDate(?) ORDER BY bucket, client_id"},
		[]any{"o", "2026-03-11", "2026-06-09"})
	f(usage.Query{Granularity: usage.GranularityHour, GroupBy: []usage.Dimension{usage.DimClientID}}, []string{"c"}, true,
		[]string{"SELECT toUInt32(hour) AS bucket, client_id, " + counts + " FROM db.client_hour_counts" +
			" WHERE org_id = ? AND hour >= toDateTime(?) AND hour < toDateTime(?) AND client_id IN ? ORDER BY bucket, client_id"},
		[]any{"o", day.Unix(), day.AddDate(0, 0, 90).Unix(), in("c")})
	f(usage.Query{Granularity: usage.GranularityWeek}, []string{"c1", "c2"}, true,
		[]string{"SELECT toUInt32(toDateTime(toMonday(day), 'UTC')) AS bucket, " + sums + " FROM db.client_day_counts" +
			" WHERE org_id = ? AND day >= toDate(?) AND day < toDate(?) AND client_id IN ? GROUP BY bucket ORDER BY bucket LIMIT 11"},
		[]any{"o", "2026-03-11", "2026-06-09", in("c1", "c2")})
	// Ending mid-day: the edges from the hourly rollup, in one SELECT.
	start, end := day.Add(18*time.Hour), day.AddDate(0, 0, 90).Add(18*time.Hour)
	f(usage.Query{Granularity: usage.GranularityDay, GroupBy: []usage.Dimension{usage.DimClientID}, Interval: usage.Interval{Start: start, End: end}}, nil, true,
		[]string{
			"SELECT toUInt32(toDateTime(day, 'UTC')) AS bucket, client_id, " + counts + " FROM db.client_day_counts" +
				" WHERE org_id = ? AND day >= toDate(?) AND day < toDate(?) ORDER BY bucket, client_id",
			"SELECT toUInt32(toDateTime(toDate(hour, 'UTC'), 'UTC')) AS bucket, client_id, " + sums + " FROM db.client_hour_counts" +
				" WHERE org_id = ? AND ((hour >= toDateTime(?) AND hour < toDateTime(?)) OR (hour >= toDateTime(?) AND hour < toDateTime(?)))" +
				" GROUP BY bucket, client_id ORDER BY bucket, client_id LIMIT 11",
		},
		[]any{"o", "2026-03-12", "2026-06-09"},
		[]any{"o", start.Unix(), day.AddDate(0, 0, 1).Unix(), day.AddDate(0, 0, 90).Unix(), end.Unix()})
	// Every other, from the hourly counts; the organization is no column.
	f(usage.Query{Granularity: usage.GranularityHour, GroupBy: []usage.Dimension{usage.DimOrganizationID, usage.DimPlatform},
		Filter: usage.Filter{UserIDs: []string{"u"}, HTTPMethods: []string{"GET"}}}, []string{"c"}, true,
		[]string{"SELECT toUInt32(hour) AS bucket, platform, " + sums + " FROM db.event_counts" +
			" WHERE org_id = ? AND hour >= toDateTime(?) AND hour < toDateTime(?) AND user_id IN ? AND method IN ? AND client_id IN ?" +
			" GROUP BY bucket, platform ORDER BY bucket, platform LIMIT 11"},
		[]any{"o", day.Unix(), day.AddDate(0, 0, 90).Unix(), in("u"), in("GET"), in("c")})
	f(usage.Query{Granularity: usage.GranularityMonth, Interval: usage.Interval{End: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)}}, nil, false,
		[]string{"SELECT toUInt32(toDateTime(toStartOfMonth(toDate(hour, 'UTC')), 'UTC')) AS bucket, " + sums + " FROM db.event_counts" +
			" WHERE org_id = ? AND hour >= toDateTime(?) AND hour < toDateTime(?) GROUP BY bucket ORDER BY bucket LIMIT 11"},
		[]any{"o", int64(0), int64(1<<32 - 1)})
}

func testClientNames(t *testing.T, f *eventFixture) {
	for _, org := range append(slices.Clone(f.g.Orgs), "nobody") {
		got, err := f.s.ClientNames(t.Context(), org)
		if want := f.o.ClientNames(org); err != nil || !maps.Equal(got, want) {
			t.Fatalf("ClientNames(%s) = %v, %v; want %v", org, got, err, want)
		}
	}
}

// listing returns, by hand, what a listing of p must return in all: the
// accepted events of p's organization that p selects, in order.
func (f *eventFixture) listing(p store.EventPage) []usage.Event {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	var out []usage.Event
	for _, ev := range f.accepted[p.OrganizationID] {
		if !ev.Time.Before(p.Interval.Start) && ev.Time.Before(p.Interval.End) && in(p.ClientIDs, ev.ClientID) &&
			in(p.UserIDs, ev.UserID) && in(p.TemplateURIs, ev.TemplateURI) && in(p.HTTPMethods, ev.HTTPMethod) {
			out = append(out, ev)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ClientID, b.ClientID), cmp.Compare(a.ID, b.ID)) < 0
	})
	return out
}

// listAll lists every page of p, checking that no page is longer than
// p.Limit and that only the last has no cursor.
func listAll(t *testing.T, s store.EventLister, p store.EventPage) []usage.Event {
	t.Helper()
	var all []usage.Event
	for pages := 0; ; pages++ {
		evs, next, err := s.ListEvents(t.Context(), p)
		if err != nil {
			t.Fatalf("ListEvents(%+v), page %d: %v", p, pages, err)
		}
		if len(evs) > p.Limit || next != "" && len(evs) != p.Limit {
			t.Fatalf("ListEvents(%+v), page %d: %d events and cursor %q", p, pages, len(evs), next)
		}
		all = append(all, evs...)
		if next == "" {
			return all
		}
		p.After = next
	}
}

func sameEvents(got, want []usage.Event) string {
	for i := range max(len(got), len(want)) {
		if i >= len(got) || i >= len(want) {
			return fmt.Sprintf("%d events, want %d", len(got), len(want))
		}
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) || g.Time.Location() != time.UTC {
			return fmt.Sprintf("event %d (%s) at %s, want %s in UTC", i, w.ID, g.Time.Format(time.RFC3339Nano), w.Time.Format(time.RFC3339Nano))
		}
		g.Time = w.Time
		if g != w {
			return fmt.Sprintf("event %d is %+v, want %+v", i, g, w)
		}
	}
	return ""
}

func testListEvents(t *testing.T, f *eventFixture) {
	r := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	whole := usage.Interval{Start: start, End: start.AddDate(0, 3, 0)}
	for _, org := range f.g.Orgs {
		for _, limit := range []int{97, 5000} {
			p := store.EventPage{OrganizationID: org, Interval: whole, Limit: limit}
			want := f.listing(p)
			if d := sameEvents(listAll(t, f.s, p), want); d != "" {
				t.Fatalf("ListEvents(%s, all, pages of %d): %s", org, limit, d)
			}
			if len(want) != len(f.accepted[org]) {
				t.Fatalf("the whole span lists %d of %s's %d events", len(want), org, len(f.accepted[org]))
			}
		}
	}
	pick := func(from []string) []string {
		if r.IntN(3) != 0 {
			return nil
		}
		return []string{from[r.IntN(len(from))], from[r.IntN(len(from))], "never-seen"}
	}
	field := func(evs []usage.Event, get func(usage.Event) string) []string {
		var out []string
		for _, ev := range evs {
			out = append(out, get(ev))
		}
		return out
	}
	for i := range 60 {
		org := f.g.Orgs[r.IntN(len(f.g.Orgs))]
		evs := f.accepted[org]
		// Bounds on an event's exact time, so that both ends are tested.
		a, b := evs[r.IntN(len(evs))].Time, evs[r.IntN(len(evs))].Time
		if b.Before(a) {
			a, b = b, a
		}
		p := store.EventPage{
			OrganizationID: org, Interval: usage.Interval{Start: a, End: b}, Limit: 1 + r.IntN(40),
			ClientIDs:    pick(field(evs, func(ev usage.Event) string { return ev.ClientID })),
			UserIDs:      pick(field(evs, func(ev usage.Event) string { return ev.UserID })),
			TemplateURIs: pick(field(evs, func(ev usage.Event) string { return ev.TemplateURI })),
			HTTPMethods:  pick(field(evs, func(ev usage.Event) string { return ev.HTTPMethod })),
		}
		if i%10 == 0 {
			p.Limit = 1
			p.Interval.End = p.Interval.Start.Add(12 * time.Hour)
		}
		if d := sameEvents(listAll(t, f.s, p), f.listing(p)); d != "" {
			t.Fatalf("ListEvents(%+v): %s", p, d)
		}
	}

	// The batch that never committed is in the journal, and never listed.
	for _, org := range f.g.Orgs {
		evs, _, err := f.s.ListEvents(t.Context(), store.EventPage{OrganizationID: org, Interval: whole, Limit: 100_000})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if slices.ContainsFunc(f.ghosts, func(g usage.Event) bool { return g.ID == ev.ID }) {
				t.Fatalf("ListEvents lists %s of a batch that never committed", ev.ID)
			}
		}
	}
	if evs, next, err := f.s.ListEvents(t.Context(), store.EventPage{OrganizationID: "nobody", Interval: whole, Limit: 10}); err != nil || len(evs) != 0 || next != "" {
		t.Fatalf("ListEvents(nobody) = %v, %q, %v; want nothing", evs, next, err)
	}
}

func testCursor(t *testing.T, f *eventFixture) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	p := store.EventPage{OrganizationID: "org-a", Interval: usage.Interval{Start: start, End: start.AddDate(0, 3, 0)}, Limit: 3}
	_, next, err := f.s.ListEvents(t.Context(), p)
	if err != nil || next == "" {
		t.Fatalf("ListEvents = cursor %q, %v", next, err)
	}
	for _, bad := range []string{"!!", "AAAA", next[:len(next)-2], next + "AA", "x" + next} {
		p.After = bad
		_, _, err := f.s.ListEvents(t.Context(), p)
		var ue *usage.Error
		if !errors.As(err, &ue) || ue.Kind != usage.KindInvalid || ue.Field != "cursor" {
			t.Errorf("ListEvents(after %q) = %v; want an invalid cursor error", bad, err)
		}
	}
	p.After, p.Limit = "", 0
	if _, _, err := f.s.ListEvents(t.Context(), p); usage.KindOf(err) != usage.KindInvalid {
		t.Errorf("ListEvents(limit 0) = %v; want an invalid-argument error", err)
	}
}

// testFallback reads through a store whose first replica nobody answers,
// with sequential consistency.
func testFallback(t *testing.T, f *eventFixture) {
	s, closeDead, err := f.s.BehindUnreachable("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer closeDead()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	q, _ := usage.Query{OrganizationID: "org-a", Interval: usage.Interval{Start: start, End: start.AddDate(0, 3, 0)},
		Granularity: usage.GranularityDay, GroupBy: []usage.Dimension{usage.DimClientID}}.Normalize()
	if got, err := s.Query(t.Context(), q); err != nil || !slices.Equal(got, f.o.Answer(q)) {
		t.Fatalf("Query = %v, %v; want %v", head(got), err, head(f.o.Answer(q)))
	}
	if got, err := s.ClientNames(t.Context(), "org-a"); err != nil || !maps.Equal(got, f.o.ClientNames("org-a")) {
		t.Fatalf("ClientNames = %v, %v", got, err)
	}
	p := store.EventPage{OrganizationID: "org-a", Interval: q.Interval, Limit: 1000}
	if d := sameEvents(listAll(t, s, p), f.listing(p)); d != "" {
		t.Fatalf("ListEvents: %s", d)
	}
	if _, err := s.ServiceTotals(t.Context(), usage.GUID{1}, start, start.AddDate(0, 1, 0)); err != nil {
		t.Fatalf("ServiceTotals: %v", err)
	}
}

func TestReportsMatchMemory(t *testing.T) {
	s := openStore(t)
	want := memory.New()
	defer want.Close()
	g := storetest.NewActivityGen(5)
	longAgo := g.Start.AddDate(0, -1, 0)
	var batches []clickhouse.ActivityBatch
	for n := 0; n < 3000; {
		i := g.R.IntN(len(g.Casts))
		svc, batch := g.Casts[i].GUID, g.Batch(i, 1+g.R.IntN(200))
		n += len(batch)
		outs, err := want.AppendActivity(t.Context(), svc, batch, longAgo)
		if err != nil {
			t.Fatal(err)
		}
		var accepted []usage.Activity
		for j, o := range outs {
			if o == usage.Accepted {
				accepted = append(accepted, batch[j])
			}
		}
		batches = append(batches, clickhouse.ActivityBatch{ID: fmt.Sprintf("batch-%03d", len(batches)), Service: svc, Events: accepted, Published: true})
	}
	// Batches that never committed: in the journal, never counted.
	for i, c := range g.Casts {
		batches = append(batches, clickhouse.ActivityBatch{ID: fmt.Sprintf("never-committed-%d", i), Service: c.GUID, Events: g.Batch(i, 100)})
	}
	if err := s.WriteActivity(t.Context(), batches...); err != nil {
		t.Fatal(err)
	}

	check := func(what string, got, want any, gotErr, wantErr error) {
		t.Helper()
		if gotErr != nil || wantErr != nil {
			t.Fatalf("%s: %v (memory: %v)", what, gotErr, wantErr)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
		}
	}
	type span struct{ from, to time.Time }
	var spans []span
	for d := -1; d <= g.Days; d++ {
		spans = append(spans, span{g.Start.AddDate(0, 0, d), g.Start.AddDate(0, 0, d+1)})
	}
	for m := usage.PeriodOf(usage.Monthly, g.Start.AddDate(0, -1, 0)); m.Start.Before(g.Start.AddDate(0, 0, g.Days+31)); m = usage.PeriodOf(usage.Monthly, m.End()) {
		spans = append(spans, span{m.Start, m.End()})
	}
	spans = append(spans, span{g.Start.AddDate(0, 0, -2), g.Start.AddDate(0, 0, g.Days+2)},
		span{g.Start.AddDate(0, 0, 10), g.Start.AddDate(0, 0, 10).Add(90 * time.Minute)})
	ctx := t.Context()
	services := []usage.GUID{{0xee, 1}}
	var users []usage.GUID
	for _, c := range g.Casts {
		services = append(services, c.GUID)
		users = append(users, c.Users...)
		users = append(users, c.Outsiders...)
	}
	for _, svc := range services {
		for i, sp := range spans {
			got, err := s.ServiceTotals(ctx, svc, sp.from, sp.to)
			w, werr := want.ServiceTotals(ctx, svc, sp.from, sp.to)
			check(fmt.Sprintf("ServiceTotals(%s, %s, %s)", svc, sp.from, sp.to), got, w, err, werr)
			for _, only := range []usage.GUID{{}, users[i%len(users)]} {
				got, err := s.ServiceUsers(ctx, svc, sp.from, sp.to, only)
				w, werr := want.ServiceUsers(ctx, svc, sp.from, sp.to, only)
				check(fmt.Sprintf("ServiceUsers(%s, %s, %s, only %s)", svc, sp.from, sp.to, only), got, w, err, werr)
			}
		}
		last := g.Start.AddDate(0, 0, g.Days)
		for _, c := range []struct {
			step     usage.PeriodType
			from, to time.Time
		}{
			{usage.Daily, g.Start.AddDate(0, 0, -2), last.AddDate(0, 0, 2)},
			{usage.Daily, g.Start.AddDate(0, 0, g.Days/2), last},
			{usage.Daily, g.Start, g.Start},
			{usage.Monthly, usage.PeriodOf(usage.Monthly, g.Start).Start.AddDate(0, -1, 0), usage.PeriodOf(usage.Monthly, last).Start.AddDate(0, 2, 0)},
			{usage.Monthly, usage.PeriodOf(usage.Monthly, last).Start, usage.PeriodOf(usage.Monthly, last).Start.AddDate(0, 1, 0)},
		} {
			got, err := s.ServiceSeries(ctx, svc, c.from, c.to, c.step)
			w, werr := want.ServiceSeries(ctx, svc, c.from, c.to, c.step)
			check(fmt.Sprintf("ServiceSeries(%s, %s, %s, %s)", svc, c.from, c.to, c.step), got, w, err, werr)
		}
		if _, err := s.ServiceSeries(ctx, svc, g.Start.Add(time.Hour), last, usage.Daily); usage.KindOf(err) != usage.KindInvalid {
			t.Fatalf("ServiceSeries from a time that starts no day = %v; want an invalid-argument error", err)
		}
	}
}

// TestOrganizationQueryTiming measures the organization query (90 days by
// day and client, one organization) over the counts of 10 M events of 10
// organizations and 100 clients, with and without the daily rollup. It is
// a measurement, run when USAGED_MEASURE=1.
func TestOrganizationQueryTiming(t *testing.T) {
	if os.Getenv("USAGED_MEASURE") != "1" {
		t.Skip("a measurement: set USAGED_MEASURE=1")
	}
	s := openStore(t)
	ctx := t.Context()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// 10 organizations × 10 clients × 2,160 hours × 2 templates, 23 requests
	// a row on average: 432,000 rows of event_counts, 9.9 M events.
	for _, stmt := range []string{
		fmt.Sprintf(`INSERT INTO {db}.event_counts (org_id, hour, client_id, user_id, template, method, platform, batch_id,
			requests, status_2xx, status_3xx, status_4xx, status_5xx, status_429)
			SELECT concat('org-', toString(n %% 10)), toDateTime(%d + intDiv(n, 200) %% 2160 * 3600),
				concat('client-', toString(n %% 100)), '', concat('t', toString(intDiv(n, 100) %% 2)), 'GET', '', 'seed',
				toUInt64(1 + cityHash64(n) %% 45) AS r, r, 0, 0, 0, 0
			FROM (SELECT number AS n FROM system.numbers LIMIT 432000)`, start.Unix()),
		`INSERT INTO {db}.client_day_counts (org_id, day, client_id, batch_id,
			requests, status_2xx, status_3xx, status_4xx, status_5xx, status_429)
			SELECT org_id, toDate(hour, 'UTC'), client_id, 'seed', sum(requests), sum(status_2xx), 0, 0, 0, 0
			FROM {db}.event_counts GROUP BY org_id, toDate(hour, 'UTC'), client_id`,
	} {
		if err := s.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	q, _ := usage.Query{OrganizationID: "org-3", Interval: usage.Interval{Start: start, End: start.AddDate(0, 0, 90)},
		Granularity: usage.GranularityDay, GroupBy: []usage.Dimension{usage.DimClientID}}.Normalize()
	var total int64
	for _, c := range []struct {
		name  string
		query func(context.Context, usage.Query) ([]usage.Row, error)
	}{{"client_day_counts", s.Query}, {"event_counts", s.QueryWithoutRollup}} {
		var times []time.Duration
		var sum int64
		for range 50 {
			t0 := time.Now()
			rows, err := c.query(ctx, q)
			times = append(times, time.Since(t0))
			if err != nil || len(rows) != 900 {
				t.Fatalf("%s: %d rows, %v; want 900", c.name, len(rows), err)
			}
			sum = 0
			for _, r := range rows {
				sum += r.Requests
			}
		}
		if total != 0 && sum != total {
			t.Fatalf("%s counts %d requests, the other %d", c.name, sum, total)
		}
		total = sum
		slices.Sort(times)
		t.Logf("organization query from %s: p50 %v (min %v, max %v), %d requests of org-3", c.name, times[25], times[0], times[49], sum)
	}
}
