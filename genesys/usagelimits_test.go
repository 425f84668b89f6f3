package genesys_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/genesys"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/memory"
	"github.com/usaged/usaged/usage"
)

const limitsPath = "/api/v2/usage/limits"

// dailyLimit is a valid limit request.
func dailyLimit() map[string]any {
	return map[string]any{
		"name": "daily requests", "metric": "requests", "value": 1000,
		"window":     map[string]any{"type": "day", "timeZone": "Europe/Berlin"},
		"thresholds": []int{100, 50, 80},
	}
}

// limitsToken returns a token of a new client of org holding perms.
func (e *env) limitsToken(org string, perms ...string) string {
	e.t.Helper()
	return e.mustToken(e.mustClient(org, 0, perms...))
}

func (e *env) mustLimit(token string, body any) wire.Limit {
	e.t.Helper()
	return decode[wire.Limit](e.t, e.do("POST", limitsPath, token, body), 201)
}

func TestLimitsCRUD(t *testing.T) {
	e := MustEnv(t)
	org := e.mustOrg("Acme").ID
	tok := e.limitsToken(org, usage.PermLimitView, usage.PermLimitEdit)

	l := e.mustLimit(tok, dailyLimit())
	created := e.clk.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	if l.ID == "" || l.Name != "daily requests" || l.Scope != "organization" || l.Metric != "requests" || l.Value != 1000 ||
		l.Window != (wire.LimitWindow{Type: "day", TimeZone: "Europe/Berlin"}) || !slices.Equal(l.Thresholds, []int{50, 80, 100}) ||
		l.Enforced || l.Version != 1 || l.DateCreated != created || l.DateModified != created ||
		l.SelfURI != limitsPath+"/"+l.ID || l.Status != nil {
		t.Fatalf("created %+v", l)
	}
	if got := decode[wire.Limit](t, e.do("GET", l.SelfURI, tok, nil), 200); !equalLimits(got, l) {
		t.Errorf("GET = %+v, want %+v", got, l)
	}

	second := dailyLimit()
	second["name"], second["scope"], second["metric"], second["value"] = "errors per client", "eachClient", "errorRate", 0.05
	second["window"] = map[string]any{"type": "hour"}
	l2 := e.mustLimit(tok, second)
	if l2.Scope != "eachClient" || l2.Metric != "errorRate" || l2.Value != 0.05 || l2.Enforced || l2.Window.TimeZone != "" {
		t.Fatalf("created %+v", l2)
	}

	// The list is ordered by id, a page at a time.
	ids := []string{l.ID, l2.ID}
	slices.Sort(ids)
	all := decode[wire.LimitEntityListing](t, e.do("GET", limitsPath, tok, nil), 200)
	if all.Total != 2 || all.PageCount != 1 || len(all.Entities) != 2 || all.Entities[0].ID != ids[0] || all.Entities[1].ID != ids[1] || all.NextURI != "" {
		t.Fatalf("list %+v", all)
	}
	page2 := decode[wire.LimitEntityListing](t, e.do("GET", limitsPath+"?pageSize=1&pageNumber=2", tok, nil), 200)
	if page2.Total != 2 || page2.PageCount != 2 || len(page2.Entities) != 1 || page2.Entities[0].ID != ids[1] ||
		page2.PreviousURI != limitsPath+"?pageNumber=1&pageSize=1" || page2.NextURI != "" {
		t.Fatalf("page 2 %+v", page2)
	}
	wantError(t, e.do("GET", limitsPath+"?pageSize=0", tok, nil), 400, "invalid.query.param.value", "pageSize")

	// PUT replaces the limit; a stale version is a conflict.
	e.clk.Advance(time.Minute)
	change := dailyLimit()
	change["name"], change["value"], change["version"] = "renamed", 2000, 7
	wantError(t, e.do("PUT", l.SelfURI, tok, change), 409, "request.conflict", "version 1")
	change["version"] = 1
	u := decode[wire.Limit](t, e.do("PUT", l.SelfURI, tok, change), 200)
	if u.ID != l.ID || u.Name != "renamed" || u.Value != 2000 || u.Version != 2 || u.DateCreated != l.DateCreated ||
		u.DateModified != e.clk.Now().UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Fatalf("updated %+v", u)
	}
	delete(change, "version") // without one, PUT replaces whatever is stored
	change["thresholds"] = []int{}
	if u = decode[wire.Limit](t, e.do("PUT", l.SelfURI, tok, change), 200); u.Version != 3 || len(u.Thresholds) != 0 {
		t.Fatalf("updated %+v", u)
	}
	if got := decode[wire.Limit](t, e.do("GET", l.SelfURI, tok, nil), 200); !equalLimits(got, u) {
		t.Errorf("GET after PUT = %+v, want %+v", got, u)
	}
	bad := dailyLimit()
	bad["window"] = map[string]any{"type": "rolling", "minutes": 60}
	wantError(t, e.do("PUT", l.SelfURI, tok, bad), 400, "bad.request", "only the embedded store and the cluster do")

	decode[struct{}](t, e.do("DELETE", l.SelfURI, tok, nil), 204)
	wantError(t, e.do("GET", l.SelfURI, tok, nil), 404, "not.found", "was not found")
	wantError(t, e.do("DELETE", l.SelfURI, tok, nil), 404, "not.found", "was not found")
	wantError(t, e.do("PUT", l.SelfURI, tok, change), 404, "not.found", "was not found")
	if all := decode[wire.LimitEntityListing](t, e.do("GET", limitsPath, tok, nil), 200); all.Total != 1 || all.Entities[0].ID != l2.ID {
		t.Fatalf("list after delete %+v", all)
	}
}

