package genesys_test

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// tally is the test's own count of a group of events, kept without any of
// usaged's code.
type tally struct{ requests, s200, s300, s400, s500, s429 int64 }

func (c *tally) add(status int) {
	c.requests++
	switch {
	case status == 429:
		c.s400++
		c.s429++
	case status >= 200 && status < 300:
		c.s200++
	case status >= 300 && status < 400:
		c.s300++
	case status >= 400 && status < 500:
		c.s400++
	case status >= 500:
		c.s500++
	}
}

// sentEvent is an event as the test sent it.
type sentEvent struct {
	id, client, name, template, method string
	at                                 time.Time
	status                             int
}

var (
	usageClients   = []string{"c-alpha", "c-beta", "c-gamma", "c-delta"}
	usageNames     = map[string]string{"c-alpha": "Alpha", "c-beta": "Beta", "c-gamma": "Gamma", "c-delta": "Delta"}
	usageTemplates = []string{"api/v2/users/{userId}", "api/v2/users/{userId}/presences/{sourceId}", "api/v2/analytics/query", "api/v2/routing/queues", "api/v2/usage/query"}
	usageMethods   = []string{"GET", "POST", "PUT", "DELETE"}
	usageStatuses  = []int{101, 200, 200, 201, 204, 302, 400, 404, 429, 500, 503}
)

// mustIngest posts events in batches of 200, each of which must be accepted
// whole.
func (e *env) mustIngest(token string, events []any) {
	e.t.Helper()
	for batch := range slices.Chunk(events, 200) {
		res := decode[result](e.t, e.do("POST", "/api/v2/usage/events", token, batch), 200)
		if res.Rejected != 0 {
			e.t.Fatalf("rejected: %+v", res)
		}
	}
}

// mustUsageEvents ingests n random events of the five days before the test
// clock into the organization of token and returns them.
func (e *env) mustUsageEvents(token string, n int, seed uint64) []sentEvent {
	e.t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	var sent []sentEvent
	var batch []any
	for i := range n {
		ev := sentEvent{
			id:       fmt.Sprintf("ev-%d-%d", seed, i),
			client:   usageClients[rng.IntN(len(usageClients))],
			template: usageTemplates[rng.IntN(len(usageTemplates))],
			method:   usageMethods[rng.IntN(len(usageMethods))],
			status:   usageStatuses[rng.IntN(len(usageStatuses))],
			at:       start.Add(-time.Duration(rng.Int64N(int64(5 * 24 * time.Hour)))).Truncate(time.Second),
		}
		ev.name = usageNames[ev.client]
		sent = append(sent, ev)
		template := ev.template
		if i%2 == 0 {
			template = "/" + template // ingest strips the leading slash
		}
		batch = append(batch, event(ev.id, "time", ev.at.Format(time.RFC3339), "clientId", ev.client, "clientName", ev.name,
			"templateUri", template, "httpMethod", ev.method, "status", ev.status, "userId", "u1"))
	}
	e.mustIngest(token, batch)
	return sent
}

type executionResult struct {
	ExecutionID string `json:"executionId"`
	ResultsURI  string `json:"resultsUri"`
}

type queryResult struct {
	QueryStatus string `json:"queryStatus"`
	Results     []row  `json:"results"`
	Cursors     *struct {
		Before string `json:"before"`
		After  string `json:"after"`
	} `json:"cursors"`
	ErrorBody *errorBody `json:"errorBody"`
}

