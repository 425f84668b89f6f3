package genesys_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// fillEmpty answers every bucket of the interval, per group, with zero rows
// where there were no events; the expected answers are worked out by hand.
func TestAggregateFillEmpty(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	db := e.db
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))
	at := func(s string) time.Time { return time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC).Add(mustDuration(t, s)) }
	ev := func(id, client, name, when string, status int) usage.Event {
		return usage.Event{ID: id, OrganizationID: a.ID, ClientID: client, ClientName: name, Time: at(when),
			TemplateURI: "api/v2/x", HTTPMethod: "GET", Status: status}
	}
	// Hours 01 and 03 of four have events: two of c1 at 01, one of c2 at 03.
	if _, err := db.Append(t.Context(), []usage.Event{
		ev("1", "c1", "One", "1h10m", 200), ev("2", "c1", "One", "1h20m", 500), ev("3", "c2", "Two", "3h5m", 429),
	}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	const hours = "2026-06-15T00:00:00Z/2026-06-15T04:00:00Z"
	// Each row as date client(name) requests/2xx/4xx/5xx/429.
	f := func(req map[string]any, want ...string) {
		t.Helper()
		var got []string
		for _, r := range e.aggregate(tok, req).Results {
			got = append(got, fmt.Sprintf("%s %s(%s) %d/%d/%d/%d/%d", str(r.Date), str(r.ClientID), str(r.ClientName),
				*r.Requests, *r.Status200, *r.Status400, *r.Status500, *r.Status429))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", mustJSON(req), got, want)
		}
	}
	byClient := map[string]any{"interval": hours, "granularity": "Hour", "groupBy": []string{"OAuthClientId"}, "fillEmpty": true}
	f(byClient,
		"2026-06-15T00:00:00Z c1(One) 0/0/0/0/0", "2026-06-15T00:00:00Z c2(Two) 0/0/0/0/0",
		"2026-06-15T01:00:00Z c1(One) 2/1/0/1/0", "2026-06-15T01:00:00Z c2(Two) 0/0/0/0/0",
		"2026-06-15T02:00:00Z c1(One) 0/0/0/0/0", "2026-06-15T02:00:00Z c2(Two) 0/0/0/0/0",
		"2026-06-15T03:00:00Z c1(One) 0/0/0/0/0", "2026-06-15T03:00:00Z c2(Two) 1/0/1/0/1")
	// Without it, only the buckets with events, as before.
	f(map[string]any{"interval": hours, "granularity": "Hour", "groupBy": []string{"OAuthClientId"}},
		"2026-06-15T01:00:00Z c1(One) 2/1/0/1/0", "2026-06-15T03:00:00Z c2(Two) 1/0/1/0/1")
	// Without groupBy, one row per bucket.
	f(map[string]any{"interval": hours, "granularity": "Hour", "fillEmpty": true},
		"2026-06-15T00:00:00Z () 0/0/0/0/0", "2026-06-15T01:00:00Z () 2/1/0/1/0",
		"2026-06-15T02:00:00Z () 0/0/0/0/0", "2026-06-15T03:00:00Z () 1/0/1/0/1")
	// Weeks start on Monday, also before the interval: 2026-06-17 is a
	// Wednesday, so its week is the one of Monday 2026-06-15.
	f(map[string]any{"interval": "2026-06-17T00:00:00Z/2026-07-01T00:00:00Z", "granularity": "Week", "fillEmpty": true},
		"2026-06-15T00:00:00Z () 0/0/0/0/0", "2026-06-22T00:00:00Z () 0/0/0/0/0", "2026-06-29T00:00:00Z () 0/0/0/0/0")
	// Without granularity, the one bucket of the interval, which has no date.
	f(map[string]any{"interval": "2026-07-01T00:00:00Z/2026-07-02T00:00:00Z", "fillEmpty": true}, "<nil> () 0/0/0/0/0")
	// With groupBy and no events, there is no group to fill.
	f(map[string]any{"interval": "2026-07-01T00:00:00Z/2026-07-02T00:00:00Z", "granularity": "Hour", "groupBy": []string{"OAuthClientId"}, "fillEmpty": true})

	// Filled, an answer is held to the row limit as the store holds it.
	wantError(t, e.do("POST", "/api/v2/usage/aggregate", tok, map[string]any{"interval": "2020-01-01T00:00:00Z/2032-01-01T00:00:00Z", "granularity": "Hour", "fillEmpty": true}),
		400, "bad.request", "the query has more than 100000 rows with every bucket filled (105192)")
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// In a time zone, days, weeks and months start at local midnight, on
// Monday and on the 1st, across daylight saving changes (Berlin's 23-hour
// 2026-03-29, Sydney's 25-hour 2026-04-05), and rows carry the zone's
// offset. The oracle buckets every event by its local date here.
func TestAggregateInTimeZone(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))
	// An event every 20 minutes from 2026-03-25 to 2026-04-10, status
	// 200, 404 or 503 in turn.
	from := time.Date(2026, 3, 25, 0, 0, 0, 0, time.UTC)
	var events []usage.Event
	for i := 0; from.Add(time.Duration(i) * 20 * time.Minute).Before(time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC)); i++ {
		events = append(events, usage.Event{ID: fmt.Sprint(i), OrganizationID: a.ID, ClientID: "c", ClientName: "C",
			Time: from.Add(time.Duration(i) * 20 * time.Minute), TemplateURI: "api/v2/x", HTTPMethod: "GET", Status: []int{200, 404, 503}[i%3]})
	}
	if _, err := e.db.Append(t.Context(), events, time.Time{}); err != nil {
		t.Fatal(err)
	}
	const iv = "2026-03-26T00:00:00Z/2026-04-09T00:00:00Z"
	for _, tc := range []struct {
		zone, granularity string
		start             func(local time.Time) time.Time // the local start of the bucket of local
	}{
		{"Europe/Berlin", "Day", func(l time.Time) time.Time { return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, l.Location()) }},
		{"Australia/Sydney", "Day", func(l time.Time) time.Time { return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, l.Location()) }},
		{"Australia/Sydney", "Week", func(l time.Time) time.Time {
			return time.Date(l.Year(), l.Month(), l.Day()-(int(l.Weekday())+6)%7, 0, 0, 0, 0, l.Location())
		}},
		{"America/New_York", "Month", func(l time.Time) time.Time { return time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, l.Location()) }},
		{"Europe/Berlin", "Hour", func(l time.Time) time.Time { return l.Truncate(time.Hour) }},
	} {
		loc, err := time.LoadLocation(tc.zone)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][3]int64{} // local bucket start → requests, 2xx, 5xx
		var order []string
		for _, ev := range events {
			if ev.Time.Before(time.Date(2026, 3, 26, 0, 0, 0, 0, time.UTC)) || !ev.Time.Before(time.Date(2026, 4, 9, 0, 0, 0, 0, time.UTC)) {
				continue
			}
			k := tc.start(ev.Time.In(loc)).Format(time.RFC3339)
			c, seen := want[k]
			if !seen {
				order = append(order, k)
			}
			c[0]++
			if ev.Status == 200 {
				c[1]++
			}
			if ev.Status == 503 {
				c[2]++
			}
			want[k] = c
		}
		res := e.aggregate(tok, map[string]any{"interval": iv, "granularity": tc.granularity, "timeZone": tc.zone}).Results
		var got []string
		for _, r := range res {
			got = append(got, fmt.Sprintf("%s %d/%d/%d", str(r.Date), *r.Requests, *r.Status200, *r.Status500))
		}
		var wantRows []string
		for _, k := range order {
			c := want[k]
			wantRows = append(wantRows, fmt.Sprintf("%s %d/%d/%d", k, c[0], c[1], c[2]))
		}
		if !slices.Equal(got, wantRows) {
			t.Errorf("%s by %s:\n got %q\nwant %q", tc.zone, tc.granularity, got, wantRows)
		}
	}
	// The 23- and the 25-hour days, as a user reads them.
	for _, tc := range []struct{ zone, date, want string }{
		{"Europe/Berlin", "2026-03-29T00:00:00+01:00", "69"},    // 23 hours × 3 events
		{"Australia/Sydney", "2026-04-05T00:00:00+11:00", "75"}, // 25 hours × 3 events
	} {
		found := false
		for _, r := range e.aggregate(tok, map[string]any{"interval": iv, "granularity": "Day", "timeZone": tc.zone}).Results {
			if str(r.Date) == tc.date {
				found = true
				if got := fmt.Sprint(*r.Requests); got != tc.want {
					t.Errorf("%s %s: %s requests, want %s", tc.zone, tc.date, got, tc.want)
				}
			}
		}
		if !found {
			t.Errorf("%s: no row dated %s", tc.zone, tc.date)
		}
	}
	// Zones whose offsets are not whole hours are refused, naming the field;
	// so are names that are no zone.
	for _, zone := range []string{"Asia/Kolkata", "Asia/Kathmandu", "Australia/Adelaide", "Mars/Olympus", "Local", "../etc/passwd"} {
		r := e.do("POST", "/api/v2/usage/aggregate", tok, map[string]any{"interval": iv, "granularity": "Day", "timeZone": zone})
		if r.status != 400 || len(r.errorBody(t).Details) == 0 || r.errorBody(t).Details[0].FieldName != "timeZone" {
			t.Errorf("timeZone %s: %d %s, want 400 naming timeZone", zone, r.status, r.body)
		}
	}
}
