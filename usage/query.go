package usage

import (
	"slices"
	"strings"
	"time"
)

// Granularity is the width of the time buckets a query's rows are split into.
// Buckets are UTC unless the query names a time zone (Query.Location).
type Granularity int

const (
	GranularityNone  Granularity = iota // one bucket for the whole interval
	GranularityHour                     // clock hours
	GranularityDay                      // calendar days
	GranularityWeek                     // ISO weeks, starting Monday 00:00
	GranularityMonth                    // calendar months
)

var granularities = enum[Granularity]{what: "a granularity", field: "granularity", names: []string{"", "Hour", "Day", "Week", "Month"}}

func (g Granularity) String() string { return granularities.name(g) }

// ParseGranularity parses Hour, Day, Week or Month (any case); "" is GranularityNone.
func ParseGranularity(s string) (Granularity, error) { return granularities.parse(s) }

// Truncate returns the start of the UTC bucket holding t. For
// GranularityNone it returns t unchanged.
func (g Granularity) Truncate(t time.Time) time.Time { return g.TruncateIn(t, time.UTC) }

// TruncateIn returns the start of the bucket holding t in time zone loc, in
// loc: the local hour, midnight, Monday midnight or first of the month.
// Hours are the instants' own hours only in a zone whose offsets are whole
// hours, which Query.Normalize requires. For GranularityNone it returns t
// unchanged.
func (g Granularity) TruncateIn(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	switch g {
	case GranularityHour:
		return t.Truncate(time.Hour)
	case GranularityDay:
		return dayStart(t.Year(), t.Month(), t.Day(), loc)
	case GranularityWeek:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		return dayStart(t.Year(), t.Month(), t.Day()-back, loc)
	case GranularityMonth:
		return dayStart(t.Year(), t.Month(), 1, loc)
	}
	return t
}

// dayStart returns the first instant of the local date y-m-d in loc (the
// date is normalized as time.Date does): its midnight, or, where the clocks
// skip midnight (America/Santiago on 2026-09-06, America/Havana), the end
// of the gap, 01:00. time.Date resolves a missing midnight into the day
// before (23:00 at the old offset), which would start the day an hour early
// and name it after the day before.
func dayStart(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if t.Hour() != 0 {
		_, end := t.ZoneBounds() // t is in the offset before the gap, which ends where the day begins
		t = end
	}
	return t
}

// Next returns the start of the bucket after the one starting at t, which
// Truncate or TruncateIn returned: days, weeks and months are counted in
// t's zone, so that a day may last 23 or 25 hours. For GranularityNone,
// whose one bucket has no end, it returns t unchanged.
func (g Granularity) Next(t time.Time) time.Time {
	switch g {
	case GranularityHour:
		return t.Add(time.Hour)
	case GranularityDay:
		return dayStart(t.Year(), t.Month(), t.Day()+1, t.Location())
	case GranularityWeek:
		return dayStart(t.Year(), t.Month(), t.Day()+7, t.Location())
	case GranularityMonth:
		return dayStart(t.Year(), t.Month()+1, 1, t.Location())
	}
	return t
}

// Buckets returns the starts of the buckets of granularity g in time zone
// loc that overlap iv, in order: the first is iv.Start truncated, so it may
// start before iv. For GranularityNone it returns one zero time, the Date
// of its rows.
func (g Granularity) Buckets(iv Interval, loc *time.Location) []time.Time {
	if g == GranularityNone {
		return []time.Time{{}}
	}
	var out []time.Time
	for t := g.TruncateIn(iv.Start, loc); t.Before(iv.End); t = g.Next(t) {
		out = append(out, t)
	}
	return out
}

// Dimension is something rows can be grouped by.
type Dimension int

const (
	DimClientID Dimension = iota
	DimOrganizationID
	DimUserID
	DimTemplateURI
	DimHTTPMethod
	DimPlatform
)