// mustExecute posts body to path, checks the 202 answer and polls its
// results URI until the execution is final.
func (e *env) mustExecute(token, method, path string, body any) (executionResult, queryResult) {
	e.t.Helper()
	ex := decode[executionResult](e.t, e.do(method, path, token, body), 202)
	if ex.ExecutionID == "" || !strings.Contains(ex.ResultsURI, ex.ExecutionID) {
		e.t.Fatalf("execution %+v", ex)
	}
	for range 200 {
		res := decode[queryResult](e.t, e.do("GET", ex.ResultsURI, token, nil), 200)
		if res.QueryStatus != "Running" {
			return ex, res
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("%s never finished", ex.ResultsURI)
	return ex, queryResult{}
}

// checkRows compares rows with want, keyed by key(row), and checks every
// count is present.
func checkRows(t *testing.T, rows []row, want map[string]*tally, key func(r row) string) {
	t.Helper()
	got := make(map[string]bool)
	for _, r := range rows {
		if r.Requests == nil || r.Status200 == nil || r.Status300 == nil || r.Status400 == nil || r.Status500 == nil || r.Status429 == nil {
			t.Fatalf("row without every count: %s", mustJSON(r))
		}
		if r.ClientID == nil || r.ClientName == nil || r.OrganizationID == nil || r.UserID == nil || r.TemplateURI == nil || r.HTTPMethod == nil {
			t.Fatalf("row without every dimension: %s", mustJSON(r))
		}
		if r.Platform != nil {
			t.Fatalf("row with a field ApiUsageRow lacks: %s", mustJSON(r))
		}
		k := key(r)
		if got[k] {
			t.Fatalf("row %s twice", k)
		}
		got[k] = true
		w := want[k]
		if w == nil {
			t.Fatalf("row %s not expected: %s", k, mustJSON(r))
		}
		g := tally{*r.Requests, *r.Status200, *r.Status300, *r.Status400, *r.Status500, *r.Status429}
		if g != *w {
			t.Fatalf("row %s: got %+v, counted %+v", k, g, *w)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, counted %d groups", len(got), len(want))
	}
}

// statused is an event as a test sent it.
type statused interface{ statusCode() int }

func (ev sentEvent) statusCode() int { return ev.status }

// count tallies sent by key; events whose key is "" are left out.
func count[E statused](sent []E, key func(E) string) map[string]*tally {
	m := make(map[string]*tally)
	for _, ev := range sent {
		k := key(ev)
		if k == "" {
			continue
		}
		if m[k] == nil {
			m[k] = &tally{}
		}
		m[k].add(ev.statusCode())
	}
	return m
}

func dayOf(t time.Time) string {
	return t.UTC().Truncate(24 * time.Hour).Format("2006-01-02T15:04:05Z")
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestOrganizationQuery(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	ingestTok := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd))
	viewer := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))
	sent := e.mustUsageEvents(ingestTok, 3000, 1)
	// Another organization's events never show.
	b := e.mustOrg("B")
	e.mustUsageEvents(e.mustToken(e.mustClient(b.ID, 0, usage.PermEventAdd)), 200, 2)

	const path = "/api/v2/usage/query"
	_, res := e.mustExecute(viewer, "POST", path, map[string]any{
		"interval": "2026-06-10T00:00:00Z/2026-06-16T00:00:00Z", "granularity": "Day",
		"groupBy": []string{"OAuthClientId", "TemplateUri", "HttpMethod"},
	})
	if res.QueryStatus != "Complete" {
		t.Fatalf("result %s", mustJSON(res))
	}
	checkRows(t, res.Results, count(sent, func(ev sentEvent) string {
		return dayOf(ev.at) + "|" + ev.client + "|" + ev.template + "|" + ev.method
	}), func(r row) string {
		if *r.UserID != "" || *r.OrganizationID != "" || *r.ClientName != usageNames[*r.ClientID] {
			t.Fatalf("row %s", mustJSON(r))
		}
		return str(r.Date) + "|" + *r.ClientID + "|" + *r.TemplateURI + "|" + *r.HTTPMethod
	})

	// Without groupBy or granularity: one row per OAuth client, no date, the
	// date-only form including its end day.
	_, res = e.mustExecute(viewer, "POST", path, map[string]any{"interval": "2026-06-10/2026-06-15"})
	checkRows(t, res.Results, count(sent, func(ev sentEvent) string { return ev.client }), func(r row) string {
		if r.Date != nil || *r.TemplateURI != "" || *r.ClientName != usageNames[*r.ClientID] {
			t.Fatalf("row %s", mustJSON(r))
		}
		return *r.ClientID
	})

	// A narrower interval with an ISO duration, by organization, one metric.
	_, res = e.mustExecute(viewer, "POST", path, map[string]any{
		"interval": "P1D/2026-06-14T00:00:00Z", "groupBy": []string{"OrganizationId"}, "metrics": []string{"Status429"},
	})
	var n429 int64
	for _, ev := range sent {
		if ev.status == 429 && ev.at.Format("2006-01-02") == "2026-06-13" {
			n429++
		}
	}
	if len(res.Results) != 1 || *res.Results[0].OrganizationID != a.ID || *res.Results[0].Status429 != n429 || *res.Results[0].Requests != 0 {
		t.Fatalf("result %s, want %d 429s", mustJSON(res), n429)
	}

	// Weekly buckets start on Monday (2026-06-15 is one).
	_, res = e.mustExecute(viewer, "POST", path, map[string]any{"interval": "2026-06-01/2026-06-15", "granularity": "Week", "groupBy": []string{"HttpMethod"}})
	checkRows(t, res.Results, count(sent, func(ev sentEvent) string {
		w := "2026-06-08T00:00:00Z"
		if !ev.at.Before(time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)) {
			w = "2026-06-15T00:00:00Z"
		}
		return w + "|" + ev.method
	}), func(r row) string { return str(r.Date) + "|" + *r.HTTPMethod })
}

