package usage

import (
	"slices"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	var loc *time.Location = time.UTC
	f := func(g Granularity, start, end string, want ...string) {
		t.Helper()
		s, _ := time.Parse(time.RFC3339, start)
		e, _ := time.Parse(time.RFC3339, end)
		var got []string
		for _, b := range g.Buckets(Interval{Start: s, End: e}, loc) {
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

	// In Berlin, across its 23-hour 2026-03-29 and into April.
	var err error
	if loc, err = time.LoadLocation("Europe/Berlin"); err != nil {
		t.Fatal(err)
	}
	f(GranularityDay, "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z",
		"2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", "2026-03-31T00:00:00+02:00")
	f(GranularityWeek, "2026-03-25T00:00:00Z", "2026-04-02T00:00:00Z", "2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00")
	f(GranularityMonth, "2026-03-15T00:00:00Z", "2026-04-15T00:00:00Z", "2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00")
	f(GranularityHour, "2026-03-29T00:00:00Z", "2026-03-29T02:00:00Z", "2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00")

	// Santiago's clocks skip its midnight of 2026-09-06: that day starts at
	// 01:00 and lasts 23 hours; the month and the week (Monday 2026-08-31)
	// start at ordinary midnights.
	if loc, err = time.LoadLocation("America/Santiago"); err != nil {
		t.Fatal(err)
	}
	f(GranularityDay, "2026-09-05T12:00:00Z", "2026-09-07T12:00:00Z",
		"2026-09-05T00:00:00-04:00", "2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00")
	f(GranularityWeek, "2026-09-06T12:00:00Z", "2026-09-08T12:00:00Z", "2026-08-31T00:00:00-04:00", "2026-09-07T00:00:00-03:00")
	f(GranularityMonth, "2026-09-06T12:00:00Z", "2026-10-02T12:00:00Z", "2026-09-01T00:00:00-04:00", "2026-10-01T00:00:00-03:00")
}

// A zone is accepted only where its offsets are whole hours over the
// interval, the whole interval: Adelaide's are not at any time of year,
// and neither are Kathmandu's or Kolkata's.
func TestNormalizeTimeZone(t *testing.T) {
	iv := Interval{Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
	for zone, ok := range map[string]bool{
		"UTC": true, "Europe/Berlin": true, "America/New_York": true, "Australia/Sydney": true, "Pacific/Chatham": false,
		"Asia/Kolkata": false, "Asia/Kathmandu": false, "Australia/Adelaide": false, "Australia/Lord_Howe": false,
	} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Query{OrganizationID: "o", Interval: iv, Granularity: GranularityDay, Location: loc}.Normalize()
		if ok != (err == nil) || err != nil && KindOf(err) != KindInvalid {
			t.Errorf("%s: %v, want accepted %v", zone, err, ok)
		}
	}
	// Lord Howe is UTC+10:30 in its winter and +11 in its summer: a
	// December interval is whole hours, one reaching into April is not.
	lh, _ := time.LoadLocation("Australia/Lord_Howe")
	dec := Interval{Start: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}
	if _, err := (Query{OrganizationID: "o", Interval: dec, Granularity: GranularityDay, Location: lh}).Normalize(); err != nil {
		t.Errorf("Lord Howe in December: %v, want accepted", err)
	}
}
