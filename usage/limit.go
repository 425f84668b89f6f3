package usage

import (
	"errors"
	"math"
	"slices"
	"strings"
	"time"
)

// Limit is a usage limit of an organization: a bound on one metric of its
// API requests over a calendar or rolling window, with the percentages of it to notify
// at and whether it is to be enforced. Its ID is stable for its life;
// Version grows by one with every change, so that whatever acts on a limit
// (notifications, enforcement) can tell which definition it acted on.
type Limit struct {
	ID             string
	OrganizationID string
	Name           string
	// Scope is what the limit counts: the whole organization, one client
	// (ClientID), or each client on its own.
	Scope    LimitScope
	ClientID string // ScopeClient only
	// Filter narrows what is counted; empty lists do not filter.
	Filter LimitFilter
	Metric LimitMetric
	Window Window
	// Value is the limit: a count for the count metrics and responseBytes,
	// a ratio from 0 to 1 for LimitErrorRate.
	Value float64
	// Thresholds are the percentages of Value to notify at, ascending,
	// without repeats.
	Thresholds []int
	Enforced   bool
	Version    int64
	Created    time.Time
	Updated    time.Time
}

// LimitFilter restricts a limit to events matching every non-empty list
// (each list is an IN), with the names of Event's fields.
type LimitFilter struct {
	UserIDs      []string `json:",omitempty"`
	TemplateURIs []string `json:",omitempty"`
	HTTPMethods  []string `json:",omitempty"`
}

// LimitScope is what a limit's value is compared with.
type LimitScope int

const (
	ScopeOrganization LimitScope = iota // the organization's events together
	ScopeClient                         // the events of one client, Limit.ClientID
	ScopeEachClient                     // each client's events, each client on its own
)

var limitScopes = enum[LimitScope]{what: "a limit scope", field: "scope", names: []string{"organization", "client", "eachClient"}}

func (s LimitScope) String() string { return limitScopes.name(s) }

// ParseLimitScope parses organization, client or eachClient (any case).
func ParseLimitScope(s string) (LimitScope, error) { return limitScopes.parse(s) }

// LimitMetric is what a limit bounds.
type LimitMetric int

const (
	LimitRequests      LimitMetric = iota // every request
	LimitStatus200                        // 2xx
	LimitStatus300                        // 3xx
	LimitStatus400                        // 4xx, 429 included (Counts.Status400)
	LimitStatus500                        // 5xx
	LimitStatus429                        // 429 only
	LimitErrorRate                        // (Status400 + Status500) / Requests, a ratio
	LimitResponseBytes                    // the sum of response bytes (a measure)
)

var limitMetrics = enum[LimitMetric]{what: "a limit metric", field: "metric",
	names: []string{"requests", "status200", "status300", "status400", "status500", "status429", "errorRate", "responseBytes"}}

func (m LimitMetric) String() string { return limitMetrics.name(m) }

// ParseLimitMetric parses a limit metric's name (any case), e.g. "errorRate".
func ParseLimitMetric(s string) (LimitMetric, error) { return limitMetrics.parse(s) }

// QueryMetrics returns the query metrics m is computed from.
func (m LimitMetric) QueryMetrics() []Metric {
	switch m {
	case LimitStatus200:
		return []Metric{MetricStatus200}
	case LimitStatus300:
		return []Metric{MetricStatus300}
	case LimitStatus400:
		return []Metric{MetricStatus400}
	case LimitStatus500:
		return []Metric{MetricStatus500}
	case LimitStatus429:
		return []Metric{MetricStatus429}
	case LimitErrorRate:
		return []Metric{MetricRequests, MetricStatus400, MetricStatus500}
	case LimitResponseBytes:
		return []Metric{MetricResponseBytes}
	}
	return []Metric{MetricRequests}
}