// Dimensions lists every dimension in its canonical order.
var Dimensions = []Dimension{DimClientID, DimOrganizationID, DimUserID, DimTemplateURI, DimHTTPMethod, DimPlatform}

var dimensions = enum[Dimension]{what: "a groupBy dimension", field: "groupBy",
	names: []string{"OAuthClientId", "OrganizationId", "UserId", "TemplateUri", "HttpMethod", "Platform"}}

func (d Dimension) String() string { return dimensions.name(d) }

// ParseDimension parses a dimension name (any case), e.g. "OAuthClientId".
func ParseDimension(s string) (Dimension, error) { return dimensions.parse(s) }

// Metric is a value kept for every group of events: a count (Metrics, the
// metrics of the Genesys usage query) or one of usaged's latency and traffic
// measures (MeasureMetrics), which only the aggregate query answers.
type Metric int

const (
	MetricRequests Metric = iota
	MetricStatus200
	MetricStatus300
	MetricStatus400
	MetricStatus500
	MetricStatus429

	// The measures (see Measures and Row.Measure). Durations are in ms;
	// events without one (0 ms) are not counted in them.
	MetricDurationP50   // median duration, within 1 % (exact up to 98 ms)
	MetricDurationP90   // 90th percentile duration, within 1 %
	MetricDurationP95   // 95th percentile duration, within 1 %
	MetricDurationP99   // 99th percentile duration, within 1 %
	MetricDurationMax   // longest duration, exact
	MetricDurationAvg   // mean duration, in thousandths of ms, rounded
	MetricRequestBytes  // sum of request bytes, exact
	MetricResponseBytes // sum of response bytes, exact
)

// Metrics lists every count in its canonical order: the metrics of the
// Genesys usage query, and those a query without metrics asks for.
var Metrics = []Metric{MetricRequests, MetricStatus200, MetricStatus300, MetricStatus400, MetricStatus500, MetricStatus429}

// MeasureMetrics lists every measure in its canonical order.
var MeasureMetrics = []Metric{MetricDurationP50, MetricDurationP90, MetricDurationP95, MetricDurationP99,
	MetricDurationMax, MetricDurationAvg, MetricRequestBytes, MetricResponseBytes}

var metrics = enum[Metric]{what: "a metric", field: "metrics",
	names: []string{"Requests", "Status200", "Status300", "Status400", "Status500", "Status429",
		"durationP50", "durationP90", "durationP95", "durationP99", "durationMax", "durationAvg", "requestBytes", "responseBytes"}}

func (m Metric) String() string { return metrics.name(m) }

// ParseMetric parses a metric name (any case), e.g. "Status429" or
// "durationP95".
func ParseMetric(s string) (Metric, error) { return metrics.parse(s) }

// IsMeasure reports whether m is one of MeasureMetrics rather than a count.
func (m Metric) IsMeasure() bool { return m >= MetricDurationP50 && m <= MetricResponseBytes }

// Filter restricts a query to events matching every non-empty list (each list
// is an IN). Client names match the latest name recorded for a client id.
type Filter struct {
	ClientIDs    []string
	ClientNames  []string
	UserIDs      []string
	TemplateURIs []string
	HTTPMethods  []string
	Platforms    []string
}

// Dimensions returns the dimensions the filter constrains.
func (f Filter) Dimensions() []Dimension {
	var ds []Dimension
	if len(f.ClientIDs) > 0 || len(f.ClientNames) > 0 {
		ds = append(ds, DimClientID)
	}
	if len(f.UserIDs) > 0 {
		ds = append(ds, DimUserID)
	}
	if len(f.TemplateURIs) > 0 {
		ds = append(ds, DimTemplateURI)
	}
	if len(f.HTTPMethods) > 0 {
		ds = append(ds, DimHTTPMethod)
	}
	if len(f.Platforms) > 0 {
		ds = append(ds, DimPlatform)
	}
	return ds
}

