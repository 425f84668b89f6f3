package genesys_test

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/internal/servertest"
	"github.com/usaged/usaged/usage"
)

// listEvents lists every page of GET /api/v2/usage/events with params,
// checking each page's size and that only the last lacks a cursor, and
// returns the events' ids in order.
func (e *env) listEvents(token string, params url.Values, pageSize int) []string {
	e.t.Helper()
	params = maps.Clone(params) // Set replaces values, never changes them
	params.Set("pageSize", strconv.Itoa(pageSize))
	var ids []string
	for pages := 0; ; pages++ {
		r := e.do("GET", "/api/v2/usage/events?"+params.Encode(), token, nil)
		page := decode[wire.EventPage](e.t, r, 200)
		if page.PageSize != pageSize || len(page.Entities) > pageSize || page.Entities == nil {
			e.t.Fatalf("page %d of %v: %s", pages, params, r.body)
		}
		for _, ev := range page.Entities {
			ids = append(ids, ev.ID)
		}
		if page.Cursor == "" {
			if strings.Contains(string(r.body), `"cursor"`) {
				e.t.Fatalf("the last page has a cursor: %s", r.body)
			}
			return ids
		}
		if pages > 100 {
			e.t.Fatalf("%v: the pages do not end", params)
		}
		params.Set("cursor", page.Cursor)
	}
}

// TestEventsListing lists the events ingest accepted: in order of time,
// client and id, each once, every field as it was sent, paged, filtered,
// and only the caller's organization's.
func TestEventsListing(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a, b := e.mustOrg("A"), e.mustOrg("B")
	writerA := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd))
	viewerA := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))
	writerB := e.mustToken(e.mustClient(b.ID, 0, usage.PermEventAdd))
	viewerB := e.mustToken(e.mustClient(b.ID, 0, usage.PermOAuthClientView))

	// Sent out of order; e2 and e3 at the same time are ordered by client,
	// e4 and e5 by id. e7 is at the interval's end, which is excluded.
	sent := []any{
		event("e6", "time", "2026-06-15T11:00:00.000000001Z", "clientId", "c1", "httpMethod", "delete", "userId", "u1"),
		event("e2", "time", "2026-06-15T10:30:00.123456789Z", "clientId", "c2", "clientName", "Billing", "userId", "u2",
			"platform", "PureCloud", "durationMs", 12, "requestBytes", 345, "responseBytes", 6789, "status", 503),
		event("e1", "time", "2026-06-15T10:00:00Z", "templateUri", "api/v2/conversations", "httpMethod", "POST", "status", 201),
		event("e3", "time", "2026-06-15T10:30:00.123456789Z", "clientId", "c1", "userId", "u1"),
		event("e5", "time", "2026-06-15T10:45:00Z", "httpMethod", "post"),
		event("e4", "time", "2026-06-15T10:45:00Z", "templateUri", "api/v2/conversations"),
		event("e7", "time", "2026-06-15T12:00:00Z"),
	}
	if res := decode[result](t, e.do("POST", "/api/v2/usage/events", writerA, sent), 200); res.Accepted != len(sent) {
		t.Fatalf("ingest: %+v", res)
	}
	// A duplicate, with other fields, is not listed again.
	if res := decode[result](t, e.do("POST", "/api/v2/usage/events", writerA, []any{event("e1", "clientId", "c9")}), 200); res.Duplicates != 1 {
		t.Fatalf("ingest of a duplicate: %+v", res)
	}
	// B has events of the same ids.
	if res := decode[result](t, e.do("POST", "/api/v2/usage/events", writerB, []any{event("e1"), event("b1")}), 200); res.Accepted != 2 {
		t.Fatalf("ingest in B: %+v", res)
	}

	const interval = "2026-06-15T10:00:00Z/2026-06-15T12:00:00Z"
	all := []string{"e1", "e3", "e2", "e4", "e5", "e6"}
	for _, size := range []int{1, 2, 5, 6, 100} {
		if got := e.listEvents(viewerA, url.Values{"interval": {interval}}, size); !slices.Equal(got, all) {
			t.Errorf("pages of %d: %v, want %v", size, got, all)
		}
	}

	// Every field as it was sent, the time to the nanosecond, in UTC.
	r := e.do("GET", "/api/v2/usage/events?"+url.Values{"interval": {interval}, "clientId": {"c2"}}.Encode(), viewerA, nil)
	var raw struct {
		Entities []map[string]any `json:"entities"`
		PageSize int              `json:"pageSize"`
	}
	if err := json.Unmarshal(r.body, &raw); err != nil || len(raw.Entities) != 1 || raw.PageSize != 100 {
		t.Fatalf("c2's events: %s", r.body)
	}
	want := map[string]any{
		"id": "e2", "time": "2026-06-15T10:30:00.123456789Z", "organizationId": a.ID, "clientId": "c2", "clientName": "Billing",
		"userId": "u2", "templateUri": "api/v2/users/{userId}", "httpMethod": "GET", "status": 503.0, "platform": "PureCloud",
		"durationMs": 12.0, "requestBytes": 345.0, "responseBytes": 6789.0,
	}
	if got := raw.Entities[0]; mustJSON(got) != mustJSON(want) {
		t.Errorf("event e2:\n got %s\nwant %s", mustJSON(got), mustJSON(want))
	}

	// Filters, each repeatable; methods in any case.
	f := func(params url.Values, want ...string) {
		t.Helper()
		params.Set("interval", interval)
		if got := e.listEvents(viewerA, params, 2); !slices.Equal(got, want) {
			t.Errorf("%v: %v, want %v", params, got, want)
		}
	}
	f(url.Values{"clientId": {"c1"}}, "e1", "e3", "e4", "e5", "e6")
	f(url.Values{"clientId": {"c2", "c9"}}, "e2")
	f(url.Values{"userId": {"u1", "u2"}}, "e3", "e2", "e6")
	f(url.Values{"templateUri": {"api/v2/conversations"}}, "e1", "e4")
	f(url.Values{"httpMethod": {"post"}}, "e1", "e5")
	f(url.Values{"httpMethod": {"POST", "Delete"}, "clientId": {"c1"}}, "e1", "e5", "e6")
	f(url.Values{"userId": {"nobody"}})
	// The start is included and the end excluded, to the nanosecond.
	if got := e.listEvents(viewerA, url.Values{"interval": {"2026-06-15T10:30:00.123456789Z/2026-06-15T11:00:00.000000001Z"}}, 10); !slices.Equal(got, []string{"e3", "e2", "e4", "e5"}) {
		t.Errorf("bounds: %v", got)
	}

	// The listed events are in the ingest route's format: sent back, they
	// are all duplicates.
	var page struct {
		Entities []map[string]any `json:"entities"`
	}
	if err := json.Unmarshal(e.do("GET", "/api/v2/usage/events?"+url.Values{"interval": {interval}}.Encode(), viewerA, nil).body, &page); err != nil {
		t.Fatal(err)
	}
	if res := decode[result](t, e.do("POST", "/api/v2/usage/events", writerA, page.Entities), 200); res.Duplicates != len(all) || res.Rejected != 0 {
		t.Fatalf("listed events sent back: %+v", res)
	}

	// Another organization's token sees its own events only.
	if got := e.listEvents(viewerB, url.Values{"interval": {interval}}, 10); !slices.Equal(got, []string{"b1", "e1"}) {
		t.Errorf("B's listing: %v", got)
	}
	for _, ev := range decode[wire.EventPage](t, e.do("GET", "/api/v2/usage/events?"+url.Values{"interval": {interval}}.Encode(), viewerB, nil), 200).Entities {
		if ev.OrganizationID != b.ID || ev.ClientID != "c1" {
			t.Errorf("B's listing holds %+v", ev)
		}
	}
	// A's cursor gives B nothing of A's.
	first := decode[wire.EventPage](t, e.do("GET", "/api/v2/usage/events?"+url.Values{"interval": {interval}, "pageSize": {"1"}}.Encode(), viewerA, nil), 200)
	rest := decode[wire.EventPage](t, e.do("GET", "/api/v2/usage/events?"+url.Values{"interval": {interval}, "cursor": {first.Cursor}}.Encode(), viewerB, nil), 200)
	for _, ev := range rest.Entities {
		if ev.OrganizationID != b.ID {
			t.Errorf("B with A's cursor sees %+v", ev)
		}
	}
}

