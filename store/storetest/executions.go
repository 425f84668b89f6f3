package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// TimePrecision is the coarsest precision a backend may keep the times of an
// execution record to; it must return them in UTC.
const TimePrecision = time.Millisecond

// SampleExecution returns an execution with id and every field set, its times
// with nanoseconds and in a zone other than UTC.
func SampleExecution(id string) usage.Execution {
	zone := time.FixedZone("UTC+5", 5*3600)
	created := time.Date(2026, 3, 11, 15, 20, 30, 123456789, zone)
	return usage.Execution{
		ID:             id,
		OrganizationID: "org-x",
		Operation:      "usage.query",
		ClientID:       "client-9",
		Name:           "nightly report ✓",
		Query: usage.Query{
			OrganizationID: "org-x",
			Interval:       usage.Interval{Start: base, End: base.AddDate(0, 0, 7).In(zone)},
			Granularity:    usage.GranularityWeek,
			GroupBy:        []usage.Dimension{usage.DimClientID, usage.DimTemplateURI},
			Metrics:        []usage.Metric{usage.MetricRequests, usage.MetricStatus429},
			Filter: usage.Filter{
				ClientIDs: []string{"c1", "c2"}, ClientNames: []string{"Alpha"}, UserIDs: []string{"u1"},
				TemplateURIs: []string{"api/v2/users"}, HTTPMethods: []string{"GET", "POST"}, Platforms: []string{""},
			},
			MaxRows: 5000,
		},
		Sort:        []usage.SortKey{{Field: "Requests", Desc: true}, {Field: "Date"}},
		Limit:       250,
		Status:      usage.ExecutionFailed,
		Error:       &usage.Error{Kind: usage.KindInvalid, Field: "interval", Message: "the interval is too long", Err: errors.New("a cause for the logs")},
		RowCount:    42,
		ResultBytes: 4242,
		Truncated:   true,
		Created:     created,
		Finished:    created.Add(1500 * time.Millisecond),
		Expires:     created.Add(24 * time.Hour),
	}
}

// completed returns e as finished with n rows.
func completed(e usage.Execution, n int) usage.Execution {
	e.Status, e.Error, e.RowCount, e.Truncated = usage.ExecutionComplete, nil, n, false
	return e
}

// SameExecution reports how got differs from want, or "" if it does not.
// Times must be UTC and within TimePrecision of want's, zero times zero;
// nil and empty slices are alike; Error.Err is not compared.
func SameExecution(got, want usage.Execution) string {
	names := []string{"Created", "Finished", "Expires", "Query.Interval.Start", "Query.Interval.End"}
	gt := []*time.Time{&got.Created, &got.Finished, &got.Expires, &got.Query.Interval.Start, &got.Query.Interval.End}
	wt := []*time.Time{&want.Created, &want.Finished, &want.Expires, &want.Query.Interval.Start, &want.Query.Interval.End}
	for i := range gt {
		g, w := *gt[i], *wt[i]
		switch {
		case g.IsZero() != w.IsZero():
			return fmt.Sprintf("%s is %v, want %v", names[i], g, w)
		case !g.IsZero() && g.Location() != time.UTC:
			return fmt.Sprintf("%s is %v, not in UTC", names[i], g)
		case g.Sub(w).Abs() >= TimePrecision:
			return fmt.Sprintf("%s is %v, want %v", names[i], g, w)
		}
		*gt[i], *wt[i] = time.Time{}, time.Time{}
	}
	if g, w := normExecution(got), normExecution(want); !reflect.DeepEqual(g, w) {
		return fmt.Sprintf("\n got %+v (error %+v)\nwant %+v (error %+v)", g, g.Error, w, w.Error)
	}
	return ""
}

func normExecution(e usage.Execution) usage.Execution {
	if e.Error != nil {
		ee := *e.Error
		ee.Err = nil
		e.Error = &ee
	}
	nilEmpty := func(s *[]string) {
		if len(*s) == 0 {
			*s = nil
		}
	}
	f := &e.Query.Filter
	for _, s := range []*[]string{&f.ClientIDs, &f.ClientNames, &f.UserIDs, &f.TemplateURIs, &f.HTTPMethods, &f.Platforms} {
		nilEmpty(s)
	}
	if len(e.Query.GroupBy) == 0 {
		e.Query.GroupBy = nil
	}
	if len(e.Query.Metrics) == 0 {
		e.Query.Metrics = nil
	}
	if len(e.Sort) == 0 {
		e.Sort = nil
	}
	return e
}

