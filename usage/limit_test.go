package usage

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// validLimit is a limit that Normalize accepts; cases change one thing.
func validLimit() Limit {
	return Limit{OrganizationID: "o1", Name: "daily requests", Metric: LimitRequests,
		Window: Window{Type: WindowDay, TimeZone: "Europe/Berlin"}, Value: 1000, Thresholds: []int{100, 50, 80}}
}

// fields returns the fields of the *Errors joined in err.
func fields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var e *Error
		if errors.As(err, &e) {
			out = append(out, e.Field)
		}
	}
	walk(err)
	return out
}

func TestLimitNormalize(t *testing.T) {
	now := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)
	good, err := validLimit().Normalize(now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(good.Thresholds, []int{50, 80, 100}) {
		t.Errorf("thresholds = %v, want sorted", good.Thresholds)
	}
	f := func(name string, change func(l *Limit), wantFields ...string) {
		t.Helper()
		l := validLimit()
		change(&l)
		_, err := l.Normalize(now)
		got := fields(err)
		if len(wantFields) == 0 {
			if err != nil {
				t.Errorf("%s: %v, want accepted", name, err)
			}
			return
		}
		if err == nil {
			t.Errorf("%s: accepted, want an error naming %v", name, wantFields)
			return
		}
		for _, e := range []error{err} {
			if KindOf(e) != KindInvalid {
				t.Errorf("%s: kind %v, want invalid", name, KindOf(e))
			}
		}
		if !slices.Equal(got, wantFields) {
			t.Errorf("%s: fields %v (%v), want %v", name, got, err, wantFields)
		}
	}
	f("UTC", func(l *Limit) { l.Window.TimeZone = "" })
	f("no organization", func(l *Limit) { l.OrganizationID = "" }, "organizationId")
	f("blank name", func(l *Limit) { l.Name = "  " }, "name")
	f("long name", func(l *Limit) { l.Name = strings.Repeat("n", MaxNameLen+1) }, "name")
	f("control character in name", func(l *Limit) { l.Name = "a\x1bb" }, "name")
	f("control character in client", func(l *Limit) { l.Scope, l.ClientID = ScopeClient, "c\n1" }, "clientId")
	f("bidi override in template", func(l *Limit) { l.Filter.TemplateURIs = []string{"api/\u202e"} }, "filter.templateUris")
	f("client scope without client", func(l *Limit) { l.Scope = ScopeClient }, "clientId")
	f("client scope", func(l *Limit) { l.Scope, l.ClientID = ScopeClient, "c1" })
	f("client with organization scope", func(l *Limit) { l.ClientID = "c1" }, "clientId")
	f("client with eachClient scope", func(l *Limit) { l.Scope, l.ClientID = ScopeEachClient, "c1" }, "clientId")
	f("scope out of range", func(l *Limit) { l.Scope = 7 }, "scope")
	f("empty user in filter", func(l *Limit) { l.Filter.UserIDs = []string{"u1", ""} }, "filter.userIds")
	f("too many templates", func(l *Limit) { l.Filter.TemplateURIs = slices.Repeat([]string{"t"}, MaxLimitFilterItems+1) }, "filter.templateUris")
	f("metric out of range", func(l *Limit) { l.Metric = 99 }, "metric")
	f("zero value", func(l *Limit) { l.Value = 0 }, "value")
	f("fractional count", func(l *Limit) { l.Value = 10.5 }, "value")
	f("count too large", func(l *Limit) { l.Value = MaxLimitValue * 2 }, "value")
	f("NaN", func(l *Limit) { l.Value = math.NaN() }, "value")
	f("error rate", func(l *Limit) { l.Metric, l.Value = LimitErrorRate, 0.05 })
	f("error rate of one", func(l *Limit) { l.Metric, l.Value = LimitErrorRate, 1 })
	f("error rate above one", func(l *Limit) { l.Metric, l.Value = LimitErrorRate, 5 }, "value")
	f("response bytes", func(l *Limit) { l.Metric, l.Value = LimitResponseBytes, 1<<30 })
	f("rolling window", func(l *Limit) { l.Window = Window{Type: WindowRolling, Minutes: 60} })
	f("rolling day in a half-hour zone", func(l *Limit) {
		l.Window = Window{Type: WindowRolling, Minutes: MaxRollingMinutes, TimeZone: "Asia/Kolkata"}
	})
	f("rolling without minutes", func(l *Limit) { l.Window = Window{Type: WindowRolling} }, "window.minutes")
	f("rolling too long", func(l *Limit) { l.Window = Window{Type: WindowRolling, Minutes: MaxRollingMinutes + 1} }, "window.minutes")
	f("rolling in an unknown zone", func(l *Limit) { l.Window = Window{Type: WindowRolling, Minutes: 5, TimeZone: "Mars/Olympus"} }, "window.timeZone")
	f("minutes of a calendar window", func(l *Limit) { l.Window.Minutes = 5 }, "window.minutes")
	f("window type out of range", func(l *Limit) { l.Window.Type = 9 }, "window.type")
	f("unknown zone", func(l *Limit) { l.Window.TimeZone = "Mars/Olympus" }, "window.timeZone")
	f("Local", func(l *Limit) { l.Window.TimeZone = "Local" }, "window.timeZone")
	f("half-hour zone", func(l *Limit) { l.Window.TimeZone = "Asia/Kolkata" }, "window.timeZone")
	f("45-minute zone", func(l *Limit) { l.Window.TimeZone = "Asia/Kathmandu" }, "window.timeZone")
	f("whole-hour zone with DST", func(l *Limit) { l.Window.TimeZone = "America/New_York" })
	f("no thresholds", func(l *Limit) { l.Thresholds = nil })
	f("threshold 0", func(l *Limit) { l.Thresholds = []int{0, 50} }, "thresholds")
	f("threshold 1001", func(l *Limit) { l.Thresholds = []int{1001} }, "thresholds")
	f("threshold 1000", func(l *Limit) { l.Thresholds = []int{1, 1000} })
	f("repeated threshold", func(l *Limit) { l.Thresholds = []int{80, 50, 80} }, "thresholds")
	f("too many thresholds", func(l *Limit) { l.Thresholds = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11} }, "thresholds")
	f("several problems", func(l *Limit) { l.Name, l.Value = "", -1 }, "name", "value")
}

