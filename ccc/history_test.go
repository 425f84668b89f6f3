package ccc_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// GetServiceUsageHistory answers, period by period, what the oracle counts
// and what GetServiceUsage answers for each period.
func TestServiceUsageHistory(t *testing.T) {
	sc := mustScenario(t)
	e := sc.e
	lastDay := firstDay.AddDate(0, 0, days-1)
	history := func(i int, query string) string { return sc.usagePath(i) + "/history?" + query }

	for i := range sc.services {
		for _, key := range sc.keysFor(i) {
			var got []serviceUsage
			e.getJSON(t, history(i, "From="+firstDay.Format(time.DateOnly)+"&To="+lastDay.Format(time.DateOnly)), key, &got)
			if len(got) != days {
				t.Fatalf("service %d: %d days, want %d", i, len(got), days)
			}
			for d := range got {
				p := daily(firstDay.AddDate(0, 0, d))
				sc.checkUsage(t, fmt.Sprintf("service %d day %d", i, d), got[d], i, p)
				var single serviceUsage
				if d%7 == 0 {
					e.getJSON(t, sc.usagePath(i)+"?"+p.query(), key, &single)
					if !reflect.DeepEqual(single, got[d]) {
						t.Errorf("service %d %s: history and GetServiceUsage differ", i, p)
					}
				}
			}
		}
		// Months, any day of the month naming it; the current one so far.
		var months []serviceUsage
		e.getJSON(t, history(i, "PeriodType=monthly&From="+firstDay.AddDate(0, 0, 1).Format(time.DateOnly)+"&To="+epoch.Format(time.RFC3339)), adminToken, &months)
		want := []period{monthly(firstDay), monthly(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)), monthly(epoch)}
		if len(months) != len(want) {
			t.Fatalf("service %d: %d months, want %d", i, len(months), len(want))
		}
		for k, p := range want {
			sc.checkUsage(t, fmt.Sprintf("service %d month %d", i, k), months[k], i, p)
		}
	}

	// Defaults: the 30 days, or the 12 months, ending today.
	var got []serviceUsage
	e.getJSON(t, history(0, ""), adminToken, &got)
	if len(got) != 30 || got[29].Period != wireTimeOf(daily(epoch).start) || got[0].Period != wireTimeOf(daily(epoch).start.AddDate(0, 0, -29)) {
		t.Fatalf("default history: %d days from %v", len(got), got)
	}
	for d := range got {
		sc.checkUsage(t, "default day", got[d], 0, daily(daily(epoch).start.AddDate(0, 0, d-29)))
	}
	got = nil
	e.getJSON(t, history(0, "PeriodType=Monthly"), adminToken, &got)
	if len(got) != 12 || got[0].Period != "2025-04-01T00:00:00Z" || got[11].Period != "2026-03-01T00:00:00Z" {
		t.Fatalf("default monthly history: %d months, %s to %s", len(got), got[0].Period, got[len(got)-1].Period)
	}
	// One day.
	got = nil
	e.getJSON(t, history(1, "From=2026-02-28&To=2026-02-28"), sc.partnerKeys[0], &got)
	if len(got) != 1 {
		t.Fatalf("one day: %d results", len(got))
	}
	sc.checkUsage(t, "one day", got[0], 1, daily(time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)))

	// The CSV holds the same rows.
	s, _, body := e.get(t, sc.usagePath(0)+"/history.csv?From=2026-02-20&To=2026-03-01", adminToken)
	if s != 200 {
		t.Fatalf("CSV: %d %s", s, body)
	}
	var js []serviceUsage
	e.getJSON(t, history(0, "From=2026-02-20&To=2026-03-01"), adminToken, &js)
	rows := readCSV(t, body)
	col := map[string]int{}
	for k, name := range rows[0] {
		col[name] = k
	}
	if len(rows) != 1+len(js) || len(js) != 10 {
		t.Fatalf("CSV has %d rows, JSON %d", len(rows)-1, len(js))
	}
	for k, u := range js {
		n, err := strconv.ParseInt(rows[k+1][col["TotalMessageCount"]], 10, 64)
		if err != nil || n != u.TotalMessageCount || rows[k+1][col["Period"]] != u.Period {
			t.Errorf("CSV row %d: %v, JSON %+v", k, rows[k+1], u)
		}
	}

	// Errors name the field.
	le := func(field, msg string) responseStatus {
		return responseStatus{ErrorCode: "LessThanOrEqual", Message: msg, Errors: []fieldError{{ErrorCode: "LessThanOrEqual", FieldName: field, Message: msg}}}
	}
	for _, c := range []struct {
		query  string
		status int
		want   responseStatus
	}{
		{"From=2026-03-02&To=2026-03-01", 400, le("From", "'From' must be on or before 'To' (2026-03-01); got 2026-03-02.")},
		{"To=2026-03-11", 400, le("To", "'To' must be on or before today (2026-03-10 UTC); got 2026-03-11.")},
		{"From=2025-03-09&To=2026-03-10", 400, le("From", "'From' to 'To' must span at most 366 Daily periods; got 367.")},
		{"PeriodType=Monthly&From=2021-02-01", 400, le("From", "'From' to 'To' must span at most 60 Monthly periods; got 62.")},
		{"From=yesterday", 400, bindFailure("GetServiceUsageHistory", "From", "yesterday")},
		{"PeriodType=Weekly", 400, bindFailure("GetServiceUsageHistory", "PeriodType", "Weekly")},
	} {
		s, h, body := e.get(t, history(0, c.query), adminToken)
		wantError(t, c.query, s, h, body, c.status, c.want)
	}
	// The longest spans are answered.
	e.getJSON(t, history(0, "From=2025-03-10&To=2026-03-10"), adminToken, &got)
	if len(got) != 366 {
		t.Errorf("366 days: %d", len(got))
	}
	// A key that does not see the service: as if it did not exist.
	g := sc.services[4].ServiceGuid
	s, h, body := e.get(t, history(4, ""), sc.partnerKeys[0])
	wantError(t, "another partner's service", s, h, body, http.StatusNotFound, notFound(g))
}