// equalLimits compares two answers of the limits routes.
func equalLimits(a, b wire.Limit) bool {
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}

func TestLimitsValidation(t *testing.T) {
	e := MustEnv(t)
	org := e.mustOrg("Acme").ID
	tok := e.limitsToken(org, usage.PermLimitEdit)
	f := func(change func(m map[string]any), field, inMessage string) {
		t.Helper()
		body := dailyLimit()
		change(body)
		r := e.do("POST", limitsPath, tok, body)
		if r.status != 400 {
			t.Fatalf("%s: status %d, want 400: %s", field, r.status, r.body)
		}
		eb := r.errorBody(t)
		if len(eb.Details) == 0 || eb.Details[0].FieldName != field || !containsFold(eb.Message, inMessage) {
			t.Errorf("%s: error %s, want the field named and %q", field, r.body, inMessage)
		}
	}
	f(func(m map[string]any) { m["window"] = map[string]any{"type": "rolling", "minutes": 30} }, "window.type", "only the embedded store and the cluster do")
	f(func(m map[string]any) { m["window"] = map[string]any{"type": "rolling"} }, "window.minutes", "from 1 to 1440")
	f(func(m map[string]any) { m["window"] = map[string]any{"type": "day", "timeZone": "Asia/Kolkata"} }, "window.timeZone", "whole hours")
	f(func(m map[string]any) { m["window"] = map[string]any{"type": "day", "timeZone": "Nowhere/Else"} }, "window.timeZone", "not an IANA time zone")
	f(func(m map[string]any) { m["window"] = map[string]any{"type": "fortnight"} }, "window.type", "fortnight")
	f(func(m map[string]any) { delete(m, "window") }, "window", "window is required")
	f(func(m map[string]any) { m["metric"] = "durationP95" }, "metric", "durationP95")
	f(func(m map[string]any) { delete(m, "value") }, "value", "value is required")
	f(func(m map[string]any) { m["metric"], m["value"] = "errorRate", 5 }, "value", "ratio")
	f(func(m map[string]any) { m["value"] = 1.5 }, "value", "whole number")
	f(func(m map[string]any) { m["thresholds"] = []int{50, 1001} }, "thresholds", "percentage")
	f(func(m map[string]any) { m["scope"] = "client" }, "clientId", "clientId is required")
	f(func(m map[string]any) { m["scope"] = "everyone" }, "scope", "everyone")
	f(func(m map[string]any) { m["name"] = "" }, "name", "name is required")
	f(func(m map[string]any) { m["version"] = 3 }, "version", "version")
	f(func(m map[string]any) { m["colour"] = "red" }, "colour", "unknown field")
	// Every problem of a body is named.
	two := dailyLimit()
	two["name"], two["thresholds"] = "", []int{0}
	eb := wantError(t, e.do("POST", limitsPath, tok, two), 400, "bad.request", "name is required")
	if len(eb.Details) != 2 || eb.Details[0].FieldName != "name" || eb.Details[1].FieldName != "thresholds" {
		t.Errorf("details %+v, want name and thresholds", eb.Details)
	}
	wantError(t, e.do("GET", limitsPath+"?expand=clients", e.limitsToken(org, usage.PermLimitView), nil), 400, "invalid.value", "clients")
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// TestLimitsPerOrganization checks the bound on an organization's limits:
// a create beyond it is a conflict, another organization is not counted,
// and a deletion makes room.
func TestLimitsPerOrganization(t *testing.T) {
	e := MustEnv(t, func(c *server.Config) {
		c.Hooks.Genesys = func(g *genesys.Config) { g.MaxLimitsPerOrg = 2 }
	})
	a, b := e.mustOrg("A").ID, e.mustOrg("B").ID
	tokA := e.limitsToken(a, usage.PermLimitEdit)
	first := e.mustLimit(tokA, dailyLimit())
	e.mustLimit(tokA, dailyLimit())
	wantError(t, e.do("POST", limitsPath, tokA, dailyLimit()), 409, "request.conflict", "has 2 usage limits")
	e.mustLimit(e.limitsToken(b, usage.PermLimitEdit), dailyLimit())
	decode[struct{}](t, e.do("DELETE", first.SelfURI, tokA, nil), 204)
	e.mustLimit(tokA, dailyLimit())
}

// TestLimitsPermissions checks each route with and without its permission:
// view reads, edit writes, and neither implies the other.
func TestLimitsPermissions(t *testing.T) {
	e := MustEnv(t)
	org := e.mustOrg("Acme").ID
	both := e.limitsToken(org, usage.PermLimitView, usage.PermLimitEdit)
	l := e.mustLimit(both, dailyLimit())
	view := e.limitsToken(org, usage.PermLimitView)
	edit := e.limitsToken(org, usage.PermLimitEdit)
	other := e.limitsToken(org, usage.PermOrganizationView, usage.PermOAuthClientEdit)
	routes := []struct {
		method, path string
		body         any
		perm         string
		ok           int
	}{
		{"GET", limitsPath, nil, usage.PermLimitView, 200},
		{"GET", l.SelfURI, nil, usage.PermLimitView, 200},
		{"GET", l.SelfURI + "/status", nil, usage.PermLimitView, 200},
		{"POST", limitsPath, dailyLimit(), usage.PermLimitEdit, 201},
		{"PUT", l.SelfURI, dailyLimit(), usage.PermLimitEdit, 200},
		{"DELETE", l.SelfURI, nil, usage.PermLimitEdit, 204},
	}
	for _, rt := range routes {
		for _, tok := range []string{view, edit, other} {
			r := e.do(rt.method, rt.path, tok, rt.body)
			holds := (tok == view && rt.perm == usage.PermLimitView) || (tok == edit && rt.perm == usage.PermLimitEdit)
			if !holds {
				eb := wantError(t, r, 403, "missing.any.permissions", rt.perm)
				if eb.MessageParams["permissions"] != rt.perm {
					t.Errorf("%s %s: params %v", rt.method, rt.path, eb.MessageParams)
				}
				continue
			}
			if r.status != rt.ok {
				t.Errorf("%s %s with %s: status %d, want %d: %s", rt.method, rt.path, rt.perm, r.status, rt.ok, r.body)
			}
		}
		if r := e.do(rt.method, rt.path, "", rt.body); r.status != 401 {
			t.Errorf("%s %s without a token: %d, want 401", rt.method, rt.path, r.status)
		}
	}
}

// TestLimitsOrganizationIsolation checks that another organization's limit
// is missing, never forbidden, on every route, and that the admin token
// acts on the organization it names.
func TestLimitsOrganizationIsolation(t *testing.T) {
	e := MustEnv(t)
	a, b := e.mustOrg("A").ID, e.mustOrg("B").ID
	tokA := e.limitsToken(a, usage.PermLimitView, usage.PermLimitEdit)
	tokB := e.limitsToken(b, usage.PermLimitView, usage.PermLimitEdit)
	la := e.mustLimit(tokA, dailyLimit())
	for _, rt := range []struct {
		method, path string
		body         any
	}{
		{"GET", la.SelfURI, nil},
		{"GET", la.SelfURI + "/status", nil},
		{"GET", la.SelfURI + "?expand=status", nil},
		{"PUT", la.SelfURI, dailyLimit()},
		{"DELETE", la.SelfURI, nil},
		{"GET", limitsPath + "?organizationId=" + a, nil},
		{"POST", limitsPath + "?organizationId=" + a, dailyLimit()},
		{"GET", limitsPath + "?organizationId=no-such-org", nil},
	} {
		wantError(t, e.do(rt.method, rt.path, tokB, rt.body), 404, "not.found", "not found")
	}
	if l := decode[wire.LimitEntityListing](t, e.do("GET", limitsPath, tokB, nil), 200); l.Total != 0 {
		t.Errorf("B lists %+v", l)
	}
	if got := decode[wire.Limit](t, e.do("GET", la.SelfURI, tokA, nil), 200); !equalLimits(got, la) {
		t.Errorf("A's limit changed: %+v", got)
	}
	// The admin token names the organization, and must.
	wantError(t, e.do("GET", limitsPath, adminToken, nil), 400, "invalid.query.param.value", "organizationId")
	if l := decode[wire.LimitEntityListing](t, e.do("GET", limitsPath+"?organizationId="+a, adminToken, nil), 200); l.Total != 1 || l.Entities[0].ID != la.ID {
		t.Errorf("admin lists %+v", l)
	}
	wantError(t, e.do("GET", la.SelfURI+"?organizationId="+b, adminToken, nil), 404, "not.found", "was not found")
	lb := decode[wire.Limit](t, e.do("POST", limitsPath+"?organizationId="+b, adminToken, dailyLimit()), 201)
	if l := decode[wire.LimitEntityListing](t, e.do("GET", limitsPath, tokB, nil), 200); l.Total != 1 || l.Entities[0].ID != lb.ID {
		t.Errorf("B lists %+v after the admin created one", l)
	}
}

// limitEvent is an event the status test sends, as the oracle reads it.
type limitEvent struct {
	at            time.Time
	client        string
	method        string
	template      string
	status        int
	responseBytes int64
}

// TestLimitStatusOracle checks the status of limits of every window type,
// scope and kind of metric against counts made by hand from the events
// sent: the windows' bounds are written out below, not computed, around
// Berlin's change to summer time on Sunday 2026-03-29, a day of 23 hours.
func TestLimitStatusOracle(t *testing.T) {
	e := MustEnv(t)
	now := time.Date(2026, 3, 29, 20, 30, 0, 0, time.UTC) // 22:30 CEST
	e.clk.Set(now)
	org := e.mustOrg("Acme").ID
	tok := e.limitsToken(org, usage.PermLimitView, usage.PermLimitEdit)
	ingest := e.mustToken(e.mustClient(org, 0, usage.PermEventAdd))

	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	clients := []string{"c1", "c2", "c3"}
	methods := []string{"GET", "POST"}
	templates := []string{"api/v2/users", "api/v2/users/{userId}"}
	statuses := []int{200, 201, 302, 400, 404, 429, 500, 503}
	rng := rand.New(rand.NewPCG(5, 6))
	var evs []limitEvent
	add := func(at time.Time) {
		evs = append(evs, limitEvent{at: at, client: clients[rng.IntN(3)], method: methods[rng.IntN(2)],
			template: templates[rng.IntN(2)], status: statuses[rng.IntN(len(statuses))], responseBytes: rng.Int64N(5000)})
	}
	// Each side of every window's bounds, and a spread over five weeks.
	for _, s := range []string{"2026-02-28T22:59:59Z", "2026-02-28T23:00:00Z", "2026-03-22T22:59:59Z", "2026-03-22T23:00:00Z",
		"2026-03-28T22:59:59Z", "2026-03-28T23:00:00Z", "2026-03-28T23:59:59Z", "2026-03-29T00:00:00Z",
		"2026-03-29T00:59:59Z", "2026-03-29T01:00:00Z", "2026-03-29T19:59:59Z", "2026-03-29T20:00:00Z", "2026-03-29T20:29:59Z"} {
		for range 3 {
			add(utc(s))
		}
	}
	for range 1500 {
		add(now.Add(-time.Duration(rng.Int64N(int64(35 * 24 * time.Hour)))).Truncate(time.Second))
	}
	var batch []any
	for i, ev := range evs {
		batch = append(batch, event(fmt.Sprintf("ev-%d", i), "time", ev.at.Format(time.RFC3339), "clientId", ev.client,
			"clientName", "name of "+ev.client, "templateUri", ev.template, "httpMethod", ev.method, "status", ev.status,
			"responseBytes", ev.responseBytes))
	}
	e.mustIngest(ingest, batch)

	type counted struct{ requests, s200, s400, s429, s500, bytes int64 }
	// count counts by hand, per client, the events in [from, to) that keep.
	count := func(from, to string, keep func(*limitEvent) bool) map[string]*counted {
		out := map[string]*counted{}
		for i := range evs {
			ev := &evs[i]
			if ev.at.Before(utc(from)) || !ev.at.Before(utc(to)) || (keep != nil && !keep(ev)) {
				continue
			}
			c := out[ev.client]
			if c == nil {
				c = &counted{}
				out[ev.client] = c
			}
			c.requests++
			c.bytes += ev.responseBytes
			switch {
			case ev.status >= 200 && ev.status <= 299:
				c.s200++
			case ev.status >= 400 && ev.status <= 499:
				c.s400++
				if ev.status == 429 {
					c.s429++
				}
			case ev.status >= 500:
				c.s500++
			}
		}
		return out
	}
	total := func(m map[string]*counted) counted {
		var t counted
		for _, c := range m {
			t.requests += c.requests
			t.s200 += c.s200
			t.s400 += c.s400
			t.s429 += c.s429
			t.s500 += c.s500
			t.bytes += c.bytes
		}
		return t
	}
	errorRate := func(c counted) float64 {
		if c.requests == 0 {
			return 0
		}
		return float64(c.s400+c.s500) / float64(c.requests)
	}

	cases := []struct {
		name        string
		body        map[string]any
		start, end  string // the window, as the answer writes it
		from, to    string // the window in UTC, for the oracle
		keep        func(*limitEvent) bool
		value       func(counted) float64
		eachClient  bool
		wantNonZero bool
	}{
		{
			name:  "requests, Berlin's 23-hour day",
			body:  map[string]any{"metric": "requests", "window": map[string]any{"type": "day", "timeZone": "Europe/Berlin"}, "value": 100},
			start: "2026-03-29T00:00:00+01:00", end: "2026-03-30T00:00:00+02:00",
			from: "2026-03-28T23:00:00Z", to: "2026-03-29T22:00:00Z",
			value: func(c counted) float64 { return float64(c.requests) },
		},
		{
			name:  "requests, the UTC day",
			body:  map[string]any{"metric": "requests", "window": map[string]any{"type": "day"}, "value": 100},
			start: "2026-03-29T00:00:00Z", end: "2026-03-30T00:00:00Z",
			from: "2026-03-29T00:00:00Z", to: "2026-03-30T00:00:00Z",
			value: func(c counted) float64 { return float64(c.requests) },
		},
		{
			name:  "5xx, the hour",
			body:  map[string]any{"metric": "status500", "window": map[string]any{"type": "hour", "timeZone": "Europe/Berlin"}, "value": 3},
			start: "2026-03-29T22:00:00+02:00", end: "2026-03-29T23:00:00+02:00",
			from: "2026-03-29T20:00:00Z", to: "2026-03-29T21:00:00Z",
			value: func(c counted) float64 { return float64(c.s500) },
		},
		{
			name:  "error rate of each client, Berlin's ISO week",
			body:  map[string]any{"metric": "errorRate", "scope": "eachClient", "window": map[string]any{"type": "week", "timeZone": "Europe/Berlin"}, "value": 0.5},
			start: "2026-03-23T00:00:00+01:00", end: "2026-03-30T00:00:00+02:00",
			from: "2026-03-22T23:00:00Z", to: "2026-03-29T22:00:00Z",
			value: errorRate, eachClient: true,
		},
		{
			name: "requests of each client to one template, Berlin's day",
			body: map[string]any{"metric": "requests", "scope": "eachClient", "window": map[string]any{"type": "day", "timeZone": "Europe/Berlin"}, "value": 10,
				"filter": map[string]any{"templateUris": []string{"/api/v2/users"}}},
			start: "2026-03-29T00:00:00+01:00", end: "2026-03-30T00:00:00+02:00",
			from: "2026-03-28T23:00:00Z", to: "2026-03-29T22:00:00Z",
			keep:  func(ev *limitEvent) bool { return ev.template == "api/v2/users" },
			value: func(c counted) float64 { return float64(c.requests) }, eachClient: true,
		},
		{
			name: "429s of client c2's POSTs, Berlin's month",
			body: map[string]any{"metric": "status429", "scope": "client", "clientId": "c2", "window": map[string]any{"type": "month", "timeZone": "Europe/Berlin"},
				"value": 10, "filter": map[string]any{"httpMethods": []string{"post"}}},
			start: "2026-03-01T00:00:00+01:00", end: "2026-04-01T00:00:00+02:00",
			from: "2026-02-28T23:00:00Z", to: "2026-03-31T22:00:00Z",
			keep:  func(ev *limitEvent) bool { return ev.client == "c2" && ev.method == "POST" },
			value: func(c counted) float64 { return float64(c.s429) },
		},
		{
			name:  "error rate of the organization, New York's day",
			body:  map[string]any{"metric": "errorRate", "window": map[string]any{"type": "day", "timeZone": "America/New_York"}, "value": 0.25},
			start: "2026-03-29T00:00:00-04:00", end: "2026-03-30T00:00:00-04:00",
			from: "2026-03-29T04:00:00Z", to: "2026-03-30T04:00:00Z",
			value: errorRate,
		},
		{
			name:  "response bytes, Berlin's day",
			body:  map[string]any{"metric": "responseBytes", "window": map[string]any{"type": "day", "timeZone": "Europe/Berlin"}, "value": 1 << 20},
			start: "2026-03-29T00:00:00+01:00", end: "2026-03-30T00:00:00+02:00",
			from: "2026-03-28T23:00:00Z", to: "2026-03-29T22:00:00Z",
			value: func(c counted) float64 { return float64(c.bytes) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.on(t)
			body := tc.body
			body["name"], body["thresholds"] = tc.name, []int{1, 50, 100, 1000}
			l := e.mustLimit(tok, body)
			limit := l.Value
			byClient := count(tc.from, tc.to, tc.keep)
			want := tc.value(total(byClient))
			var wantClients []wire.ClientLimitStatus
			if tc.eachClient {
				want = 0
				for _, c := range []string{"c1", "c2", "c3"} {
					if byClient[c] == nil {
						continue
					}
					v := tc.value(*byClient[c])
					want = max(want, v)
					wantClients = append(wantClients, wire.ClientLimitStatus{ClientID: c, ClientName: "name of " + c, Value: v, Percentage: v / limit * 100})
				}
			}
			if want == 0 {
				t.Fatalf("the oracle counts nothing: the test checks nothing")
			}
			var reached []int
			for _, th := range []int{1, 50, 100, 1000} {
				if want/limit*100 >= float64(th) {
					reached = append(reached, th)
				}
			}
			check := func(what string, st wire.LimitStatus) {
				t.Helper()
				if st.LimitID != l.ID || st.Metric != l.Metric || st.Value != want || st.Limit != limit || st.Percentage != want/limit*100 ||
					st.WindowStart != tc.start || st.WindowEnd != tc.end || st.DateEvaluated != "2026-03-29T20:30:00Z" ||
					!slices.Equal(st.ThresholdsReached, reached) {
					t.Errorf("%s: %+v\nwant value %v of %v, reached %v, window %s/%s", what, st, want, limit, reached, tc.start, tc.end)
				}
				if fmt.Sprint(st.Clients) != fmt.Sprint(wantClients) {
					t.Errorf("%s: clients %+v\nwant %+v", what, st.Clients, wantClients)
				}
			}
			check("status", decode[wire.LimitStatus](t, e.do("GET", l.SelfURI+"/status", tok, nil), 200))
			got := decode[wire.Limit](t, e.do("GET", l.SelfURI+"?expand=status", tok, nil), 200)
			if got.Status == nil {
				t.Fatalf("expand=status answered no status: %+v", got)
			}
			check("expand=status", *got.Status)
		})
	}
	list := decode[wire.LimitEntityListing](t, e.do("GET", limitsPath+"?expand=status", tok, nil), 200)
	for _, l := range list.Entities {
		if l.Status == nil || l.Status.LimitID != l.ID {
			t.Errorf("listed with expand=status: %+v", l)
		}
	}
}

// noMeasures is a usage store that refuses queries asking for a measure,
// as the cluster store does.
type noMeasures struct{ store.Usage }

func (n noMeasures) Query(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	if q.WantsMeasures() {
		return nil, usage.Errorf(usage.KindInvalid, "metrics", "this store does not keep the measures")
	}
	return n.Usage.Query(ctx, q)
}

// TestLimitResponseBytesWithoutMeasures checks that, over a store that
// keeps no measures, a responseBytes limit is refused as invalid, and the
// status of one stored before passes the store's refusal on as it is.
func TestLimitResponseBytesWithoutMeasures(t *testing.T) {
	limits := memory.New()
	e := MustEnv(t, func(c *server.Config) {
		c.Hooks.Genesys = func(g *genesys.Config) {
			qs, err := query.New(t.Context(), query.Config{Events: noMeasures{g.Events.(store.Usage)}, Executions: memory.New()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { qs.Close() })
			g.Queries, g.Limits = qs, limits
		}
	})
	org := e.mustOrg("Acme").ID
	tok := e.limitsToken(org, usage.PermLimitView, usage.PermLimitEdit)
	body := dailyLimit()
	body["metric"] = "responseBytes"
	eb := wantError(t, e.do("POST", limitsPath, tok, body), 400, "bad.request", "responseBytes cannot be limited on this server")
	if eb.Details[0].FieldName != "metric" {
		t.Errorf("details %+v, want metric", eb.Details)
	}
	if l := decode[wire.LimitEntityListing](t, e.do("GET", limitsPath, tok, nil), 200); l.Total != 0 {
		t.Errorf("the refused limit was stored: %+v", l)
	}
	// A count limit is counted as ever.
	ok := e.mustLimit(tok, dailyLimit())
	decode[wire.LimitStatus](t, e.do("GET", ok.SelfURI+"/status", tok, nil), 200)

	stored := usage.Limit{ID: "bytes", OrganizationID: org, Name: "bytes", Metric: usage.LimitResponseBytes, Value: 100,
		Window: usage.Window{Type: usage.WindowDay}, Version: 1, Created: start, Updated: start}
	if err := limits.PutLimit(t.Context(), stored); err != nil {
		t.Fatal(err)
	}
	eb = wantError(t, e.do("GET", limitsPath+"/bytes/status", tok, nil), 400, "bad.request", "does not keep the measures")
	if eb.Details[0].FieldName != "metrics" {
		t.Errorf("details %+v, want metrics", eb.Details)
	}
}

// TestLimitUpdatesAtOnce sends many PUTs of one limit at once: of those
// with the version read, exactly one wins and the others are conflicts;
// those without a version all replace the limit, one after the other.
func TestLimitUpdatesAtOnce(t *testing.T) {
	e := MustEnv(t)
	org := e.mustOrg("Acme").ID
	tok := e.limitsToken(org, usage.PermLimitView, usage.PermLimitEdit)
	l := e.mustLimit(tok, dailyLimit())
	const n = 12
	put := func(withVersion bool) []reply {
		var wg sync.WaitGroup
		replies := make([]reply, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := dailyLimit()
				body["name"] = fmt.Sprint("writer ", i)
				if withVersion {
					body["version"] = l.Version
				}
				replies[i] = e.do("PUT", l.SelfURI, tok, body)
			}()
		}
		wg.Wait()
		return replies
	}
	won := ""
	for i, r := range put(true) {
		switch {
		case r.status == 200 && won != "":
			t.Fatalf("writers %s and %d both updated version %d", won, i, l.Version)
		case r.status == 200:
			won = fmt.Sprint("writer ", i)
		case r.status != 409:
			t.Fatalf("writer %d: %d %s, want 200 or 409", i, r.status, r.body)
		}
	}
	got := decode[wire.Limit](t, e.do("GET", l.SelfURI, tok, nil), 200)
	if won == "" || got.Name != won || got.Version != l.Version+1 {
		t.Fatalf("after the PUTs with version %d: %q at version %d, the winner %q", l.Version, got.Name, got.Version, won)
	}
	for i, r := range put(false) {
		if r.status != 200 {
			t.Fatalf("writer %d without a version: %d %s", i, r.status, r.body)
		}
	}
	if got = decode[wire.Limit](t, e.do("GET", l.SelfURI, tok, nil), 200); got.Version != l.Version+1+n {
		t.Fatalf("after %d PUTs without a version: version %d, want %d", n, got.Version, l.Version+1+n)
	}
}