// Of returns m's value for the group of row r: a count, the bytes, or the
// error rate (0 for a group without requests).
func (m LimitMetric) Of(r *Row) float64 {
	switch m {
	case LimitErrorRate:
		if r.Requests == 0 {
			return 0
		}
		return float64(r.Status400+r.Status500) / float64(r.Requests)
	case LimitResponseBytes:
		v, _ := r.Measure(MetricResponseBytes)
		return float64(v)
	}
	return float64(r.Get(m.QueryMetrics()[0]))
}

// WindowType is the kind of window a limit counts over.
type WindowType int

const (
	WindowHour    WindowType = iota // the clock hour
	WindowDay                       // the calendar day
	WindowWeek                      // the ISO week, from Monday 00:00
	WindowMonth                     // the calendar month
	WindowRolling                   // the last Minutes whole minutes, the present one included
)

var windowTypes = enum[WindowType]{what: "a window type", field: "window.type", names: []string{"hour", "day", "week", "month", "rolling"}}

func (w WindowType) String() string { return windowTypes.name(w) }

// ParseWindowType parses hour, day, week, month or rolling (any case).
func ParseWindowType(s string) (WindowType, error) { return windowTypes.parse(s) }

// Window is the span a limit counts over: the calendar hour, day, ISO week
// or month holding the present, in an IANA time zone, or the last Minutes
// minutes (a rolling window, whose zone only shows its bounds).
type Window struct {
	Type WindowType
	// TimeZone is the IANA zone of the calendar; "" is UTC. Its offsets
	// must be whole hours, as a query's (Query.Location).
	TimeZone string `json:",omitempty"`
	// Minutes is the length of a rolling window, 1 to MaxRollingMinutes.
	Minutes int `json:",omitempty"`
}

// Location returns the window's time zone.
func (w Window) Location() (*time.Location, error) {
	if w.TimeZone == "" {
		return time.UTC, nil
	}
	loc, err := LoadLocation(w.TimeZone)
	if err != nil {
		return nil, Errorf(KindInvalid, "window.timeZone", "window.timeZone %q is not an IANA time zone, such as Europe/Berlin or America/New_York", w.TimeZone)
	}
	return loc, nil
}

// granularity is the calendar unit of a calendar window.
func (w Window) granularity() Granularity {
	switch w.Type {
	case WindowHour:
		return GranularityHour
	case WindowDay:
		return GranularityDay
	case WindowWeek:
		return GranularityWeek
	case WindowMonth:
		return GranularityMonth
	}
	return GranularityNone
}

// Current returns the window holding now, its start included and its end
// excluded, both in the window's zone: a day may last 23 or 25 hours.
func (w Window) Current(now time.Time) (Interval, error) {
	loc, err := w.Location()
	if err != nil {
		return Interval{}, err
	}
	return w.CurrentIn(now, loc)
}

// CurrentIn is Current with the window's zone already loaded (Location):
// loading a zone reads it from disk. A rolling window has no calendar
// bound: it is an error here, and its span is RollingIn's.
func (w Window) CurrentIn(now time.Time, loc *time.Location) (Interval, error) {
	g := w.granularity()
	if g == GranularityNone {
		return Interval{}, ErrRolling
	}
	start := g.TruncateIn(now, loc)
	return Interval{Start: start, End: g.Next(start)}, nil
}

// ErrRolling is Current's error for a rolling window, which only the
// usage limits' evaluator counts (it keeps their minutes); counts by the
// hour cannot answer the last N minutes.
var ErrRolling = Errorf(KindInvalid, "window.type", "a rolling window cannot be counted from the stored counts, which are kept by the hour; only the usage limits' evaluators, of the embedded store or of the cluster, count one")

// UnixMinute is the minute t falls in, in minutes since the Unix epoch:
// what a rolling window counts by.
func UnixMinute(t time.Time) int64 {
	s := t.Unix()
	m := s / 60
	if s%60 < 0 {
		m--
	}
	return m
}