func TestSimpleSearch(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	sent := e.mustUsageEvents(e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd)), 3000, 3)
	viewer := e.mustToken(e.mustClient(a.ID, 0, usage.PermSimpleSearchView))

	// All columns, paged: every record once, in pages of at most pageSize.
	ex, res := e.mustExecute(viewer, "POST", "/api/v2/usage/simplesearch", map[string]any{"interval": "2026-06-10/2026-06-15"})
	want := count(sent, func(ev sentEvent) string {
		return dayOf(ev.at) + "|" + ev.name + "|" + ev.client + "|" + ev.method + "|" + ev.template
	})
	if len(want) < 300 {
		t.Fatalf("only %d records: the paging test needs more", len(want))
	}
	key := func(r row) string {
		return str(r.Date) + "|" + *r.ClientName + "|" + *r.ClientID + "|" + *r.HTTPMethod + "|" + *r.TemplateURI
	}
	if res.QueryStatus != "Complete" || len(res.Results) != 100 || res.Cursors == nil {
		t.Fatalf("first page without a page size: %d rows", len(res.Results))
	}
	var all []row
	after, pages := "", 0
	for {
		q := url.Values{"pageSize": {"70"}}
		if after != "" {
			q.Set("after", after)
		}
		page := decode[queryResult](t, e.do("GET", ex.ResultsURI+"?"+q.Encode(), viewer, nil), 200)
		if page.QueryStatus != "Complete" || len(page.Results) > 70 || len(page.Results) == 0 {
			t.Fatalf("page %d: %s", pages, mustJSON(page))
		}
		all = append(all, page.Results...)
		pages++
		if page.Cursors == nil || page.Cursors.After == "" {
			break
		}
		after = page.Cursors.After
	}
	if pages != (len(want)+69)/70 {
		t.Fatalf("%d pages for %d records", pages, len(want))
	}
	checkRows(t, all, want, key)

	// Filters and chosen columns: no date, no template.
	_, res = e.mustExecute(viewer, "POST", "/api/v2/usage/simplesearch", map[string]any{
		"interval": "2026-06-10/2026-06-15", "metrics": []string{"ClientName", "HttpMethod", "Status429"},
		"oauthClientNames": []string{"Alpha", "Gamma"}, "httpMethods": []string{"get", "POST"}, "templateUris": []string{"/api/v2/users/{userId}", "api/v2/analytics/query"},
	})
	want = count(sent, func(ev sentEvent) string {
		if (ev.name != "Alpha" && ev.name != "Gamma") || (ev.method != "GET" && ev.method != "POST") ||
			(ev.template != "api/v2/users/{userId}" && ev.template != "api/v2/analytics/query") {
			return ""
		}
		return ev.name + "|" + ev.method
	})
	for _, w := range want { // only Requests and Status429 are reported
		*w = tally{requests: w.requests, s429: w.s429}
	}
	checkRows(t, res.Results, want, func(r row) string {
		if r.Date != nil || *r.TemplateURI != "" {
			t.Fatalf("row %s", mustJSON(r))
		}
		return *r.ClientName + "|" + *r.HTTPMethod
	})

	// Paging parameters are checked.
	wantError(t, e.do("GET", ex.ResultsURI+"?pageSize=1001", viewer, nil), 400, "invalid.query.param.value", "pageSize")
	wantError(t, e.do("GET", ex.ResultsURI+"?pageSize=-1", viewer, nil), 400, "invalid.query.param.value", "pageSize")
	wantError(t, e.do("GET", ex.ResultsURI+"?after=xyz", viewer, nil), 400, "invalid.query.param.value", "after")
	// pageSize=0 is the default of 100.
	page := decode[queryResult](t, e.do("GET", ex.ResultsURI+"?pageSize=0", viewer, nil), 200)
	if len(page.Results) != 100 || page.Cursors == nil || page.Cursors.After == "" {
		t.Fatalf("default page has %d rows", len(page.Results))
	}
}

