package clickhouse_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/clustertest"
	"github.com/usaged/usaged/store/clickhouse"
	"github.com/usaged/usaged/usage"
)

// testConfig returns the Config of a store in a database of its own on the
// test cluster, dropped at the end of the test unless
// USAGED_KEEP_TEST_DATABASES=1.
func testConfig(t *testing.T) clickhouse.Config {
	t.Helper()
	cfg := clustertest.ClickHouseDatabase(t)
	// The suites append one small call at a time: a shorter gathering
	// only shortens them.
	cfg.GroupCommit = 2 * time.Millisecond
	return cfg
}

func TestOpenMigratesOnceAcrossNodes(t *testing.T) {
	cfg := testConfig(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	stores := make([]*clickhouse.Store, 3)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = clickhouse.Open(context.Background(), cfg)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	versions, err := stores[0].AppliedMigrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for replica, vs := range versions {
		if !slices.Equal(vs, []int{1, 2, 3}) {
			t.Errorf("replica %s applied %v, want [1 2 3], each once", replica, vs)
		}
	}
}

// TestMigrationFillsTheHourlyRollup opens a database whose events were
// recorded before client_hour_counts existed: the migration that adds it
// fills it from event_counts, and filling it again after a crash (the
// migration not yet recorded) gives the same counts, not twice them.
func TestMigrationFillsTheHourlyRollup(t *testing.T) {
	cfg := testConfig(t)
	ctx := t.Context()
	s, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	start := time.Date(2026, 2, 27, 19, 0, 0, 0, time.UTC) // across a month's end
	var events []usage.Event
	for i := range 3000 {
		events = append(events, testEvent(fmt.Sprintf("org-%d", i%3), i, start.Add(time.Duration(i*7)*time.Minute)))
	}
	for lo := 0; lo < len(events); lo += 500 {
		if _, err := s.Append(ctx, events[lo:lo+500], start.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// The queries the hourly rollup answers, against the hourly counts.
	var queries []usage.Query
	for _, org := range []string{"org-0", "org-1", "org-2"} {
		for _, g := range []usage.Granularity{usage.GranularityHour, usage.GranularityDay} {
			q, err := usage.Query{OrganizationID: org, Interval: usage.Interval{Start: start.Add(5 * time.Hour), End: start.Add(340 * time.Hour)},
				Granularity: g, GroupBy: []usage.Dimension{usage.DimClientID}}.Normalize()
			if err != nil {
				t.Fatal(err)
			}
			queries = append(queries, q)
		}
	}
	check := func(when string) {
		t.Helper()
		for _, q := range queries {
			want, err := s.QueryWithoutRollup(ctx, q)
			if err != nil || len(want) == 0 {
				t.Fatalf("%s: from event_counts, %+v: %d rows, %v", when, q, len(want), err)
			}
			if got, err := s.Query(ctx, q); err != nil || !slices.Equal(got, want) {
				t.Fatalf("%s: Query(%+v) = %v, %v\nwant %v", when, q, head(got), err, head(want))
			}
		}
	}
	check("recorded by this version")
	for _, c := range []struct {
		when string
		drop []string
	}{{"filled by the migration", []string{"client_hour_counts"}}, {"filled again", nil}} {
		if err := s.Rewind(ctx, 2, c.drop...); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if s, err = clickhouse.Open(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		check(c.when)
	}
}
