package storetest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// measuresEvent is g's next event with a duration from one of several
// distributions, so that the histograms see exact small values, ties, a
// log-normal body and a heavy tail, and with bytes; a duration of 0 (one
// event in six) is none and must not count.
func measuresEvent(g *Gen) usage.Event {
	ev := g.Event()
	r := g.R
	switch r.IntN(6) {
	case 0: // absent
	case 1: // exact range, where buckets hold one value
		ev.DurationMs = 1 + r.Int64N(98)
	case 2: // a handful of values, many ties
		ev.DurationMs = []int64{99, 100, 250, 1000, 1001}[r.IntN(5)]
	case 3, 4: // log-normal around 150 ms
		ev.DurationMs = max(1, int64(math.Exp(math.Log(150)+r.NormFloat64())))
	case 5: // heavy tail, up to a day
		ev.DurationMs = max(1, int64(50/math.Pow(1-r.Float64(), 1.2)))
		ev.DurationMs = min(ev.DurationMs, usage.MaxDurationMs) // what ingest accepts
	}
	if r.IntN(5) != 0 {
		ev.RequestBytes = r.Int64N(1 << 20)
	}
	if r.IntN(10) != 0 {
		ev.ResponseBytes = r.Int64N(1 << 32)
	}
	return ev
}

// oracleMeasures are one group's measurements, kept whole.
type oracleMeasures struct {
	durations                   []int64 // the positive ones, sorted once complete
	requestBytes, responseBytes int64
}

// measuresAnswer computes, by brute force over the accepted events, the
// measures of each row of q's answer, by the row's date and dimensions.
func (o *Oracle) measuresAnswer(q usage.Query) map[usage.Row]*oracleMeasures {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	out := map[usage.Row]*oracleMeasures{}
	for _, ev := range o.Accepted {
		f := q.Filter
		name := o.names[[2]string{ev.OrganizationID, ev.ClientID}]
		if ev.OrganizationID != q.OrganizationID || !q.Interval.Contains(ev.Time) ||
			!in(f.ClientIDs, ev.ClientID) || !in(f.ClientNames, name) || !in(f.UserIDs, ev.UserID) ||
			!in(f.TemplateURIs, ev.TemplateURI) || !in(f.HTTPMethods, ev.HTTPMethod) || !in(f.Platforms, ev.Platform) {
			continue
		}
		var k usage.Row
		if q.Granularity != usage.GranularityNone {
			// The bucket by hand: the local start of the day, week or
			// month, not Granularity.TruncateIn.
			t := ev.Time.In(q.Zone())
			switch q.Granularity {
			case usage.GranularityHour:
				k.Date = ev.Time.Truncate(time.Hour)
			case usage.GranularityDay:
				k.Date = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, q.Zone())
			case usage.GranularityWeek:
				for d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, q.Zone()); ; d = time.Date(d.Year(), d.Month(), d.Day()-1, 0, 0, 0, 0, q.Zone()) {
					if d.Weekday() == time.Monday {
						k.Date = d
						break
					}
				}
			case usage.GranularityMonth:
				k.Date = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, q.Zone())
			}
			k.Date = k.Date.UTC()
		}
		setDims(&k, q.GroupBy, &ev, name)
		m := out[k]
		if m == nil {
			m = &oracleMeasures{}
			out[k] = m
		}
		if ev.DurationMs > 0 {
			m.durations = append(m.durations, ev.DurationMs)
		}
		m.requestBytes += ev.RequestBytes
		m.responseBytes += ev.ResponseBytes
	}
	for _, m := range out {
		slices.Sort(m.durations)
	}
	return out
}

