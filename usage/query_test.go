package usage

import (
	"math"
	"slices"
	"strings"
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

// A query without metrics asks for every count and no measure; one naming
// a measure wants the rows' Measures; a metric that is none is refused.
func TestQueryMetrics(t *testing.T) {
	iv := Interval{Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	q, err := Query{OrganizationID: "o", Interval: iv}.Normalize()
	if err != nil || !slices.Equal(q.Metrics, Metrics) || q.WantsMeasures() {
		t.Fatalf("default metrics %v, wants measures %v, %v", q.Metrics, q.WantsMeasures(), err)
	}
	for _, m := range MeasureMetrics {
		q, err := Query{OrganizationID: "o", Interval: iv, Metrics: []Metric{MetricRequests, m}}.Normalize()
		if err != nil || !q.WantsMeasures() || !m.IsMeasure() {
			t.Errorf("%v: wants measures %v, is measure %v, %v", m, q.WantsMeasures(), m.IsMeasure(), err)
		}
		if p, err := ParseMetric(strings.ToUpper(m.String())); err != nil || p != m {
			t.Errorf("ParseMetric(%q) = %v, %v", strings.ToUpper(m.String()), p, err)
		}
	}
	for _, m := range []Metric{-1, MetricResponseBytes + 1} {
		if _, err := (Query{OrganizationID: "o", Interval: iv, Metrics: []Metric{m}}).Normalize(); KindOf(err) != KindInvalid {
			t.Errorf("metric %d: %v, want invalid", int(m), err)
		}
	}
}

// Row.Measure reads each measure by hand: 5 events of 10, 20, 30, 40 and
// 1000 ms, one without a duration.
func TestRowMeasure(t *testing.T) {
	var m Measures
	for _, d := range []int64{10, 0, 20, 30, 40, 1000} {
		m.AddEvent(&Event{DurationMs: d, RequestBytes: 100, ResponseBytes: d * 3})
	}
	r := Row{Measures: &m}
	want := map[Metric]int64{
		MetricDurationP50: 30, MetricDurationP90: 1000, MetricDurationP95: 1000, MetricDurationP99: 1000,
		MetricDurationMax: 1000, MetricDurationAvg: 220_000, MetricRequestBytes: 600, MetricResponseBytes: 3300,
	}
	for metric, w := range want {
		if got, ok := r.Measure(metric); got != w || !ok {
			t.Errorf("%v = %d, %v; want %d", metric, got, ok, w)
		}
	}
	if _, ok := r.Measure(MetricRequests); ok {
		t.Errorf("a count has a measure value")
	}
	// Without durations, or without Measures: no duration value, bytes 0.
	for _, r := range []Row{{}, {Measures: &Measures{RequestBytes: 7}}} {
		for _, metric := range MeasureMetrics {
			got, ok := r.Measure(metric)
			wantOK := metric == MetricRequestBytes || metric == MetricResponseBytes
			if w := int64(0); metric == MetricRequestBytes && r.Measures != nil {
				w = 7
				if got != w {
					t.Errorf("%v = %d, want %d", metric, got, w)
				}
			} else if got != 0 || ok != wantOK {
				t.Errorf("%+v %v = %d, %v; want 0, %v", r.Measures, metric, got, ok, wantOK)
			}
		}
	}
}

func TestAvgMillis(t *testing.T) {
	for _, c := range []struct{ sum, n, want int64 }{
		{0, 0, 0}, {10, 1, 10_000}, {10, 3, 3_333}, {20, 3, 6_667}, {1, 2000, 1}, {1, 2001, 0},
		{math.MaxInt64, 1, math.MaxInt64}, {math.MaxInt64, math.MaxInt64, 1000}, {math.MaxInt64 - 1, math.MaxInt64, 1000},
	} {
		m := Measures{Durations: c.n, DurationSum: c.sum}
		if got := m.AvgMillis(); got != c.want {
			t.Errorf("AvgMillis of %d/%d = %d, want %d", c.sum, c.n, got, c.want)
		}
	}
}
