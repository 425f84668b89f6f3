package genesys_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usaged/usaged/genesys"
	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

const jobsPath = "/api/v2/usage/aggregates/query/jobs"

func clientJobsPath(client string) string {
	return "/api/v2/usage/client/" + client + "/aggregates/query/jobs"
}

// jobEvent is an event as the test sent it; user and platform may be empty.
type jobEvent struct {
	client, name, user, template, method, platform string
	at                                             time.Time
	status                                         int
}

var (
	jobClients   = []string{"jc-1", "jc-2", "jc-3", "jc-4"}
	jobNames     = map[string]string{"jc-1": "One", "jc-2": "Two", "jc-3": "Three", "jc-4": "Four"}
	jobUsers     = []string{"u1", "u2", "u3", ""}
	jobTemplates = []string{"api/v2/users/{userId}", "api/v2/analytics/query", "api/v2/routing/queues", "api/v2/usage/query"}
	jobMethods   = []string{"GET", "POST", "PUT", "DELETE"}
	jobPlatforms = []string{"PureCloud", "Web", ""}
	jobStatuses  = []int{101, 200, 200, 201, 204, 302, 400, 404, 429, 429, 500, 503}
)

// mustJobEvents ingests n random events of the five days before the test
// clock into the organization of token and returns them.
func (e *env) mustJobEvents(token string, n int, seed uint64) []jobEvent {
	e.t.Helper()
	rng := rand.New(rand.NewPCG(seed, 11))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	var sent []jobEvent
	var batch []any
	for i := range n {
		ev := jobEvent{
			client: pick(jobClients), user: pick(jobUsers), template: pick(jobTemplates),
			method: pick(jobMethods), platform: pick(jobPlatforms),
			status: jobStatuses[rng.IntN(len(jobStatuses))],
			at:     start.Add(-time.Duration(rng.Int64N(int64(5 * 24 * time.Hour)))).Truncate(time.Second),
		}
		ev.name = jobNames[ev.client]
		sent = append(sent, ev)
		kv := []any{"time", ev.at.Format(time.RFC3339), "clientId", ev.client, "clientName", ev.name,
			"templateUri", ev.template, "httpMethod", strings.ToLower(ev.method), "status", ev.status}
		if ev.user != "" {
			kv = append(kv, "userId", ev.user)
		}
		if ev.platform != "" {
			kv = append(kv, "platform", ev.platform)
		}
		batch = append(batch, event(fmt.Sprintf("job-%d-%d", seed, i), kv...))
	}
	e.mustIngest(token, batch)
	return sent
}

func (ev jobEvent) statusCode() int { return ev.status }

// The response models as a client sees them. They are decoded strictly, so
// that a property outside the models fails the test.
type jobCreatedJSON struct {
	ID         string  `json:"id"`
	Name       *string `json:"name"`
	ResultsURI string  `json:"resultsUri"`
	SelfURI    string  `json:"selfUri"`
}

type oauthClientJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	SelfURI string `json:"selfUri"`
}

type userJSON struct {
	ID      string `json:"id"`
	SelfURI string `json:"selfUri"`
}

type jobEntityJSON struct {
	Date           *string          `json:"date"`
	Platform       *string          `json:"platform"`
	HTTPMethod     *string          `json:"httpMethod"`
	TemplateURI    *string          `json:"templateUri"`
	RequestCount   *int64           `json:"requestCount"`
	Status200      *int64           `json:"status200"`
	Status300      *int64           `json:"status300"`
	Status400      *int64           `json:"status400"`
	Status429      *int64           `json:"status429"`
	Status500      *int64           `json:"status500"`
	OAuthClient    *oauthClientJSON `json:"oauthClient"`
	User           *userJSON        `json:"user"`
	OrganizationID *string          `json:"organizationId"`
}

type jobResultsJSON struct {
	Name        *string          `json:"name"`
	QueryStatus string           `json:"queryStatus"`
	ErrorBody   *errorBody       `json:"errorBody"`
	NextURI     string           `json:"nextUri"`
	Entities    *[]jobEntityJSON `json:"entities"`
	SelfURI     string           `json:"selfUri"`
}

func decodeJobStrict[T any](t *testing.T, r reply, status int) T {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var v T
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return v
}

// mustStartJob posts a job and checks the 202 answer.
func (e *env) mustStartJob(token, path string, body any) jobCreatedJSON {
	e.t.Helper()
	j := decodeJobStrict[jobCreatedJSON](e.t, e.do("POST", path, token, body), 202)
	if j.ID == "" || j.Name != nil || j.SelfURI != path+"/"+j.ID || j.ResultsURI != j.SelfURI {
		e.t.Fatalf("job %+v", j)
	}
	return j
}

