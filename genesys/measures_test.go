package genesys_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/usaged/usaged/internal/servertest"
	"github.com/usaged/usaged/usage"
)

// The aggregate answers the latency and traffic measures of events sent
// through ingest, in memory and in Pebble, checked against values worked
// out by hand: bytes, maximum and mean exactly, percentiles within 1 % of
// the lower nearest-rank duration (exactly below 99 ms). Events without a
// duration, or with 0 ms, count in no duration measure.
func TestAggregateMeasures(t *testing.T) {
	t.Parallel()
	for name, tune := range map[string]envTuning{"memory": servertest.Memory, "pebble": servertest.Pebble} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testAggregateMeasures(t, MustEnv(t, tune))
		})
	}
}

func testAggregateMeasures(t *testing.T, e *env) {
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd, usage.PermOrganizationView))
	ev := func(id, client, at string, kv ...any) map[string]any {
		return event(id, append([]any{"time", "2026-06-15T" + at + "Z", "clientId", client, "clientName", client}, kv...)...)
	}
	e.mustIngest(tok, []any{
		// 10:00, c1: 10, 20, 30 and 1000 ms, and one without (0 ms).
		ev("1", "c1", "10:01:00", "durationMs", 10, "requestBytes", 100, "responseBytes", 1),
		ev("2", "c1", "10:02:00", "durationMs", 20, "requestBytes", 100, "responseBytes", 2),
		ev("3", "c1", "10:03:00", "durationMs", 30, "responseBytes", 3),
		ev("4", "c1", "10:04:00", "durationMs", 0, "responseBytes", 4),
		ev("5", "c1", "10:05:00", "durationMs", 1000, "responseBytes", 5, "status", 500),
		// 11:00, c1: 500 ms; c2: no duration at all.
		ev("6", "c1", "11:10:00", "durationMs", 500, "requestBytes", 1<<40),
		ev("7", "c2", "11:20:00", "requestBytes", 7),
		ev("8", "c2", "11:30:00", "responseBytes", 9),
	})
	all := []string{"requests", "durationP50", "durationP90", "durationP95", "durationP99", "durationMax", "durationAvg", "requestBytes", "responseBytes"}
	// Each row as date client requests p50 p90 p95 p99 max avg reqBytes respBytes.
	rows := func(req map[string]any) [][]string {
		t.Helper()
		r := e.do("POST", "/api/v2/usage/aggregate", tok, req)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", mustJSON(req), r.status, r.body)
		}
		var doc struct{ Results []map[string]json.RawMessage }
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatal(err)
		}
		var out [][]string
		for _, row := range doc.Results {
			line := []string{string(row["date"]), string(row["clientId"])}
			for _, f := range all {
				line = append(line, string(row[f])) // "" when absent
			}
			out = append(out, line)
		}
		return out
	}
	// within reports whether got is want within 1 %, or exactly want below 99.
	within := func(got, want string) bool {
		g, err1 := strconv.ParseInt(got, 10, 64)
		w, err2 := strconv.ParseInt(want, 10, 64)
		if err1 != nil || err2 != nil || w < 99 {
			return got == want
		}
		return 100*max(g-w, w-g) <= w
	}
	check := func(req map[string]any, want ...string) {
		t.Helper()
		got := rows(req)
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows %q, want %d", mustJSON(req), len(got), got, len(want))
		}
		for i, w := range want {
			wf := strings.Fields(w)
			ok := len(wf) == len(got[i])
			for j := 0; ok && j < len(wf); j++ {
				if wf[j] == "-" {
					wf[j] = ""
				}
				if j >= 3 && j <= 6 { // the percentiles
					ok = within(got[i][j], wf[j])
				} else {
					ok = got[i][j] == wf[j]
				}
			}
			if !ok {
				t.Errorf("%s, row %d:\n got %q\nwant %q", mustJSON(req), i, got[i], wf)
			}
		}
	}
	measures := []string{"Requests", "durationP50", "durationP90", "durationP95", "durationP99", "durationMax", "durationAvg", "requestBytes", "responseBytes"}
	const iv = "2026-06-15T10:00:00Z/2026-06-15T12:00:00Z"
	byHour := map[string]any{"interval": iv, "granularity": "Hour", "groupBy": []string{"OAuthClientId"}, "metrics": measures}
	check(byHour,
		`"2026-06-15T10:00:00Z" "c1" 5 20 1000 1000 1000 1000 265.000 200 15`,
		`"2026-06-15T11:00:00Z" "c1" 1 500 500 500 500 500 500.000 1099511627776 0`,
		`"2026-06-15T11:00:00Z" "c2" 2 0 0 0 0 0 0.000 7 9`)
	// Filled buckets have no events: every measure 0.
	byHour["fillEmpty"] = true
	check(byHour,
		`"2026-06-15T10:00:00Z" "c1" 5 20 1000 1000 1000 1000 265.000 200 15`,
		`"2026-06-15T10:00:00Z" "c2" 0 0 0 0 0 0 0.000 0 0`,
		`"2026-06-15T11:00:00Z" "c1" 1 500 500 500 500 500 500.000 1099511627776 0`,
		`"2026-06-15T11:00:00Z" "c2" 2 0 0 0 0 0 0.000 7 9`)
	// A Berlin day, by client (the rollups): 10, 20, 30, 500 and 1000 ms
	// for c1; the 3rd of 5 is the median, the 5th the 90th percentile.
	check(map[string]any{"interval": iv, "granularity": "Day", "timeZone": "Europe/Berlin", "groupBy": []string{"OAuthClientId"}, "metrics": measures},
		`"2026-06-15T00:00:00+02:00" "c1" 6 30 1000 1000 1000 1000 312.000 1099511627976 15`,
		`"2026-06-15T00:00:00+02:00" "c2" 2 0 0 0 0 0 0.000 7 9`)
	// By template (the per-hour groups), without granularity, two measures:
	// the others are absent, and so is every measure without metrics.
	check(map[string]any{"interval": iv, "groupBy": []string{"TemplateUri"}, "metrics": []string{"DURATIONP99", "responseBytes"}},
		`- "" 0 - - - 1000 - - - 24`)
	check(map[string]any{"interval": iv},
		`- "" 8 - - - - - - - -`)
	// All together: the same 5 durations as c1's day, all the bytes.
	check(map[string]any{"interval": iv, "metrics": measures},
		`- "" 8 30 1000 1000 1000 1000 312.000 1099511627983 24`)

	// A metric that is none is refused, naming the measures among the
	// metrics to use.
	r := e.do("POST", "/api/v2/usage/aggregate", tok, map[string]any{"interval": iv, "metrics": []string{"durationP42"}})
	if r.status != 400 || !strings.Contains(string(r.body), "durationP95") {
		t.Errorf("metric durationP42: %d %s, want 400 listing the metrics", r.status, r.body)
	}
}