func checkExecution(t *testing.T, s store.Executions, want usage.Execution) {
	t.Helper()
	got, err := s.Execution(ctx(t), want.ID)
	if err != nil {
		t.Fatalf("Execution(%q): %v", want.ID, err)
	}
	if d := SameExecution(got, want); d != "" {
		t.Fatalf("Execution(%q): %s", want.ID, d)
	}
}

// MakeRows returns n distinct rows with every field varied: some with a zero
// Date, some with empty or non-ASCII strings, counts up to 2^40.
func MakeRows(n int) []usage.Row {
	rows := make([]usage.Row, n)
	for i := range rows {
		r := &rows[i]
		if i%7 != 0 {
			r.Date = base.Add(time.Duration(i%500) * time.Hour)
		}
		r.ClientID = fmt.Sprintf("client-%d", i%37)
		if i%5 != 0 {
			r.ClientName = fmt.Sprintf("名前 %d", i%37)
		}
		if i%2 == 0 {
			r.OrganizationID = "org-x"
		}
		r.UserID = users[i%len(users)]
		r.TemplateURI = templates[i%len(templates)]
		r.HTTPMethod = methods[i%len(methods)]
		r.Platform = platforms[i%len(platforms)]
		r.Counts = usage.Counts{Requests: int64(i) + 1, Status200: int64(i % 3), Status300: int64(i) << 20, Status400: 1 << 40, Status500: int64(i % 11), Status429: int64(i % 2)}
	}
	return rows
}

// sameRows reports how got differs from want, or "" if it does not. Dates
// must be equal instants in UTC, zero dates zero.
func sameRows(got, want []usage.Row) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d rows, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Date.IsZero() != w.Date.IsZero() || !g.Date.Equal(w.Date) || (!g.Date.IsZero() && g.Date.Location() != time.UTC) {
			return fmt.Sprintf("row %d: date %v, want %v", i, g.Date, w.Date)
		}
		g.Date, w.Date = time.Time{}, time.Time{}
		if g != w {
			return fmt.Sprintf("row %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	return ""
}

func checkRows(t *testing.T, s store.Executions, id string, offset, limit int, want []usage.Row) {
	t.Helper()
	got, err := s.ExecutionRows(ctx(t), id, offset, limit)
	if err != nil {
		t.Fatalf("ExecutionRows(%q, %d, %d): %v", id, offset, limit, err)
	}
	if d := sameRows(got, want); d != "" {
		t.Fatalf("ExecutionRows(%q, %d, %d): %s", id, offset, limit, d)
	}
}

func testExecutionRecords(t *testing.T, b MetadataBackend) {
	s := b.Open(t)
	defer s.Close()
	c := ctx(t)
	if _, err := s.Execution(c, "missing"); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("Execution(missing): %v, want not found", err)
	}
	full := SampleExecution("9b2f6c1e-1d7a-4c3e-9a8b-0f1e2d3c4b5a")
	bare := usage.Execution{ID: "bare"} // every other field zero: nil slices and Error, zero times
	empty := SampleExecution("empty-slices")
	empty.Query.GroupBy, empty.Query.Metrics, empty.Sort = []usage.Dimension{}, []usage.Metric{}, []usage.SortKey{}
	empty.Query.Filter = usage.Filter{ClientIDs: []string{}}
	for _, e := range []usage.Execution{full, bare, empty} {
		if err := s.PutExecution(c, e); err != nil {
			t.Fatalf("PutExecution(%q): %v", e.ID, err)
		}
		checkExecution(t, s, e)
	}
	// Put replaces the whole record.
	changed := full
	changed.Name, changed.Status, changed.Error, changed.Truncated, changed.Finished = "renamed", usage.ExecutionRunning, nil, false, time.Time{}
	changed.Sort = nil
	if err := s.PutExecution(c, changed); err != nil {
		t.Fatal(err)
	}
	checkExecution(t, s, changed)
	checkExecution(t, s, bare)
	// A record without rows has none.
	checkRows(t, s, full.ID, 0, 10, nil)
}