// pollJob reads uri until its job is final and returns that first page.
func (e *env) pollJob(token, uri string) jobResultsJSON {
	e.t.Helper()
	for range 500 {
		res := decodeJobStrict[jobResultsJSON](e.t, e.do("GET", uri, token, nil), 200)
		switch res.QueryStatus {
		case "Queued", "Running":
			if res.Entities != nil || res.NextURI != "" || res.ErrorBody != nil {
				e.t.Fatalf("unfinished job with results: %s", mustJSON(res))
			}
			time.Sleep(10 * time.Millisecond)
			continue
		case "Succeeded", "Failed", "Cancelled":
			return res
		}
		e.t.Fatalf("queryStatus %q", res.QueryStatus)
	}
	e.t.Fatalf("%s never finished", uri)
	return jobResultsJSON{}
}

// mustJobEntities runs a job to success and returns all its entities, read
// in pages of pageSize (0: the default) by following nextUri.
func (e *env) mustJobEntities(token, path string, body any, pageSize int) []jobEntityJSON {
	e.t.Helper()
	j := e.mustStartJob(token, path, body)
	first := e.pollJob(token, j.ResultsURI)
	if first.QueryStatus != "Succeeded" || first.SelfURI != j.SelfURI || first.Entities == nil || first.ErrorBody != nil {
		e.t.Fatalf("job result %s", mustJSON(first))
	}
	uri := j.ResultsURI
	if pageSize > 0 {
		uri += "?pageSize=" + fmt.Sprint(pageSize)
	} else {
		pageSize = 100
	}
	var all []jobEntityJSON
	for {
		page := decodeJobStrict[jobResultsJSON](e.t, e.do("GET", uri, token, nil), 200)
		if page.QueryStatus != "Succeeded" || page.Entities == nil || len(*page.Entities) > pageSize {
			e.t.Fatalf("page %s", mustJSON(page))
		}
		all = append(all, *page.Entities...)
		if page.NextURI == "" {
			break
		}
		if len(*page.Entities) != pageSize || !strings.HasPrefix(page.NextURI, j.ResultsURI+"?") {
			e.t.Fatalf("page of %d entities with nextUri %q", len(*page.Entities), page.NextURI)
		}
		uri = page.NextURI
	}
	return all
}

