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
