package pebble_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/store/storetest"
	"github.com/usaged/usaged/usage"
)

// BenchmarkQuery times queries over one organization of a store holding
// 1,000,000 events over 90 days (5 organizations, 100 clients, 500 users,
// 300 templates each): a client query answered from the rollups, and a
// template query that scans every per-hour group, each without and with
// measures asked for. Events carry durations
// (0 to 1,500 ms, a quarter of them 0 and so none) and bytes.
func BenchmarkQuery(b *testing.B) {
	db, err := pebble.Open(pebble.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	start := end.AddDate(0, 0, -90)
	const events, batch = 1_000_000, 10_000
	span := end.Sub(start)
	evs := make([]usage.Event, batch)
	for i := 0; i < events; i += batch {
		for j := range evs {
			n := i + j
			evs[j] = usage.Event{
				ID: fmt.Sprint(n), Time: start.Add(span / events * time.Duration(n)),
				OrganizationID: fmt.Sprint("org-", n%5), ClientID: fmt.Sprint("client-", n*7%100), ClientName: "c",
				UserID: fmt.Sprint("user-", n*13%500), TemplateURI: fmt.Sprint("api/v2/t", n*31%300), HTTPMethod: "GET",
				Status:     []int{200, 200, 404, 429, 500}[n%5],
				DurationMs: int64(n*7919%1500 + n%2), RequestBytes: int64(n % 2000), ResponseBytes: int64(n * 37 % 50000),
			}
		}
		if _, err := db.Append(b.Context(), evs, start.Add(-time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name    string
		by      usage.Dimension
		metrics []usage.Metric
	}{
		{"byClient", usage.DimClientID, nil},
		{"byTemplate", usage.DimTemplateURI, nil},
		{"byClientP95", usage.DimClientID, []usage.Metric{usage.MetricRequests, usage.MetricDurationP95, usage.MetricResponseBytes}},
		{"byTemplateP95", usage.DimTemplateURI, []usage.Metric{usage.MetricRequests, usage.MetricDurationP95, usage.MetricResponseBytes}},
	} {
		b.Run(c.name, func(b *testing.B) {
			q, err := usage.Query{OrganizationID: "org-0", Interval: usage.Interval{Start: start, End: end},
				Granularity: usage.GranularityDay, GroupBy: []usage.Dimension{c.by}, Metrics: c.metrics}.Normalize()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				rows, err := db.Query(b.Context(), q)
				if err != nil || len(rows) == 0 {
					b.Fatal(rows, err)
				}
			}
		})
	}
}

// BenchmarkExecutionRows stores a 1,000,000-row execution, reporting how long
// that took and how large it is, then times reading one 1,000-row page from
// its middle, which reads one or two chunks.
func BenchmarkExecutionRows(b *testing.B) {
	db, err := pebble.Open(pebble.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rows := storetest.MakeRows(1_000_000)
	start := time.Now()
	if err := db.FinishExecution(b.Context(), usage.Execution{ID: "big", RowCount: len(rows)}, rows); err != nil {
		b.Fatal(err)
	}
	finish := time.Since(start)
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	disk := db.DiskUsage()
	b.ReportAllocs()
	for b.Loop() {
		page, err := db.ExecutionRows(b.Context(), "big", 500_500, 1000)
		if err != nil || len(page) != 1000 {
			b.Fatal(len(page), err)
		}
	}
	// After the loop: b.Loop's first call deletes metrics reported before it.
	b.ReportMetric(float64(finish.Milliseconds()), "finish-ms")
	b.ReportMetric(float64(disk)/float64(len(rows)), "disk-B/row")
}