// Query asks for the counts of one organization's events in an interval,
// bucketed by granularity and grouped by dimensions.
type Query struct {
	OrganizationID string
	Interval       Interval
	Granularity    Granularity
	GroupBy        []Dimension // empty: one row per bucket
	// Metrics are what the query asks for; Normalize makes an empty list
	// every count (Metrics), never a measure. Rows always carry every
	// count, and their Measures only when a measure is asked for
	// (WantsMeasures); the faces project.
	Metrics []Metric
	Filter  Filter
	// MaxRows bounds the answer: a query with more groups fails with a
	// KindInvalid error instead of exhausting memory. 0 means DefaultMaxRows.
	MaxRows int
	// Location is the time zone whose days, weeks and months the buckets
	// are, and whose offsets must be whole hours over the interval (the
	// stores count by the hour); nil is UTC. Rows' dates stay the UTC
	// instants their buckets start at; the faces show them in the zone.
	// The stores of executions keep no zone: the faces that start
	// executions ask in UTC.
	Location *time.Location
}

// Zone returns q's time zone: Location, or UTC.
func (q *Query) Zone() *time.Location {
	if q.Location == nil {
		return time.UTC
	}
	return q.Location
}

// UTC reports whether q's buckets are UTC ones, which the stores' daily
// rollups hold.
func (q *Query) UTC() bool { return q.Location == nil || q.Location == time.UTC }

// Bucket returns the start of q's bucket that holds t, its local start in
// q's zone as a UTC time: the Date of its rows.
func (q *Query) Bucket(t time.Time) time.Time { return q.Granularity.TruncateIn(t, q.Zone()).UTC() }

// WantsMeasures reports whether q asks for a measure (MeasureMetrics): only
// then must a store fill its rows' Measures, whose decoding and merging cost
// it can otherwise skip.
func (q *Query) WantsMeasures() bool {
	for _, m := range q.Metrics {
		if m.IsMeasure() {
			return true
		}
	}
	return false
}

// DefaultMaxRows is the largest answer a query may have unless it says otherwise.
const DefaultMaxRows = 1_000_000

// TooManyRows is the error of a query whose answer has more than limit
// rows, its MaxRows: it fails rather than answer part of its rows.
func TooManyRows(limit int) error {
	return Errorf(KindInvalid, "", "the query has more than %d rows: narrow the interval, coarsen the granularity, group by fewer dimensions or filter", limit)
}

// Normalize validates q and returns it in canonical form: interval bounds on
// whole hours (start rounded down, end rounded up, so that every event of the
// requested span is covered), group-by dimensions deduplicated in canonical
// order, metrics defaulted to all, filter template URIs without a leading slash
// and HTTP methods upper case.
func (q Query) Normalize() (Query, error) {
	if q.OrganizationID == "" {
		return q, Errorf(KindInvalid, "organizationId", "organizationId is required")
	}
	if err := q.Interval.Validate(); err != nil {
		return q, err
	}
	q.Interval = q.Interval.Hours()
	if q.Granularity < GranularityNone || q.Granularity > GranularityMonth {
		return q, Errorf(KindInvalid, "granularity", "granularity %d is not valid", int(q.Granularity))
	}
	if err := wholeHours(q.Location, q.Interval); err != nil {
		return q, err
	}
	var gb []Dimension
	for _, d := range Dimensions {
		if slices.Contains(q.GroupBy, d) {
			gb = append(gb, d)
		}
	}
	for _, d := range q.GroupBy {
		if d < DimClientID || d > DimPlatform {
			return q, Errorf(KindInvalid, "groupBy", "groupBy dimension %d is not valid", int(d))
		}
	}
	q.GroupBy = gb
	for _, m := range q.Metrics {
		if m < MetricRequests || m > MetricResponseBytes {
			return q, Errorf(KindInvalid, "metrics", "metric %d is not valid", int(m))
		}
	}
	if len(q.Metrics) == 0 {
		q.Metrics = Metrics
	}
	if q.MaxRows <= 0 {
		q.MaxRows = DefaultMaxRows
	}
	f := q.Filter
	f.TemplateURIs = mapStrings(f.TemplateURIs, func(s string) string { return strings.TrimPrefix(s, "/") })
	f.HTTPMethods = mapStrings(f.HTTPMethods, strings.ToUpper)
	q.Filter = f
	return q, nil
}