func TestLimitNormalizeCanonical(t *testing.T) {
	l := validLimit()
	l.Name = "  spaced  "
	l.Filter = LimitFilter{TemplateURIs: []string{"/api/v2/users"}, HTTPMethods: []string{"get"}}
	in := slices.Clone(l.Thresholds)
	got, err := l.Normalize(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "spaced" || got.Filter.TemplateURIs[0] != "api/v2/users" || got.Filter.HTTPMethods[0] != "GET" {
		t.Errorf("Normalize = %+v", got)
	}
	if !slices.Equal(l.Thresholds, in) {
		t.Errorf("Normalize sorted the caller's thresholds: %v", l.Thresholds)
	}
}

func TestParseLimitNames(t *testing.T) {
	f := func(parse func(string) (int, error), name string, want int, field string) {
		t.Helper()
		got, err := parse(name)
		if field != "" {
			var e *Error
			if !errors.As(err, &e) || e.Field != field {
				t.Errorf("%q: %v, want an error naming %s", name, err, field)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("%q = %d, %v; want %d", name, got, err, want)
		}
	}
	scope := func(s string) (int, error) { v, err := ParseLimitScope(s); return int(v), err }
	metric := func(s string) (int, error) { v, err := ParseLimitMetric(s); return int(v), err }
	window := func(s string) (int, error) { v, err := ParseWindowType(s); return int(v), err }
	f(scope, "eachclient", int(ScopeEachClient), "")
	f(scope, "all", 0, "scope")
	f(metric, "ErrorRate", int(LimitErrorRate), "")
	f(metric, "status429", int(LimitStatus429), "")
	f(metric, "durationP50", 0, "metric")
	f(window, "week", int(WindowWeek), "")
	f(window, "year", 0, "window.type")
}

// TestWindowCurrent checks windows written out by hand, across Berlin's
// change to summer time on 2026-03-29 (a 23-hour day) and back on
// 2026-10-25 (25 hours).
func TestWindowCurrent(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	f := func(w Window, now, start, end string) {
		t.Helper()
		iv, err := w.Current(utc(now))
		if err != nil {
			t.Fatal(err)
		}
		if !iv.Start.Equal(utc(start)) || !iv.End.Equal(utc(end)) {
			t.Errorf("%+v at %s = %v, want %s/%s", w, now, iv, start, end)
		}
		if w.TimeZone == "Europe/Berlin" && iv.Start.Location().String() != berlin.String() {
			t.Errorf("%+v: window in %v, want in the limit's zone", w, iv.Start.Location())
		}
	}
	day := Window{Type: WindowDay, TimeZone: "Europe/Berlin"}
	f(day, "2026-03-29T12:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z")
	f(day, "2026-03-28T23:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z")
	f(day, "2026-03-28T22:59:59Z", "2026-03-27T23:00:00Z", "2026-03-28T23:00:00Z")
	f(day, "2026-10-25T12:00:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z")
	f(Window{Type: WindowDay}, "2026-03-29T12:00:00Z", "2026-03-29T00:00:00Z", "2026-03-30T00:00:00Z")
	f(Window{Type: WindowHour, TimeZone: "Europe/Berlin"}, "2026-03-29T12:34:00Z", "2026-03-29T12:00:00Z", "2026-03-29T13:00:00Z")
	f(Window{Type: WindowWeek, TimeZone: "Europe/Berlin"}, "2026-03-29T12:00:00Z", "2026-03-22T23:00:00Z", "2026-03-29T22:00:00Z")
	f(Window{Type: WindowMonth, TimeZone: "Europe/Berlin"}, "2026-03-29T12:00:00Z", "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z")
	if _, err := (Window{Type: WindowRolling, Minutes: 5}).Current(time.Now()); KindOf(err) != KindInvalid {
		t.Errorf("rolling window: %v, want invalid", err)
	}
	at, _ := time.Parse(time.RFC3339Nano, "2026-03-29T12:34:56.789Z")
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	iv := Window{Type: WindowRolling, Minutes: 5}.RollingIn(at, tokyo)
	if got := iv.Start.Format(time.RFC3339) + " " + iv.End.Format(time.RFC3339); got != "2026-03-29T21:30:00+09:00 2026-03-29T21:35:00+09:00" {
		t.Errorf("rolling 5 minutes at %s = %s", at, got)
	}
}

// TestLimitStatus checks values worked out by hand from rows.
func TestLimitStatus(t *testing.T) {
	rows := []Row{
		{ClientID: "b", Counts: Counts{Requests: 10, Status200: 6, Status400: 3, Status429: 1, Status500: 1}, Measures: &Measures{ResponseBytes: 100}},
		{ClientID: "a", Counts: Counts{Requests: 4, Status200: 4}, Measures: &Measures{ResponseBytes: 7}},
	}
	f := func(m LimitMetric, scope LimitScope, value float64, want float64, wantClients ...float64) {
		t.Helper()
		l := Limit{Metric: m, Scope: scope, Value: value}
		st := l.Status(Interval{}, rows)
		if st.Value != want {
			t.Errorf("%s %s: value %v, want %v", m, scope, st.Value, want)
		}
		var got []float64
		for _, c := range st.Clients {
			got = append(got, c.Value)
		}
		if !slices.Equal(got, wantClients) {
			t.Errorf("%s %s: clients %v, want %v", m, scope, got, wantClients)
		}
	}
	f(LimitRequests, ScopeOrganization, 100, 14)
	f(LimitStatus400, ScopeOrganization, 100, 3)
	f(LimitStatus429, ScopeOrganization, 100, 1)
	f(LimitErrorRate, ScopeOrganization, 0.5, 4.0/14)
	f(LimitResponseBytes, ScopeOrganization, 1000, 107)
	f(LimitRequests, ScopeEachClient, 100, 10, 4, 10) // ordered by client: a, b
	f(LimitErrorRate, ScopeEachClient, 0.5, 0.4, 0, 0.4)
	if st := (&Limit{Metric: LimitErrorRate}).Status(Interval{}, nil); st.Value != 0 {
		t.Errorf("error rate without requests = %v, want 0", st.Value)
	}
	if p := (&Limit{Value: 200}).Percent(50); p != 25 {
		t.Errorf("Percent = %v, want 25", p)
	}
}