// MaxRollingMinutes is the longest rolling window: a day.
const MaxRollingMinutes = 24 * 60

// RollingIn returns the span of rolling window w at now in loc: the minute
// holding now and the Minutes-1 before it, whole minutes, its end excluded.
// Events stamped after it (ahead of the clock) count in it too as soon as
// they are accepted, so that time passing only ever lowers its value.
func (w Window) RollingIn(now time.Time, loc *time.Location) Interval {
	end := now.Truncate(time.Minute).Add(time.Minute)
	return Interval{Start: end.Add(-time.Duration(w.Minutes) * time.Minute).In(loc), End: end.In(loc)}
}

// Limits on a limit's definition; its name is a name as any other
// (CheckName).
const (
	MaxLimitThresholds  = 10
	MaxLimitThreshold   = 1000 // percent
	MaxLimitFilterItems = 100
	// MaxLimitValue is the largest count a limit may have: every whole
	// number up to it is exact as a float64.
	MaxLimitValue = 1 << 53
)

// zoneCheckSpan is how far around its validation a limit's zone must have
// whole-hour offsets: a zone whose offsets leave whole hours later still
// fails at the status of a window then, as any query does.
const zoneCheckSpan = 366 * 24 * time.Hour

// Normalize validates l, as of now, and returns it in canonical form:
// name trimmed, thresholds sorted, filter templates without a leading slash
// and methods upper case. Every problem is an error of KindInvalid naming
// its field; all of them are joined.
func (l Limit) Normalize(now time.Time) (Limit, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, Errorf(KindInvalid, field, format, args...))
	}
	if l.OrganizationID == "" {
		bad("organizationId", "organizationId is required")
	}
	l.Name = strings.TrimSpace(l.Name)
	if err := CheckName("name", l.Name); err != nil {
		errs = append(errs, err)
	}
	switch l.Scope {
	case ScopeClient:
		if l.ClientID == "" {
			bad("clientId", "clientId is required with scope client")
		} else if err := CheckText("clientId", l.ClientID); err != nil {
			errs = append(errs, err)
		}
	case ScopeOrganization, ScopeEachClient:
		if l.ClientID != "" {
			bad("clientId", "clientId is allowed only with scope client, not %s", l.Scope)
		}
	default:
		bad("scope", "scope %d is not valid", int(l.Scope))
	}
	l.Filter.TemplateURIs = mapStrings(l.Filter.TemplateURIs, func(s string) string { return strings.TrimPrefix(s, "/") })
	l.Filter.HTTPMethods = mapStrings(l.Filter.HTTPMethods, strings.ToUpper)
	for _, f := range []struct {
		field string
		list  []string
	}{{"filter.userIds", l.Filter.UserIDs}, {"filter.templateUris", l.Filter.TemplateURIs}, {"filter.httpMethods", l.Filter.HTTPMethods}} {
		if len(f.list) > MaxLimitFilterItems {
			bad(f.field, "%s may hold at most %d values, not %d", f.field, MaxLimitFilterItems, len(f.list))
		}
		for _, v := range f.list {
			if v == "" {
				bad(f.field, "%s must not hold an empty value", f.field)
				break
			}
			if err := CheckText(f.field, v); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	switch {
	case l.Metric < LimitRequests || l.Metric > LimitResponseBytes:
		bad("metric", "metric %d is not valid", int(l.Metric))
	case l.Metric == LimitErrorRate:
		if !(l.Value > 0 && l.Value <= 1) { // NaN too
			bad("value", "value of an errorRate limit is a ratio greater than 0 and at most 1, such as 0.05, not %v", l.Value)
		}
	default:
		if !(l.Value >= 1 && l.Value <= MaxLimitValue) || l.Value != math.Trunc(l.Value) {
			bad("value", "value of a %s limit is a whole number from 1 to %d, not %v", l.Metric, int64(MaxLimitValue), l.Value)
		}
	}
	if l.Enforced && l.Metric == LimitErrorRate {
		// A refused request is a 429, an error: enforcing an error rate
		// would hold it up by its own refusals.
		bad("enforced", "an errorRate limit cannot be enforced: its refusals (429s) are errors that would keep the rate up; notify on it instead")
	}
	switch {
	case l.Window.Type == WindowRolling:
		if l.Window.Minutes < 1 || l.Window.Minutes > MaxRollingMinutes {
			bad("window.minutes", "window.minutes of a rolling window is a whole number of minutes from 1 to %d, not %d", MaxRollingMinutes, l.Window.Minutes)
		}
		if _, err := l.Window.Location(); err != nil {
			errs = append(errs, err)
		}
	case l.Window.Type < WindowHour || l.Window.Type > WindowRolling:
		bad("window.type", "window type %d is not valid", int(l.Window.Type))
	default:
		if l.Window.Minutes != 0 {
			bad("window.minutes", "window.minutes applies only to rolling windows, not to %s ones", l.Window.Type)
		}
		loc, err := l.Window.Location()
		if err != nil {
			errs = append(errs, err)
			break
		}
		if err := wholeHours(loc, Interval{Start: now.Add(-zoneCheckSpan), End: now.Add(zoneCheckSpan)}); err != nil {
			var e *Error
			if errors.As(err, &e) {
				err = Errorf(KindInvalid, "window.timeZone", "%s", e.Message)
			}
			errs = append(errs, err)
		}
	}
	if len(l.Thresholds) > MaxLimitThresholds {
		bad("thresholds", "thresholds may hold at most %d percentages, not %d", MaxLimitThresholds, len(l.Thresholds))
	}
	l.Thresholds = slices.Clone(l.Thresholds)
	slices.Sort(l.Thresholds)
	for i, p := range l.Thresholds {
		if p < 1 || p > MaxLimitThreshold {
			bad("thresholds", "each threshold is a percentage from 1 to %d, not %d", MaxLimitThreshold, p)
			break
		}
		if i > 0 && p == l.Thresholds[i-1] {
			bad("thresholds", "threshold %d%% is given twice", p)
			break
		}
	}
	if len(errs) > 0 {
		return l, errors.Join(errs...)
	}
	return l, nil
}

// Query returns the query of the counts l's status is computed from over
// iv: its scope's client, its filters and metric, grouped by client when
// it applies to each client. It is not normalized.
func (l *Limit) Query(iv Interval, loc *time.Location) Query {
	q := Query{
		OrganizationID: l.OrganizationID,
		Interval:       iv,
		Metrics:        l.Metric.QueryMetrics(),
		Location:       loc,
		Filter: Filter{
			UserIDs:      l.Filter.UserIDs,
			TemplateURIs: l.Filter.TemplateURIs,
			HTTPMethods:  l.Filter.HTTPMethods,
		},
	}
	switch l.Scope {
	case ScopeClient:
		q.Filter.ClientIDs = []string{l.ClientID}
	case ScopeEachClient:
		q.GroupBy = []Dimension{DimClientID}
	}
	return q
}

// CurrentStatus counts l's status in its window holding now, exactly, from
// the rows query answers for the limit's query (l.Query) of that window,
// normalized with at most maxRows rows (0: no bound): the status route's
// count and the limits stream's where the store cannot show its commits.
func (l *Limit) CurrentStatus(now time.Time, maxRows int, query func(Query) ([]Row, error)) (LimitStatus, error) {
	window, err := l.Window.Current(now)
	if err != nil {
		return LimitStatus{}, err
	}
	q := l.Query(window, window.Start.Location())
	q.MaxRows = maxRows
	if q, err = q.Normalize(); err != nil {
		return LimitStatus{}, err
	}
	rows, err := query(q)
	if err != nil {
		return LimitStatus{}, err
	}
	return l.Status(window, rows), nil
}

// LimitStatus is where a limit stands in its current window.
type LimitStatus struct {
	Window Interval // the current window, in the limit's zone
	// Value is the metric over the window: of the organization, or of the
	// limit's client; for ScopeEachClient the greatest of Clients' values.
	Value float64
	// Clients are, for ScopeEachClient, the value of every client with
	// events in the window that the limit counts, ordered by client ID.
	Clients []ClientLimitStatus
}

// ClientLimitStatus is one client's value for a limit that applies to each
// client.
type ClientLimitStatus struct {
	ClientID   string
	ClientName string
	Value      float64
}

// Percent returns value as a percentage of limit's Value.
func (l *Limit) Percent(value float64) float64 {
	if l.Value == 0 {
		return 0
	}
	return value / l.Value * 100
}

// Status returns l's status over window from rows, the answer to
// l.Query(window, …) normalized.
func (l *Limit) Status(window Interval, rows []Row) LimitStatus {
	st := LimitStatus{Window: window}
	if l.Scope != ScopeEachClient {
		var r Row
		for i := range rows {
			r.Counts.Add(rows[i].Counts)
			if rows[i].Measures != nil {
				if r.Measures == nil {
					r.Measures = &Measures{}
				}
				r.Measures.ResponseBytes += rows[i].Measures.ResponseBytes
			}
		}
		st.Value = l.Metric.Of(&r)
		return st
	}
	for i := range rows {
		v := l.Metric.Of(&rows[i])
		st.Clients = append(st.Clients, ClientLimitStatus{ClientID: rows[i].ClientID, ClientName: rows[i].ClientName, Value: v})
		st.Value = max(st.Value, v)
	}
	slices.SortFunc(st.Clients, func(a, b ClientLimitStatus) int { return strings.Compare(a.ClientID, b.ClientID) })
	return st
}

// LimitValue is the value of an enforced limit's metric in its current
// window, for a limit on each client one client's: what enforcement (the
// metering proxy and middleware) learns from usaged.
type LimitValue struct {
	OrganizationID string
	LimitID        string
	Version        int64    // of the limit the value is of
	Window         Interval // in the limit's zone
	ClientID       string   // ScopeEachClient only
	Value          float64
}

// LimitUpdate is what changed in the enforced limits: limits new or
// changed (a new version), limits no longer enforced (deleted, or changed
// to not be enforced: only their OrganizationID and ID are set), and
// values. Values are absolute, so an update may repeat one.
type LimitUpdate struct {
	Limits  []Limit
	Removed []Limit
	Values  []LimitValue
}

// Empty reports whether u changes nothing.
func (u *LimitUpdate) Empty() bool {
	return len(u.Limits) == 0 && len(u.Removed) == 0 && len(u.Values) == 0
}

// Of returns the part of u that is organization org's.
func (u *LimitUpdate) Of(org string) LimitUpdate {
	var out LimitUpdate
	for _, l := range u.Limits {
		if l.OrganizationID == org {
			out.Limits = append(out.Limits, l)
		}
	}
	for _, l := range u.Removed {
		if l.OrganizationID == org {
			out.Removed = append(out.Removed, l)
		}
	}
	for _, v := range u.Values {
		if v.OrganizationID == org {
			out.Values = append(out.Values, v)
		}
	}
	return out
}

// Applies reports whether a request of clientID, by userID, to template
// with method counts towards l: its scope's client and its filters.
func (l *Limit) Applies(clientID, userID, template, method string) bool {
	return (l.Scope != ScopeClient || clientID == l.ClientID) &&
		(len(l.Filter.UserIDs) == 0 || slices.Contains(l.Filter.UserIDs, userID)) &&
		(len(l.Filter.TemplateURIs) == 0 || slices.Contains(l.Filter.TemplateURIs, template)) &&
		(len(l.Filter.HTTPMethods) == 0 || slices.Contains(l.Filter.HTTPMethods, method))
}