// wholeHours checks that time zone loc's offset from UTC is a whole number
// of hours throughout iv: usaged counts by the hour, so a zone with 30- or
// 45-minute offsets (Asia/Kolkata, Asia/Kathmandu, Australia/Adelaide) has
// days it cannot count exactly, and those are refused rather than
// approximated.
func wholeHours(loc *time.Location, iv Interval) error {
	if loc == nil {
		return nil
	}
	for t := iv.Start.In(loc); t.Before(iv.End); {
		name, offset := t.Zone()
		if offset%3600 != 0 {
			return Errorf(KindInvalid, "timeZone", "time zone %s is %s (UTC%s) on %s: usaged counts by the hour, so it answers only in zones whose offsets are whole hours",
				loc, name, t.Format("-07:00"), t.Format(time.DateOnly))
		}
		_, end := t.ZoneBounds()
		if end.IsZero() {
			break
		}
		t = end
	}
	return nil
}

func mapStrings(in []string, fn func(string) string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = fn(s)
	}
	return out
}

// Row is one group of a query's result. Dimensions not grouped by are empty;
// Date is the bucket start, zero without a granularity.
type Row struct {
	Date           time.Time
	ClientID       string
	ClientName     string // the latest name recorded for ClientID, when grouped by client
	OrganizationID string
	UserID         string
	TemplateURI    string
	HTTPMethod     string
	Platform       string
	Counts
	// Measures are the group's latency and traffic measures when its query
	// WantsMeasures, else nil; read them with Measure. Stores fill them;
	// nil also stands for a group without events (a filled empty bucket).
	Measures *Measures
}

// Measure returns the value of measure metric m for r, and whether it has
// one: durations in ms (durationAvg in thousandths of ms, Measures.AvgMillis),
// bytes as exact sums. A group without durations has no duration value:
// Measure returns 0 and false for its duration metrics, which the faces
// write as 0 (a counted duration is at least 1 ms, so 0 is never a real
// one). Bytes always have a value, 0 when none were counted. A count metric
// returns 0 and false.
func (r *Row) Measure(m Metric) (int64, bool) {
	var ms Measures
	if r.Measures != nil {
		ms = *r.Measures
	}
	switch m {
	case MetricRequestBytes:
		return ms.RequestBytes, true
	case MetricResponseBytes:
		return ms.ResponseBytes, true
	}
	if !m.IsMeasure() || ms.Durations == 0 {
		return 0, false
	}
	switch m {
	case MetricDurationP50:
		return ms.Quantile(0.5), true
	case MetricDurationP90:
		return ms.Quantile(0.9), true
	case MetricDurationP95:
		return ms.Quantile(0.95), true
	case MetricDurationP99:
		return ms.Quantile(0.99), true
	case MetricDurationMax:
		return ms.DurationMax, true
	case MetricDurationAvg:
		return ms.AvgMillis(), true
	}
	return 0, false
}

// Dim returns the row's value for dimension d.
func (r *Row) Dim(d Dimension) string {
	switch d {
	case DimClientID:
		return r.ClientID
	case DimOrganizationID:
		return r.OrganizationID
	case DimUserID:
		return r.UserID
	case DimTemplateURI:
		return r.TemplateURI
	case DimHTTPMethod:
		return r.HTTPMethod
	case DimPlatform:
		return r.Platform
	}
	return ""
}

// CompareRows orders rows by date, then by each dimension in canonical order.
func CompareRows(a, b *Row) int {
	if c := a.Date.Compare(b.Date); c != 0 {
		return c
	}
	for _, d := range Dimensions {
		if c := strings.Compare(a.Dim(d), b.Dim(d)); c != 0 {
			return c
		}
	}
	return 0
}
