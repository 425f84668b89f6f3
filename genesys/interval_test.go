package genesys_test

import (
	"testing"

	"github.com/usaged/usaged/usage"
)

// An interval from the zero time counts every event up to its end, and one
// with an offset RFC 3339 does not allow is refused naming the interval.
func TestIntervalBounds(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd, usage.PermOrganizationView))
	decode[result](t, e.do("POST", "/api/v2/usage/events", tok, []any{
		event("1"), event("2", "time", "2026-06-14T23:00:00Z"),
	}), 200)

	for _, iv := range []string{"0001-01-01/2026-06-15", "0001-01-01T00:00:00Z/P3000Y", "P100000D/2026-06-16"} {
		agg := e.aggregate(tok, map[string]any{"interval": iv})
		if len(agg.Results) != 1 || *agg.Results[0].Requests != 2 {
			t.Errorf("%s: %s, want one row of 2 requests", iv, mustJSON(agg))
		}
	}
	agg := e.aggregate(tok, map[string]any{"interval": "0001-01-01/2026-06-15", "granularity": "Day"})
	if len(agg.Results) != 2 || *agg.Results[0].Date != "2026-06-14T00:00:00Z" {
		t.Errorf("by day from the zero time: %s", mustJSON(agg))
	}

	for _, iv := range []string{"2026-06-15T00:00:00+24:00/2026-06-16", "2026-06-15/2026-06-16T00:00:00-23:60"} {
		eb := wantError(t, e.do("POST", "/api/v2/usage/aggregate", tok, map[string]any{"interval": iv}), 400, "invalid.date", "is not an ISO-8601 date-time")
		if len(eb.Details) != 1 || eb.Details[0].FieldName != "interval" {
			t.Errorf("%s: details %+v", iv, eb.Details)
		}
	}
}