// TestEventsErrors checks the listing's refusals: each names the parameter
// at fault, or the permission.
func TestEventsErrors(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	viewer := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))
	writer := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd))
	f := func(query string, code, field, inMessage string) {
		t.Helper()
		eb := wantError(t, e.do("GET", "/api/v2/usage/events?"+query, viewer, nil), 400, code, inMessage)
		if len(eb.Details) != 1 || eb.Details[0].FieldName != field {
			t.Errorf("%s: details %+v, want field %s", query, eb.Details, field)
		}
	}
	const iv = "interval=2026-06-01T00:00:00Z/2026-06-15T00:00:00Z"
	f("", "constraint.validation", "interval", "interval is required")
	f("interval=yesterday", "invalid.date", "interval", "ISO-8601")
	f("interval=2026-06-15T00:00:00Z/2026-06-01T00:00:00Z", "invalid.date", "interval", "end")
	f("interval=2026-05-01T00:00:00Z/2026-06-01T00:00:01Z", "invalid.query.param.value", "interval", "at most 31 days")
	f(iv+"&pageSize=1001", "invalid.query.param.value", "pageSize", "from 1 to 1000")
	f(iv+"&pageSize=-1", "invalid.query.param.value", "pageSize", "from 1 to 1000")
	f(iv+"&pageSize=ten", "invalid.query.param.value", "pageSize", "from 1 to 1000")
	f(iv+"&cursor=not-a-cursor", "invalid.query.param.value", "cursor", "cursor")
	f(iv+"&clientID=c1", "invalid.query.param.value", "clientID", "clientId")
	// 31 days exactly, a month given as dates, is within the bound.
	decode[wire.EventPage](t, e.do("GET", "/api/v2/usage/events?interval=2026-05-01/2026-05-31", viewer, nil), 200)

	wantError(t, e.do("GET", "/api/v2/usage/events?"+iv, "", nil), 401, "authentication.required", "bearer token")
	wantError(t, e.do("GET", "/api/v2/usage/events?"+iv, writer, nil), 403, "missing.any.permissions", usage.PermOrganizationView)
	wantError(t, e.do("GET", "/api/v2/usage/events?"+iv, adminToken, nil), 403, "not.authorized", "admin token")
}

// TestEventsNotOnPebble: the embedded store keeps only counts, and says so
// in the Genesys error shape, naming the backend that keeps events.
func TestEventsNotOnPebble(t *testing.T) {
	t.Parallel()
	e := MustEnv(t, servertest.Pebble)
	a := e.mustOrg("A")
	viewer := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))
	wantError(t, e.do("GET", "/api/v2/usage/events?interval=2026-06-01/2026-06-02", viewer, nil), 501, "not.implemented", "--store clickhouse://")
}