func TestClientQueryAndSummary(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	sent := e.mustUsageEvents(e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd)), 2000, 4)
	viewer := e.mustToken(e.mustClient(a.ID, 0, usage.PermClientView))

	_, res := e.mustExecute(viewer, "POST", "/api/v2/oauth/clients/c-beta/usage/query", map[string]any{
		"interval": "2026-06-10/2026-06-15", "granularity": "Day", "groupBy": []string{"TemplateUri"},
	})
	checkRows(t, res.Results, count(sent, func(ev sentEvent) string {
		if ev.client != "c-beta" {
			return ""
		}
		return dayOf(ev.at) + "|" + ev.template
	}), func(r row) string { return str(r.Date) + "|" + *r.TemplateURI })

	// The summary of the last 3 days, today included: one row per day.
	ex, res := e.mustExecute(viewer, "GET", "/api/v2/oauth/clients/c-delta/usage/summary?days=3", nil)
	if !strings.HasPrefix(ex.ResultsURI, "/api/v2/oauth/clients/c-delta/usage/query/results/") {
		t.Fatalf("results uri %s", ex.ResultsURI)
	}
	checkRows(t, res.Results, count(sent, func(ev sentEvent) string {
		if ev.client != "c-delta" || ev.at.Before(time.Date(2026, 6, 13, 0, 0, 0, 0, time.UTC)) {
			return ""
		}
		return dayOf(ev.at) + "|" + ev.client
	}), func(r row) string { return str(r.Date) + "|" + *r.ClientID })

	for _, days := range []string{"0", "367", "seven", "-1"} {
		wantError(t, e.do("GET", "/api/v2/oauth/clients/c-delta/usage/summary?days="+days, viewer, nil), 400, "invalid.query.param.value", "days")
	}
	// A client the organization has never seen, in events or registry.
	wantError(t, e.do("POST", "/api/v2/oauth/clients/c-omega/usage/query", viewer, map[string]any{"interval": day}), 404, "not.found", "c-omega")
	wantError(t, e.do("GET", "/api/v2/oauth/clients/c-omega/usage/summary", viewer, nil), 404, "not.found", "c-omega")
	// A registered client without events is known: its query is empty.
	quiet := e.mustClient(a.ID, 0)
	_, res = e.mustExecute(viewer, "POST", "/api/v2/oauth/clients/"+quiet.ID+"/usage/query", map[string]any{"interval": day})
	if res.QueryStatus != "Complete" || len(res.Results) != 0 {
		t.Fatalf("result %s", mustJSON(res))
	}
	// UserId is not a client query dimension.
	wantError(t, e.do("POST", "/api/v2/oauth/clients/c-beta/usage/query", viewer, map[string]any{"interval": day, "groupBy": []string{"UserId"}}),
		400, "invalid.value", "Allowable values are: OAuthClientId, OrganizationId, TemplateUri, HttpMethod")
}