func testExecutionRows(t *testing.T, b MetadataBackend) {
	s := b.Open(t)
	defer s.Close()
	c := ctx(t)
	if _, err := s.ExecutionRows(c, "missing", 0, 10); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("ExecutionRows(missing): %v, want not found", err)
	}
	for _, n := range []int{0, 1, 999, 1000, 1001, 2500} {
		id := fmt.Sprintf("rows-%d", n)
		rows := MakeRows(n)
		queued := SampleExecution(id)
		queued.Status, queued.Error, queued.RowCount = usage.ExecutionQueued, nil, 0
		if err := s.PutExecution(c, queued); err != nil {
			t.Fatal(err)
		}
		done := completed(queued, n)
		if err := s.FinishExecution(c, done, slices.Clone(rows)); err != nil {
			t.Fatalf("FinishExecution(%d rows): %v", n, err)
		}
		checkExecution(t, s, done)
		checkRows(t, s, id, 0, n+10, rows)
		for _, off := range []int{0, 1, 2, 998, 999, 1000, 1001, 1002, 1999, 2000, 2001, 2499, n - 1, n, n + 1, 10_000} {
			for _, lim := range []int{0, 1, 2, 999, 1000, 1001, 1500, 5000} {
				if off < 0 {
					continue
				}
				lo, hi := min(off, n), min(off+lim, n)
				checkRows(t, s, id, off, lim, rows[lo:hi]) // an offset at or past the end has no rows
			}
		}
		// Paging through in steps that straddle chunk boundaries of any size.
		var paged []usage.Row
		for off := 0; ; off += 701 {
			page, err := s.ExecutionRows(c, id, off, 701)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
		}
		if d := sameRows(paged, rows); d != "" {
			t.Fatalf("%d rows paged by 701: %s", n, d)
		}

		// Putting the record again, as a status change does, keeps the rows.
		again := done
		again.Name = "relabelled"
		if err := s.PutExecution(c, again); err != nil {
			t.Fatal(err)
		}
		checkExecution(t, s, again)
		checkRows(t, s, id, 0, n+10, rows)
	}

	// Finishing again replaces the rows, leaving none of a longer answer.
	fewer := MakeRows(1500)[1490:]
	e := completed(SampleExecution("rows-2500"), len(fewer))
	if err := s.FinishExecution(c, e, fewer); err != nil {
		t.Fatal(err)
	}
	checkExecution(t, s, e)
	checkRows(t, s, e.ID, 0, 5000, fewer)
	checkRows(t, s, e.ID, 1000, 5000, nil)
	// Other executions keep theirs.
	checkRows(t, s, "rows-1001", 0, 5000, MakeRows(1001))
}

func testDeleteExecution(t *testing.T, b MetadataBackend) {
	s := b.Open(t)
	defer s.Close()
	c := ctx(t)
	// Ids that are prefixes of one another keep their rows apart.
	ids := []string{"p", "p-1", "p\x01", "pp"}
	for i, id := range ids {
		rows := MakeRows(1001 + i)
		if err := s.FinishExecution(c, completed(SampleExecution(id), len(rows)), rows); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range ids {
		checkRows(t, s, id, 0, 5000, MakeRows(1001+i))
	}
	if err := s.DeleteExecution(c, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Execution(c, "p"); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("deleted execution: %v, want not found", err)
	}
	if rows, err := s.ExecutionRows(c, "p", 0, 10); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("rows of a deleted execution = %d rows, %v; want not found", len(rows), err)
	}
	for i, id := range ids[1:] {
		checkExecution(t, s, completed(SampleExecution(id), 1002+i))
		checkRows(t, s, id, 0, 5000, MakeRows(1002+i))
	}
	// Deleting a missing execution is not an error.
	for _, id := range []string{"p", "never"} {
		if err := s.DeleteExecution(c, id); err != nil {
			t.Fatalf("DeleteExecution(%q): %v", id, err)
		}
	}
	// A new record under a deleted id has none of the old rows.
	if err := s.PutExecution(c, SampleExecution("p")); err != nil {
		t.Fatal(err)
	}
	checkRows(t, s, "p", 0, 10, nil)
}