// checkJobEntities compares entities with want, keyed by key(entity). Counts
// not in metrics must be absent, those in it present.
func checkJobEntities(t *testing.T, got []jobEntityJSON, want map[string]*tally, metrics []string, key func(jobEntityJSON) string) {
	t.Helper()
	if metrics == nil {
		metrics = []string{"Requests", "Status200", "Status300", "Status400", "Status429", "Status500"}
	}
	has := func(m string) bool {
		for _, x := range metrics {
			if x == m {
				return true
			}
		}
		return false
	}
	seen := make(map[string]bool)
	for _, en := range got {
		var g tally
		for _, c := range []struct {
			name string
			p    *int64
			dst  *int64
		}{
			{"Requests", en.RequestCount, &g.requests}, {"Status200", en.Status200, &g.s200}, {"Status300", en.Status300, &g.s300},
			{"Status400", en.Status400, &g.s400}, {"Status429", en.Status429, &g.s429}, {"Status500", en.Status500, &g.s500},
		} {
			if (c.p != nil) != has(c.name) {
				t.Fatalf("entity %s: %s present %v, asked %v", mustJSON(en), c.name, c.p != nil, has(c.name))
			}
			if c.p != nil {
				*c.dst = *c.p
			}
		}
		if en.Date != nil && !regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`).MatchString(*en.Date) {
			t.Fatalf("date %q is not yyyy-MM-dd", *en.Date)
		}
		if c := en.OAuthClient; c != nil && (c.Name != jobNames[c.ID] || c.SelfURI != "/api/v2/oauth/clients/"+c.ID) {
			t.Fatalf("oauthClient %+v", *c)
		}
		if u := en.User; u != nil && (u.ID == "" || u.SelfURI != "/api/v2/users/"+u.ID) {
			t.Fatalf("user %+v", *u)
		}
		k := key(en)
		if seen[k] {
			t.Fatalf("entity %s twice", k)
		}
		seen[k] = true
		w := want[k]
		if w == nil {
			t.Fatalf("entity %s not expected: %s", k, mustJSON(en))
		}
		var wc tally
		for _, c := range []struct {
			name     string
			src, dst *int64
		}{
			{"Requests", &w.requests, &wc.requests}, {"Status200", &w.s200, &wc.s200}, {"Status300", &w.s300, &wc.s300},
			{"Status400", &w.s400, &wc.s400}, {"Status429", &w.s429, &wc.s429}, {"Status500", &w.s500, &wc.s500},
		} {
			if has(c.name) {
				*c.dst = *c.src
			}
		}
		if g != wc {
			t.Fatalf("entity %s: got %+v, counted %+v", k, g, wc)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("%d entities, counted %d groups", len(seen), len(want))
	}
}

func jobPtr(p *string) string {
	if p == nil {
		return "<absent>"
	}
	return *p
}

func jobClientOf(en jobEntityJSON) string {
	if en.OAuthClient == nil {
		return "<absent>"
	}
	return en.OAuthClient.ID
}

func jobUserOf(en jobEntityJSON) string {
	if en.User == nil {
		return ""
	}
	return en.User.ID
}

func TestJobsOrganization(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	sent := e.mustJobEvents(e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd)), 3000, 1)
	viewer := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))
	// Another organization's events never show.
	b := e.mustOrg("B")
	e.mustJobEvents(e.mustToken(e.mustClient(b.ID, 0, usage.PermEventAdd)), 300, 2)
	t.Run("Paging", func(t *testing.T) {
		e := e.on(t)
		// By day, client name, template, method and user, in pages of 70.
		body := map[string]any{
			"interval": "2026-06-10/2026-06-15", "granularity": "day",
			"groupBy": []string{"OauthClientName", "templateUri", "HttpMethod", "UserId"},
		}
		want := count(sent, func(ev jobEvent) string {
			return ev.at.Format(time.DateOnly) + "|" + ev.client + "|" + ev.template + "|" + ev.method + "|" + ev.user
		})
		if len(want) < 300 {
			t.Fatalf("only %d groups: the paging test needs more", len(want))
		}
		got := e.mustJobEntities(viewer, jobsPath, body, 70)
		checkJobEntities(t, got, want, nil, func(en jobEntityJSON) string {
			if en.Platform != nil || en.OrganizationID != nil || en.Date == nil || en.TemplateURI == nil || en.HTTPMethod == nil {
				t.Fatalf("entity %s", mustJSON(en))
			}
			return *en.Date + "|" + jobClientOf(en) + "|" + *en.TemplateURI + "|" + *en.HTTPMethod + "|" + jobUserOf(en)
		})
		// The default page is 100 entities, as is pageSize=0.
		j := e.mustStartJob(viewer, jobsPath, body)
		e.pollJob(viewer, j.ResultsURI)
		for _, q := range []string{"", "?pageSize=0"} {
			page := decodeJobStrict[jobResultsJSON](t, e.do("GET", j.ResultsURI+q, viewer, nil), 200)
			if len(*page.Entities) != 100 || !strings.Contains(page.NextURI, "pageSize=100") {
				t.Fatalf("default page: %d entities, nextUri %q", len(*page.Entities), page.NextURI)
			}
		}
		// The largest page holds them all.
		page := decodeJobStrict[jobResultsJSON](t, e.do("GET", j.ResultsURI+"?pageSize=1000", viewer, nil), 200)
		if len(*page.Entities) != min(len(want), 1000) || (len(want) <= 1000) != (page.NextURI == "") {
			t.Fatalf("page of 1000: %d entities of %d, nextUri %q", len(*page.Entities), len(want), page.NextURI)
		}
		// Paging parameters are checked; a cursor of another job is refused.
		wantError(t, e.do("GET", j.ResultsURI+"?pageSize=1001", viewer, nil), 400, "invalid.query.param.value", "pageSize")
		wantError(t, e.do("GET", j.ResultsURI+"?pageSize=-1", viewer, nil), 400, "invalid.query.param.value", "pageSize")
		wantError(t, e.do("GET", j.ResultsURI+"?after=xyz", viewer, nil), 400, "invalid.query.param.value", "after")
		first := decodeJobStrict[jobResultsJSON](t, e.do("GET", j.ResultsURI, viewer, nil), 200)
		after := jobMust(url.Parse(first.NextURI)).Query().Get("after")
		j2 := e.mustStartJob(viewer, jobsPath, body)
		e.pollJob(viewer, j2.ResultsURI)
		wantError(t, e.do("GET", j2.ResultsURI+"?after="+after, viewer, nil), 400, "invalid.query.param.value", "after")
	})
	t.Run("Metrics", func(t *testing.T) {
		e := e.on(t)
		// Some metrics only, by platform, over the whole interval: no date, the
		// other counts absent, requests without a platform grouped as "".
		metrics := []string{"Status429", "Requests"}
		got := e.mustJobEntities(viewer, jobsPath, map[string]any{
			"interval": "2026-06-10T00:00:00Z/2026-06-16T00:00:00Z", "groupBy": []string{"Platform"}, "metrics": []string{"status429", "REQUESTS", "Requests"},
		}, 0)
		checkJobEntities(t, got, count(sent, func(ev jobEvent) string { return "p:" + ev.platform }), metrics, func(en jobEntityJSON) string {
			if en.Date != nil || en.OAuthClient != nil || en.User != nil || en.HTTPMethod != nil || en.Platform == nil {
				t.Fatalf("entity %s", mustJSON(en))
			}
			return "p:" + *en.Platform
		})
	})
	t.Run("Buckets", func(t *testing.T) {
		e := e.on(t)
		// Without groupBy: one entity per bucket. Weeks start on Monday
		// (2026-06-15 is one); months on their first day.
		got := e.mustJobEntities(viewer, jobsPath, map[string]any{"interval": "2026-06-01/2026-06-15", "granularity": "Week"}, 0)
		checkJobEntities(t, got, count(sent, func(ev jobEvent) string {
			if ev.at.Before(time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)) {
				return "2026-06-08"
			}
			return "2026-06-15"
		}), nil, func(en jobEntityJSON) string {
			if en.OAuthClient != nil || en.User != nil || en.TemplateURI != nil || en.HTTPMethod != nil || en.Platform != nil {
				t.Fatalf("entity %s", mustJSON(en))
			}
			return jobPtr(en.Date)
		})
		got = e.mustJobEntities(viewer, jobsPath, map[string]any{"interval": "P1M/2026-06-16T00:00:00Z", "granularity": "MONTH", "groupBy": []string{"OauthClientId"}}, 0)
		checkJobEntities(t, got, count(sent, func(ev jobEvent) string { return "2026-06-01|" + ev.client }), nil, func(en jobEntityJSON) string {
			return jobPtr(en.Date) + "|" + jobClientOf(en)
		})
	})
	t.Run("Filters", func(t *testing.T) {
		e := e.on(t)
		// Filters: each list is an IN, all of them must hold.
		inList := func(v string, list ...string) bool {
			for _, x := range list {
				if v == x {
					return true
				}
			}
			return false
		}
		got := e.mustJobEntities(viewer, jobsPath, map[string]any{
			"interval": "2026-06-10/2026-06-15", "groupBy": []string{"OauthClientId", "HttpMethod", "UserId"},
			"userIds": []string{"u2", "u3"}, "oauthClientIds": []string{"jc-1", "jc-3", "jc-9"}, "httpMethods": []string{"get", "POST"},
			"templateUris": []string{"/api/v2/users/{userId}", "api/v2/analytics/query"}, "platforms": []string{"Web", "PureCloud"},
		}, 0)
		checkJobEntities(t, got, count(sent, func(ev jobEvent) string {
			if !inList(ev.user, "u2", "u3") || !inList(ev.client, "jc-1", "jc-3") || !inList(ev.method, "GET", "POST") ||
				!inList(ev.template, "api/v2/users/{userId}", "api/v2/analytics/query") || !inList(ev.platform, "Web", "PureCloud") {
				return ""
			}
			return ev.client + "|" + ev.method + "|" + ev.user
		}), nil, func(en jobEntityJSON) string {
			return jobClientOf(en) + "|" + jobPtr(en.HTTPMethod) + "|" + jobUserOf(en)
		})
	})
	t.Run("SortBy", func(t *testing.T) {
		e := e.on(t)
		// sortBy: requests descending across every page.
		got := e.mustJobEntities(viewer, jobsPath, map[string]any{
			"interval": "2026-06-10/2026-06-15", "granularity": "Day", "groupBy": []string{"TemplateUri", "HttpMethod"},
			"sortBy": []map[string]string{{"fieldName": "Requests", "order": "desc"}},
		}, 30)
		checkJobEntities(t, got, count(sent, func(ev jobEvent) string {
			return ev.at.Format(time.DateOnly) + "|" + ev.template + "|" + ev.method
		}), nil, func(en jobEntityJSON) string {
			return jobPtr(en.Date) + "|" + jobPtr(en.TemplateURI) + "|" + jobPtr(en.HTTPMethod)
		})
		for i := 1; i < len(got); i++ {
			if *got[i-1].RequestCount < *got[i].RequestCount {
				t.Fatalf("entities %d and %d out of order: %d then %d", i-1, i, *got[i-1].RequestCount, *got[i].RequestCount)
			}
		}
		// Several keys: method ascending (the default order), then 2xx descending.
		got = e.mustJobEntities(viewer, jobsPath, map[string]any{
			"interval": "2026-06-10/2026-06-15", "groupBy": []string{"OauthClientId", "HttpMethod", "TemplateUri"},
			"sortBy": []map[string]string{{"fieldName": "httpmethod"}, {"fieldName": "Status200", "order": "Desc"}},
		}, 7)
		if len(got) != len(jobClients)*len(jobMethods)*len(jobTemplates) {
			t.Fatalf("%d entities", len(got))
		}
		for i := 1; i < len(got); i++ {
			p, c := got[i-1], got[i]
			if *p.HTTPMethod > *c.HTTPMethod || (*p.HTTPMethod == *c.HTTPMethod && *p.Status200 < *c.Status200) {
				t.Fatalf("entities %d and %d out of order: %s then %s", i-1, i, mustJSON(p), mustJSON(c))
			}
		}
		// Date descending.
		got = e.mustJobEntities(viewer, jobsPath, map[string]any{
			"interval": "2026-06-10/2026-06-15", "granularity": "Day", "sortBy": []map[string]string{{"fieldName": "Date", "order": "Desc"}},
		}, 0)
		if len(got) != 6 || *got[0].Date != "2026-06-15" || *got[5].Date != "2026-06-10" {
			t.Fatalf("entities %s", mustJSON(got))
		}
	})
	t.Run("EmptyInterval", func(t *testing.T) {
		e := e.on(t)
		// An interval with no usage succeeds with no entities.
		res := e.pollJob(viewer, e.mustStartJob(viewer, jobsPath, map[string]any{"interval": "2026-01-01/2026-01-31"}).ResultsURI)
		if res.QueryStatus != "Succeeded" || res.Entities == nil || len(*res.Entities) != 0 || res.NextURI != "" {
			t.Fatalf("empty job %s", mustJSON(res))
		}
	})
}

func TestJobsClient(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a, b := e.mustOrg("A"), e.mustOrg("B")
	sent := e.mustJobEvents(e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd)), 2000, 3)
	e.mustJobEvents(e.mustToken(e.mustClient(b.ID, 0, usage.PermEventAdd)), 300, 4) // the same client ids, in B
	viewer := e.mustToken(e.mustClient(a.ID, 0, usage.PermClientView))

	key := func(en jobEntityJSON) string {
		if en.OAuthClient != nil || en.User != nil || en.OrganizationID == nil || *en.OrganizationID != a.ID {
			t.Fatalf("entity %s", mustJSON(en))
		}
		return jobPtr(en.Date) + "|" + jobPtr(en.TemplateURI) + "|" + jobPtr(en.Platform)
	}
	want := count(sent, func(ev jobEvent) string {
		if ev.client != "jc-2" {
			return ""
		}
		return ev.at.Format(time.DateOnly) + "|" + ev.template + "|" + ev.platform
	})
	for _, orgs := range [][]string{nil, {a.ID}, {"elsewhere", a.ID}} {
		body := map[string]any{
			"interval": "2026-06-10/2026-06-15", "granularity": "Day", "groupBy": []string{"TemplateUri", "OrganizationId", "platform"},
		}
		if orgs != nil {
			body["organizationIds"] = orgs
		}
		checkJobEntities(t, e.mustJobEntities(viewer, clientJobsPath("jc-2"), body, 50), want, nil, key)
	}
	// Only the caller's organization can be seen: any other matches nothing.
	res := e.pollJob(viewer, e.mustStartJob(viewer, clientJobsPath("jc-2"), map[string]any{
		"interval": "2026-06-10/2026-06-15", "organizationIds": []string{b.ID},
	}).ResultsURI)
	if res.QueryStatus != "Succeeded" || res.Entities == nil || len(*res.Entities) != 0 {
		t.Fatalf("job for another organization %s", mustJSON(res))
	}
	// Without groupBy: the client's totals.
	got := e.mustJobEntities(viewer, clientJobsPath("jc-4"), map[string]any{"interval": "2026-06-10/2026-06-15", "metrics": []string{"Status500"}}, 0)
	checkJobEntities(t, got, count(sent, func(ev jobEvent) string {
		if ev.client != "jc-4" {
			return ""
		}
		return "all"
	}), []string{"Status500"}, func(en jobEntityJSON) string {
		if en.OrganizationID != nil || en.Date != nil {
			t.Fatalf("entity %s", mustJSON(en))
		}
		return "all"
	})

	// A registered client without events is known; an unknown one is not.
	quiet := e.mustClient(a.ID, 0)
	res = e.pollJob(viewer, e.mustStartJob(viewer, clientJobsPath(quiet.ID), map[string]any{"interval": day}).ResultsURI)
	if res.QueryStatus != "Succeeded" || len(*res.Entities) != 0 {
		t.Fatalf("quiet client %s", mustJSON(res))
	}
	wantError(t, e.do("POST", clientJobsPath("jc-9"), viewer, map[string]any{"interval": day}), 404, "not.found", "jc-9")

	// The organization variant's fields are not the client's.
	wantError(t, e.do("POST", clientJobsPath("jc-2"), viewer, map[string]any{"interval": day, "userIds": []string{"u1"}}), 400, "bad.request", "userIds")
	wantError(t, e.do("POST", clientJobsPath("jc-2"), viewer, map[string]any{"interval": day, "oauthClientIds": []string{"jc-1"}}), 400, "bad.request", "oauthClientIds")
	wantError(t, e.do("POST", jobsPath, e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView)),
		map[string]any{"interval": day, "organizationIds": []string{a.ID}}), 400, "bad.request", "organizationIds")
	for _, g := range []string{"UserId", "OauthClientId", "OauthClientName"} {
		eb := wantError(t, e.do("POST", clientJobsPath("jc-2"), viewer, map[string]any{"interval": day, "groupBy": []string{g}}),
			400, "invalid.value", "Allowable values are: OrganizationId, HttpMethod, TemplateUri, Platform")
		if eb.Details[0].FieldName != "groupBy" {
			t.Fatalf("details %+v", eb.Details)
		}
	}
	wantError(t, e.do("POST", clientJobsPath("jc-2"), viewer, map[string]any{"interval": day, "sortBy": []map[string]string{{"fieldName": "UserId"}}}),
		400, "invalid.value", "sortBy.fieldName")
}

func TestJobsAccess(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a, b := e.mustOrg("A"), e.mustOrg("B")
	e.mustJobEvents(e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd)), 200, 5)
	e.mustJobEvents(e.mustToken(e.mustClient(b.ID, 0, usage.PermEventAdd)), 200, 6)
	orgAClient := e.mustClient(a.ID, 0, usage.PermOrganizationView)
	orgA := e.mustToken(orgAClient)
	orgB := e.mustToken(e.mustClient(b.ID, 0, usage.PermOrganizationView))
	cliAClient := e.mustClient(a.ID, 0, usage.PermClientView)
	cliA := e.mustToken(cliAClient)
	cliB := e.mustToken(e.mustClient(b.ID, 0, usage.PermClientView))
	legacy := e.mustToken(e.mustClient(a.ID, 0, usage.PermOAuthClientView))
	body := map[string]any{"interval": day}

	oj := e.mustStartJob(orgA, jobsPath, body)
	cj := e.mustStartJob(cliA, clientJobsPath("jc-1"), body)
	e.pollJob(orgA, oj.ResultsURI)
	e.pollJob(cliA, cj.ResultsURI)

	// Another organization, another variant's route, another client's
	// route, an unknown id: all missing, for reading and for cancelling.
	for _, c := range []struct{ token, path string }{
		{orgB, oj.SelfURI},
		{cliA, clientJobsPath("jc-1") + "/" + oj.ID},
		{orgA, jobsPath + "/" + cj.ID},
		{cliA, clientJobsPath("jc-2") + "/" + cj.ID},
		{cliB, cj.SelfURI},
		{orgA, jobsPath + "/00000000-0000-0000-0000-000000000000"},
	} {
		wantError(t, e.do("GET", c.path, c.token, nil), 404, "not.found", "")
		wantError(t, e.do("DELETE", c.path, c.token, nil), 404, "not.found", "")
	}
	// Organization B knows a client jc-1 of its own, but not A's job.
	wantError(t, e.do("GET", cj.SelfURI, cliB, nil), 404, "not.found", cj.ID)
	// A's client is not B's unless B has seen it too.
	quiet := e.mustClient(a.ID, 0)
	wantError(t, e.do("POST", clientJobsPath(quiet.ID), cliB, body), 404, "not.found", quiet.ID)

	// Permissions: the jobs API takes only its own, not oauth:client:view.
	nobody := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd, usage.PermSimpleSearchView))
	for _, tok := range []string{nobody, legacy} {
		for _, c := range []struct{ method, path, perm string }{
			{"POST", jobsPath, usage.PermOrganizationView},
			{"GET", oj.SelfURI, usage.PermOrganizationView},
			{"DELETE", oj.SelfURI, usage.PermOrganizationView},
			{"POST", clientJobsPath("jc-1"), usage.PermClientView},
			{"GET", cj.SelfURI, usage.PermClientView},
			{"DELETE", cj.SelfURI, usage.PermClientView},
		} {
			eb := wantError(t, e.do(c.method, c.path, tok, body), 403, "missing.any.permissions", c.perm)
			if eb.MessageParams["permissions"] != c.perm {
				t.Fatalf("%s %s: params %v", c.method, c.path, eb.MessageParams)
			}
		}
	}
	wantError(t, e.do("POST", jobsPath, orgA, body, "Authorization", ""), 401, "authentication.required", "")
	wantError(t, e.do("POST", jobsPath, adminToken, body), 403, "not.authorized", "no organization")
	wantError(t, e.do("PUT", oj.SelfURI, orgA, body), 405, "method.not.allowed", "DELETE")

	// Jobs expire with the results TTL.
	e.clk.Advance(25 * time.Hour)
	orgA, cliA = e.mustToken(orgAClient), e.mustToken(cliAClient)
	wantError(t, e.do("GET", oj.SelfURI, orgA, nil), 404, "not.found", oj.ID)
	wantError(t, e.do("GET", cj.SelfURI, cliA, nil), 404, "not.found", cj.ID)
}

func TestJobsErrors(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	e.mustJobEvents(e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd)), 10, 7)
	org := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))
	cliClient := e.mustClient(a.ID, 0, usage.PermClientView)
	cli := e.mustToken(cliClient)
	f := func(path, tok, body string, code, field, inMessage string) {
		t.Helper()
		eb := wantError(t, e.do("POST", path, tok, body), 400, code, inMessage)
		if len(eb.Details) != 1 || eb.Details[0].FieldName != field {
			t.Fatalf("details %+v, want field %s", eb.Details, field)
		}
	}
	// The test clock is 2026-06-15T12:00Z: a start may be as early as
	// 2025-06-15, and an interval may end on the 90th day after its start.
	for _, iv := range []string{"2025-06-15/2025-09-13", "2025-06-15T00:00:00Z/2025-09-13T23:59:59Z", "2026-03-17/P90D", "2026-06-01/2026-08-30", "2026-04/2026-06"} {
		e.mustStartJob(org, jobsPath, map[string]any{"interval": iv})
	}
	for _, p := range []struct{ path, tok string }{{jobsPath, org}, {clientJobsPath(cliClient.ID), cli}} {
		f(p.path, p.tok, `{}`, "constraint.validation", "interval", "interval is required")
		f(p.path, p.tok, `{"interval":"last week"}`, "invalid.date", "interval", "last week")
		f(p.path, p.tok, `{"interval":"2026-02-01/2026-01-01"}`, "invalid.date", "interval", "end must be after start")
		f(p.path, p.tok, `{"interval":"2025-06-14/2025-06-20"}`, "constraint.validation", "interval", "more than a year ago")
		f(p.path, p.tok, `{"interval":"2025-06-14T23:00:00Z/P1D"}`, "constraint.validation", "interval", "more than a year ago")
		f(p.path, p.tok, `{"interval":"2025-06-15/2025-09-14"}`, "constraint.validation", "interval", "more than 90 days after its start")
		f(p.path, p.tok, `{"interval":"2026-03-01T00:00:00Z/2026-06-01T00:00:00Z"}`, "constraint.validation", "interval", "more than 90 days")
		f(p.path, p.tok, `{"interval":"2026-06-01/P91DT1H"}`, "constraint.validation", "interval", "more than 90 days")
		// An inclusive date-time end on the 91st day's midnight includes an hour of it.
		f(p.path, p.tok, `{"interval":"2025-06-15T00:00:00Z/2025-09-14T00:00:00Z"}`, "constraint.validation", "interval", "the last day is 2025-09-13")
		f(p.path, p.tok, `{"interval":"`+day+`","granularity":"Hour"}`, "invalid.value", "granularity",
			"Value [Hour] is not valid for field type [granularity]. Allowable values are: Day, Week, Month")
		f(p.path, p.tok, `{"interval":"`+day+`","metrics":["Requests","Status600"]}`, "invalid.value", "metrics",
			"Allowable values are: Requests, Status200, Status300, Status400, Status429, Status500")
		f(p.path, p.tok, `{"interval":"`+day+`","httpMethods":["TRACE"]}`, "invalid.value", "httpMethods", "Allowable values are: GET, POST, PUT, PATCH, DELETE, HEAD")
		f(p.path, p.tok, `{"interval":"`+day+`","groupBy":["Colour"]}`, "invalid.value", "groupBy", "Value [Colour]")
		f(p.path, p.tok, `{"interval":"`+day+`","sortBy":[{"fieldName":"Colour"}]}`, "invalid.value", "sortBy.fieldName", "Value [Colour]")
		f(p.path, p.tok, `{"interval":"`+day+`","sortBy":[{"fieldName":"Requests","order":"Sideways"}]}`, "invalid.value", "sortBy.order", "Allowable values are: Asc, Desc")
		f(p.path, p.tok, `{"interval":"`+day+`","sortBy":[{"order":"Asc"}]}`, "constraint.validation", "sortBy.fieldName", "sortBy.fieldName is required")
		f(p.path, p.tok, `{"interval":"`+day+`","sortBy":[{"fieldName":"Requests","direction":"Asc"}]}`, "bad.request", "direction", "unknown field")
		f(p.path, p.tok, `{"interval":"`+day+`","name":"mine"}`, "bad.request", "name", "unknown field")
		f(p.path, p.tok, `{"interval":"`+day+`","metrics":"Requests"}`, "bad.request", "metrics", "must be of type array")
		f(p.path, p.tok, `not json`, "bad.request", "body", "not valid JSON")
	}
	f(jobsPath, org, `{"interval":"`+day+`","groupBy":["OrganizationId"]}`, "invalid.value", "groupBy",
		"Allowable values are: OauthClientName, OauthClientId, UserId, HttpMethod, TemplateUri, Platform")
	f(jobsPath, org, `{"interval":"`+day+`","sortBy":[{"fieldName":"OrganizationId"}]}`, "invalid.value", "sortBy.fieldName",
		"Allowable values are: Date, Requests, Status200, Status300, Status400, Status429, Status500, OauthClientName, OauthClientId, UserId, HttpMethod, TemplateUri, Platform")
	wantError(t, e.do("POST", jobsPath, org, `{"interval":"`+day+`"}`, "Content-Type", "text/plain"), 415, "unsupported.media.type", "text/plain")
}

// gatedJobEvents holds every query until gate is closed, and fails queries
// with fail when it is set.
type gatedJobEvents struct {
	store.EventQuerier
	gate chan struct{}
	fail atomic.Pointer[usage.Error]
}

func (g *gatedJobEvents) Query(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := g.fail.Load(); err != nil {
		return nil, err
	}
	return g.EventQuerier.Query(ctx, q)
}

// mustGatedJobEnv is MustEnv with one query worker over g, and POSTs that do
// not wait for their job.
func mustGatedJobEnv(t *testing.T, g *gatedJobEvents) *env {
	t.Helper()
	return MustEnv(t, func(c *server.Config) {
		c.Hooks.Query = func(qc *query.Config) {
			g.EventQuerier = qc.Events
			qc.Events, qc.Workers = g, 1
		}
		c.Hooks.Genesys = func(gc *genesys.Config) { gc.SubmitWait = -1 }
	})
}

// waitJobStatus reads uri until its job has status.
func (e *env) waitJobStatus(token, uri, status string) jobResultsJSON {
	e.t.Helper()
	var res jobResultsJSON
	for range 500 {
		res = decodeJobStrict[jobResultsJSON](e.t, e.do("GET", uri, token, nil), 200)
		if res.QueryStatus == status {
			return res
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("%s: status %s, want %s", uri, res.QueryStatus, status)
	return res
}

func TestJobsCancel(t *testing.T) {
	t.Parallel()
	g := &gatedJobEvents{gate: make(chan struct{})}
	e := mustGatedJobEnv(t, g)
	a := e.mustOrg("A")
	sent := e.mustJobEvents(e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd)), 500, 8)
	org := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))
	cli := e.mustToken(e.mustClient(a.ID, 0, usage.PermClientView))
	body := map[string]any{"interval": "2026-06-10/2026-06-15", "groupBy": []string{"OauthClientId"}}

	// The one worker holds the first job; the second waits behind it.
	running := e.mustStartJob(org, jobsPath, body)
	e.waitJobStatus(org, running.ResultsURI, "Running")
	queued := e.mustStartJob(cli, clientJobsPath("jc-1"), map[string]any{"interval": "2026-06-10/2026-06-15", "groupBy": []string{"HttpMethod"}})
	e.waitJobStatus(cli, queued.ResultsURI, "Queued")

	decode[json.RawMessage](t, e.do("DELETE", queued.SelfURI, cli, nil), 204)
	decode[json.RawMessage](t, e.do("DELETE", running.SelfURI, org, nil), 204)
	for _, c := range []struct{ tok, uri string }{{cli, queued.ResultsURI}, {org, running.ResultsURI}} {
		res := decodeJobStrict[jobResultsJSON](t, e.do("GET", c.uri, c.tok, nil), 200)
		if res.QueryStatus != "Cancelled" || res.Entities != nil || res.ErrorBody != nil || res.NextURI != "" {
			t.Fatalf("cancelled job %s", mustJSON(res))
		}
		// Cancelling again changes nothing.
		decode[json.RawMessage](t, e.do("DELETE", c.uri, c.tok, nil), 204)
	}

	// A job cancelled after it succeeded stays Succeeded, its entities
	// readable.
	close(g.gate)
	done := e.mustStartJob(org, jobsPath, body)
	e.waitJobStatus(org, done.ResultsURI, "Succeeded")
	decode[json.RawMessage](t, e.do("DELETE", done.SelfURI, org, nil), 204)
	res := decodeJobStrict[jobResultsJSON](t, e.do("GET", done.ResultsURI, org, nil), 200)
	if res.QueryStatus != "Succeeded" || res.Entities == nil {
		t.Fatalf("job after DELETE %s", mustJSON(res))
	}
	checkJobEntities(t, *res.Entities, count(sent, func(ev jobEvent) string { return ev.client }), nil, jobClientOf)

	// A failed job says why in errorBody.
	g.fail.Store(usage.Errorf(usage.KindInvalid, "groupBy", "the job has more groups than the limit"))
	failed := e.mustStartJob(org, jobsPath, body)
	res = e.waitJobStatus(org, failed.ResultsURI, "Failed")
	if res.ErrorBody == nil || res.ErrorBody.Status != 400 || res.ErrorBody.Code != "bad.request" ||
		!strings.Contains(res.ErrorBody.Message, "more groups than the limit") || res.Entities != nil {
		t.Fatalf("failed job %s", mustJSON(res))
	}
	decode[json.RawMessage](t, e.do("DELETE", failed.SelfURI, org, nil), 204)
	e.waitJobStatus(org, failed.ResultsURI, "Failed")
}

func jobMust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