func TestExecutionAccess(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a, b := e.mustOrg("A"), e.mustOrg("B")
	e.mustUsageEvents(e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd)), 100, 5)
	viewerClient := e.mustClient(a.ID, 0, usage.PermOAuthClientView)
	viewerA := e.mustToken(viewerClient)
	viewerB := e.mustToken(e.mustClient(b.ID, 0, usage.PermOAuthClientView))
	nobody := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd))

	ex, _ := e.mustExecute(viewerA, "POST", "/api/v2/usage/query", map[string]any{"interval": day})
	id := ex.ExecutionID
	// Another organization, another operation's route, another client's
	// route, an unknown id: all missing.
	wantError(t, e.do("GET", ex.ResultsURI, viewerB, nil), 404, "not.found", id)
	wantError(t, e.do("GET", "/api/v2/usage/simplesearch/"+id+"/results", viewerA, nil), 404, "not.found", id)
	wantError(t, e.do("GET", "/api/v2/oauth/clients/c-alpha/usage/query/results/"+id, viewerA, nil), 404, "not.found", id)
	wantError(t, e.do("GET", "/api/v2/usage/query/00000000-0000-0000-0000-000000000000/results", viewerA, nil), 404, "not.found", "")
	cex, _ := e.mustExecute(viewerA, "POST", "/api/v2/oauth/clients/c-alpha/usage/query", map[string]any{"interval": day})
	wantError(t, e.do("GET", "/api/v2/oauth/clients/c-beta/usage/query/results/"+cex.ExecutionID, viewerA, nil), 404, "not.found", "")
	// Organization B has never seen client c-alpha.
	wantError(t, e.do("POST", "/api/v2/oauth/clients/c-alpha/usage/query", viewerB, map[string]any{"interval": day}), 404, "not.found", "c-alpha")

	// Permissions are any-of and listed when missing.
	for _, c := range []struct{ method, path, perms string }{
		{"POST", "/api/v2/usage/query", "oauth:client:view, usage:organization:view"},
		{"GET", ex.ResultsURI, "oauth:client:view, usage:organization:view"},
		{"POST", "/api/v2/usage/simplesearch", "oauth:client:view, usage:simpleSearch:view"},
		{"GET", "/api/v2/usage/simplesearch/" + id + "/results", "oauth:client:view, usage:simpleSearch:view"},
		{"POST", "/api/v2/oauth/clients/c-alpha/usage/query", "oauth:client:view, usage:client:view"},
		{"GET", cex.ResultsURI, "oauth:client:view, usage:client:view"},
		{"GET", "/api/v2/oauth/clients/c-alpha/usage/summary", "oauth:client:view, usage:client:view"},
	} {
		eb := wantError(t, e.do(c.method, c.path, nobody, map[string]any{"interval": day}), 403, "missing.any.permissions", c.perms)
		if eb.MessageParams["permissions"] != c.perms {
			t.Fatalf("%s %s: params %v", c.method, c.path, eb.MessageParams)
		}
	}
	wantError(t, e.do("POST", "/api/v2/usage/query", adminToken, map[string]any{"interval": day}), 403, "not.authorized", "no organization")

	// Executions expire after the results TTL.
	e.clk.Advance(25 * time.Hour)
	wantError(t, e.do("GET", ex.ResultsURI, e.mustToken(viewerClient), nil), 404, "not.found", id)
}

func TestUsageQueryErrors(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermOAuthClientView))
	f := func(path, body string, code, field, inMessage string) {
		t.Helper()
		eb := wantError(t, e.do("POST", path, tok, body), 400, code, inMessage)
		if len(eb.Details) != 1 || eb.Details[0].FieldName != field {
			t.Fatalf("details %+v, want field %s", eb.Details, field)
		}
	}
	for _, path := range []string{"/api/v2/usage/query", "/api/v2/usage/simplesearch"} {
		f(path, `{}`, "constraint.validation", "interval", "interval is required")
		f(path, `{"interval":""}`, "constraint.validation", "interval", "interval is required")
		f(path, `{"interval":"last week"}`, "invalid.date", "interval", "last week")
		f(path, `{"interval":"2026-02-01/2026-01-01"}`, "invalid.date", "interval", "end must be after start")
		f(path, `{"interval":"`+day+`","metrics":["Status600"]}`, "invalid.value", "metrics", "Allowable values are")
		f(path, `{"interval":"`+day+`","colour":"red"}`, "bad.request", "colour", "unknown field")
		f(path, `{"interval":5}`, "bad.request", "interval", "must be of type string")
		f(path, `not json`, "bad.request", "body", "not valid JSON")
		f(path, `[]`, "bad.request", "body", "JSON object")
	}
	f("/api/v2/usage/query", `{"interval":"`+day+`","granularity":"Minute"}`, "invalid.value", "granularity", "Value [Minute] is not valid for field type [granularity]. Allowable values are: Day, Week, Month")
	f("/api/v2/usage/query", `{"interval":"`+day+`","groupBy":["Platform"]}`, "invalid.value", "groupBy", "Platform")
	f("/api/v2/usage/simplesearch", `{"interval":"`+day+`","httpMethods":["FETCH"]}`, "invalid.value", "httpMethods", "FETCH")
	f("/api/v2/usage/simplesearch", `{"interval":"`+day+`","metrics":["Requests"]}`, "invalid.value", "metrics", "Requests")
	wantError(t, e.do("POST", "/api/v2/usage/query", tok, `{"interval":"`+day+`"}`, "Content-Type", "text/plain"), 415, "unsupported.media.type", "text/plain")
}