func testExecutionsBy(t *testing.T, b MetadataBackend) {
	s := b.Open(t)
	defer s.Close()
	c := ctx(t)
	calls := 0
	if err := s.ExecutionsBy(c, func(usage.Execution) bool { calls++; return true }); err != nil || calls != 0 {
		t.Fatalf("ExecutionsBy on an empty store: %d calls, %v", calls, err)
	}
	want := map[string]usage.Execution{}
	for i := range 300 {
		e := SampleExecution(fmt.Sprintf("ex-%03d", i))
		e.RowCount = i
		if i%3 == 0 {
			e.Error = nil
		}
		want[e.ID] = e
		if err := s.PutExecution(c, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishExecution(c, completed(want["ex-007"], 3), MakeRows(3)); err != nil {
		t.Fatal(err)
	}
	want["ex-007"] = completed(want["ex-007"], 3)
	seen := map[string]bool{}
	err := s.ExecutionsBy(c, func(e usage.Execution) bool {
		if seen[e.ID] {
			t.Errorf("ExecutionsBy: %q twice", e.ID)
		}
		seen[e.ID] = true
		if w, ok := want[e.ID]; !ok {
			t.Errorf("ExecutionsBy: unknown %q", e.ID)
		} else if d := SameExecution(e, w); d != "" {
			t.Errorf("ExecutionsBy: %q: %s", e.ID, d)
		}
		return true
	})
	if err != nil || len(seen) != len(want) {
		t.Fatalf("ExecutionsBy saw %d of %d records, %v", len(seen), len(want), err)
	}
	for _, stop := range []int{1, 5, 299} {
		calls := 0
		err := s.ExecutionsBy(c, func(usage.Execution) bool { calls++; return calls < stop })
		if err != nil || calls != stop {
			t.Fatalf("ExecutionsBy stopping after %d: %d calls, %v", stop, calls, err)
		}
	}
}

// testFinishAtomic reads the rows while they are stored: a reader sees none
// or all of them.
func testFinishAtomic(t *testing.T, b MetadataBackend) {
	s := b.Open(t)
	defer s.Close()
	c := ctx(t)
	const n = 2500
	rows := MakeRows(n)
	e := SampleExecution("atomic")
	if err := s.PutExecution(c, e); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stored := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for done := false; ; {
			select {
			case <-stored:
				done = true
			default:
			}
			got, err := s.ExecutionRows(c, e.ID, 0, n)
			if err != nil {
				t.Errorf("ExecutionRows while finishing: %v", err)
				return
			}
			if len(got) != 0 && len(got) != n {
				t.Errorf("ExecutionRows while finishing: %d rows, want 0 or %d", len(got), n)
				return
			}
			if done {
				if len(got) != n {
					t.Errorf("ExecutionRows after finishing: %d rows, want %d", len(got), n)
				}
				return
			}
		}
	}()
	err := s.FinishExecution(c, completed(e, n), rows)
	close(stored)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
}

func testExecutionsReopen(t *testing.T, b MetadataBackend) {
	s := b.Open(t)
	c := ctx(t)
	queued := SampleExecution("queued")
	queued.Status, queued.Error = usage.ExecutionQueued, nil
	rows := MakeRows(2500)
	done := completed(SampleExecution("done"), len(rows))
	for _, e := range []usage.Execution{queued, SampleExecution("gone")} {
		if err := s.PutExecution(c, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishExecution(c, done, rows); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteExecution(c, "gone"); err != nil {
		t.Fatal(err)
	}
	s = b.Reopen(t, s)
	defer s.Close()
	checkExecution(t, s, queued)
	checkExecution(t, s, done)
	checkRows(t, s, done.ID, 0, 5000, rows)
	checkRows(t, s, done.ID, 1999, 2, rows[1999:2001])
	checkRows(t, s, queued.ID, 0, 10, nil)
	if _, err := s.Execution(c, "gone"); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("deleted execution after reopen: %v, want not found", err)
	}
	var ids []string
	if err := s.ExecutionsBy(c, func(e usage.Execution) bool { ids = append(ids, e.ID); return true }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"done", "queued"}) {
		t.Fatalf("ExecutionsBy after reopen: %v", ids)
	}
}