// checkMeasures compares the measures of one row with the oracle's: bytes,
// the maximum and the mean exactly, each percentile within 1 % of the
// lower nearest-rank value (⌈p·n/100⌉-th smallest), exactly below 99 ms;
// without durations, no duration value.
func checkMeasures(row *usage.Row, want *oracleMeasures) string {
	if row.Measures == nil {
		return "no Measures"
	}
	n := int64(len(want.durations))
	if row.Measures.Durations != n {
		return fmt.Sprintf("%d durations, want %d", row.Measures.Durations, n)
	}
	var sum int64
	for _, d := range want.durations {
		sum += d
	}
	for _, m := range usage.MeasureMetrics {
		got, ok := row.Measure(m)
		switch m {
		case usage.MetricRequestBytes, usage.MetricResponseBytes:
			w := want.requestBytes
			if m == usage.MetricResponseBytes {
				w = want.responseBytes
			}
			if got != w || !ok {
				return fmt.Sprintf("%v = %d, %v; want %d", m, got, ok, w)
			}
			continue
		}
		if n == 0 {
			if got != 0 || ok {
				return fmt.Sprintf("%v = %d, %v without durations; want 0, false", m, got, ok)
			}
			continue
		}
		if !ok {
			return fmt.Sprintf("%v has no value with %d durations", m, n)
		}
		var w int64
		switch m {
		case usage.MetricDurationMax:
			w = want.durations[n-1]
		case usage.MetricDurationAvg: // thousandths of ms, rounded half up
			w = (2*sum*1000 + n) / (2 * n)
		default:
			p := map[usage.Metric]int64{usage.MetricDurationP50: 50, usage.MetricDurationP90: 90,
				usage.MetricDurationP95: 95, usage.MetricDurationP99: 99}[m]
			x := want.durations[max(1, (p*n+99)/100)-1]
			if x < 99 && got != x || 100*abs(got-x) > x {
				return fmt.Sprintf("%v = %d, want %d within 1 %% (of %d durations)", m, got, x, n)
			}
			continue
		}
		if got != w {
			return fmt.Sprintf("%v = %d, want %d", m, got, w)
		}
	}
	return ""
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// measuresQuery is a random query of g asking for some measures besides
// some counts.
func measuresQuery(t testing.TB, g *Gen) usage.Query {
	q := g.RandomQuery(t)
	q.Metrics = nil
	for _, m := range append(slices.Clone(usage.Metrics), usage.MeasureMetrics...) {
		if g.R.IntN(3) == 0 {
			q.Metrics = append(q.Metrics, m)
		}
	}
	q.Metrics = append(q.Metrics, usage.MeasureMetrics[g.R.IntN(len(usage.MeasureMetrics))])
	return q
}

func testMeasuresOracle(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	defer func() { s.Close() }()
	g := NewGen(7)
	o := NewOracle()
	events := make([]usage.Event, 5000)
	for i := range events {
		events[i] = measuresEvent(g)
	}
	appendAll(t, s, o, g, events)
	check := func(n int) {
		t.Helper()
		for range n {
			q := measuresQuery(t, g)
			got, err := s.Query(ctx(t), q)
			if err != nil {
				t.Fatalf("Query(%+v): %v", q, err)
			}
			want := o.Answer(q)
			wantMeasures := o.measuresAnswer(q)
			counts := make([]usage.Row, len(got))
			for i, r := range got {
				r.Measures = nil
				counts[i] = r
			}
			if !slices.Equal(counts, want) {
				t.Fatalf("Query(%+v):\n got %d rows %v\nwant %d rows %v", q, len(got), head(counts), len(want), head(want))
			}
			for i := range got {
				k := counts[i]
				k.Counts = usage.Counts{}
				if diff := checkMeasures(&got[i], wantMeasures[k]); diff != "" {
					t.Fatalf("Query(%+v), row %+v: %s", q, counts[i], diff)
				}
			}
		}
	}
	check(300)

	// Every bucket and zone by hand: the hours around Berlin's spring
	// change, days, weeks and months of the whole span, by client (the
	// rollups) and by template (every per-hour group).
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, loc := range []*time.Location{nil, berlin} {
		for gr := usage.GranularityNone; gr <= usage.GranularityMonth; gr++ {
			for _, by := range []usage.Dimension{usage.DimClientID, usage.DimTemplateURI} {
				q, err := usage.Query{OrganizationID: "org-a", Interval: g.interval(), Granularity: gr, Location: loc,
					GroupBy: []usage.Dimension{by}, Metrics: usage.MeasureMetrics}.Normalize()
				if err != nil {
					t.Fatal(err)
				}
				rows, err := s.Query(ctx(t), q)
				if err != nil {
					t.Fatalf("Query(%+v): %v", q, err)
				}
				want := o.measuresAnswer(q)
				if len(rows) != len(want) {
					t.Fatalf("%v %v by %v: %d rows, want %d", loc, gr, by, len(rows), len(want))
				}
				for i := range rows {
					k := rows[i]
					k.Counts, k.Measures = usage.Counts{}, nil
					if diff := checkMeasures(&rows[i], want[k]); diff != "" {
						t.Fatalf("%v %v by %v, row %+v: %s", loc, gr, by, k, diff)
					}
				}
			}
		}
	}
	if b.Reopen != nil {
		s = b.Reopen(t, s)
		check(50)
	}
	// Without a measure asked for, rows carry none.
	q, _ := usage.Query{OrganizationID: "org-a", Interval: g.interval(), Granularity: usage.GranularityDay}.Normalize()
	rows, err := s.Query(ctx(t), q)
	if err != nil || len(rows) == 0 {
		t.Fatalf("Query = %d rows, %v", len(rows), err)
	}
	for _, r := range rows {
		if r.Measures != nil {
			t.Fatalf("row %+v carries Measures it was not asked for", r)
		}
	}
}

// testMeasuresRefused checks that a store that keeps no measures refuses a
// query asking for one, naming the metrics.
func testMeasuresRefused(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	defer s.Close()
	q, err := usage.Query{OrganizationID: "org-a", Interval: usage.Interval{Start: base, End: base.Add(time.Hour)},
		Metrics: []usage.Metric{usage.MetricRequests, usage.MetricDurationP95}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.Query(ctx(t), q)
	var ue *usage.Error
	if !errors.As(err, &ue) || ue.Kind != usage.KindInvalid || ue.Field != "metrics" {
		t.Fatalf("Query asking for durationP95 = %d rows, %v; want an invalid-query error on metrics", len(rows), err)
	}
}
