package usage

import (
	"slices"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	f := func(g Granularity, start, end string, want ...string) {
		t.Helper()
		s, _ := time.Parse(time.RFC3339, start)
		e, _ := time.Parse(time.RFC3339, end)
		var got []string
		for _, b := range g.Buckets(Interval{Start: s, End: e}) {
			got = append(got, b.Format(time.RFC3339))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%v buckets of %s/%s: %q, want %q", g, start, end, got, want)
		}
	}
	f(GranularityHour, "2026-03-01T22:30:00Z", "2026-03-02T01:00:00Z", "2026-03-01T22:00:00Z", "2026-03-01T23:00:00Z", "2026-03-02T00:00:00Z")
	f(GranularityDay, "2026-02-27T00:00:00Z", "2026-03-02T00:00:00Z", "2026-02-27T00:00:00Z", "2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z")
	// 2026-03-04 is a Wednesday: its week starts on Monday 2026-03-02.
	f(GranularityWeek, "2026-03-04T00:00:00Z", "2026-03-16T00:00:00Z", "2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z")
	f(GranularityMonth, "2025-12-15T00:00:00Z", "2026-02-01T00:00:00Z", "2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z")
	f(GranularityNone, "2026-03-04T00:00:00Z", "2026-03-16T00:00:00Z", "0001-01-01T00:00:00Z")
}
