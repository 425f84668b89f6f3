package genesyssdk

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mypurecloud/platform-client-sdk-go/v152/platformclientv2"
)

// Polling of asynchronous executions: usaged answers in milliseconds, so
// the tests poll far faster than the minutes Genesys advises, backing off to
// stay well inside the per-token rate limit if an execution takes long.
const (
	pollFirst = 50 * time.Millisecond
	pollMax   = time.Second
	pollFor   = 30 * time.Second
)

const (
	numEvents = 5000
	batchSize = 500
)

// Event clients besides the registered ingest client: ids as Genesys uses
// them, fixed so that a failure reads the same on every run.
var eventClients = []apiClient{
	{"5f0c2a8e-1b7d-4c39-9a51-3e6f0d2b7c01", "CRM Connector"},
	{"9b14d7e2-6a3c-4f88-b0d5-72c1e9a4f302", "Wallboard"},
	{"c3a8f5d1-0e29-4b7a-8c64-1d9e2f7a6b03", "Billing Sync"},
	{"e7d2b9c4-5f16-4a03-9e8b-4c7a1f0d2e04", "Data Export"},
}

// TestGenesysSDK drives every Genesys usage operation through the official
// Go SDK against a real usaged and compares each answer with counts of the
// events the test sent.
func TestGenesysSDK(t *testing.T) {
	srv := startUsaged(t)

	org := srv.createOrganization(t, "SDK Compat")
	viewer := srv.createClient(t, org, "sdk viewer",
		"usage:organization:view", "usage:client:view", "usage:simpleSearch:view", "oauth:client:view")
	ingester := srv.createClient(t, org, "sdk ingest", "usage:event:add")
	nobody := srv.createClient(t, org, "sdk nobody", "usage:event:add")
	otherOrg := srv.createOrganization(t, "SDK Compat Other")
	otherViewer := srv.createClient(t, otherOrg, "other viewer", "usage:organization:view", "usage:client:view")

	// The SDK logs in; its token then sends the events, which the SDK has
	// no operation for.
	ingestCfg := login(t, srv.base, ingester)
	if ingestCfg.AccessTokenExpiresIn <= 60 {
		t.Fatalf("expires_in is %d: the SDK refreshes tokens at expires_in-60, so it must be over 60", ingestCfg.AccessTokenExpiresIn)
	}

	// Five UTC days of traffic ending today, or yesterday in the first
	// minutes of a day, and never in the future.
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	lastDay := today
	if now.Sub(today) < 10*time.Minute {
		lastDay = today.AddDate(0, 0, -1)
	}
	clients := append([]apiClient{{ingester.ID, ingester.Name}}, eventClients...)
	tr := generate(1, numEvents, lastDay, now.Add(-time.Minute), clients, "req", "")
	for i := 0; i < len(tr.wire); i += batchSize {
		batch := tr.wire[i:min(i+batchSize, len(tr.wire))]
		res := srv.postEvents(t, ingestCfg.AccessToken, batch)
		if res.Accepted != len(batch) || res.Duplicates != 0 || res.Rejected != 0 {
			t.Fatalf("batch at %d: %+v, want all %d accepted; errors: %s", i, res, len(batch), res.Errors)
		}
	}
	// A batch sent again counts nothing again.
	if res := srv.postEvents(t, ingestCfg.AccessToken, tr.wire[:batchSize]); res.Accepted != 0 || res.Duplicates != batchSize {
		t.Fatalf("the first batch sent again: %+v, want all %d duplicates", res, batchSize)
	}
	// The other organization's events share ids and a client id with this
	// organization's, under another client name; none of them may show.
	otherOnly := apiClient{"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "Other Org Only"}
	otherTr := generate(2, 60, lastDay, now.Add(-time.Minute),
		[]apiClient{{eventClients[0].id, "Other Org CRM"}, otherOnly}, "req", otherOrg)
	if res := srv.postEvents(t, srv.adminToken, otherTr.wire); res.Accepted != len(otherTr.wire) {
		t.Fatalf("other organization's events: %+v, want all %d accepted; errors: %s", res, len(otherTr.wire), res.Errors)
	}

	names := map[string]string{}
	for _, c := range clients {
		names[c.id] = c.name
	}
	ids := map[string]string{}
	for _, c := range clients {
		ids[c.name] = c.id
	}
	first, _ := time.Parse(time.DateOnly, tr.days[0])
	last, _ := time.Parse(time.DateOnly, tr.days[len(tr.days)-1])
	// The date-time form is end-exclusive; the date form includes its end day.
	fullInterval := first.Format(time.RFC3339) + "/" + last.AddDate(0, 0, 1).Format(time.RFC3339)
	dateInterval := tr.days[0] + "/" + tr.days[len(tr.days)-1]
	midInterval := tr.days[1] + "/" + tr.days[3]
	midDays := func(e event) bool { return e.day >= tr.days[1] && e.day <= tr.days[3] }

	api := platformclientv2.NewUsageApiWithConfig(login(t, srv.base, viewer))

	t.Run("login", func(t *testing.T) {
		cfg := newConfig(t, srv.base)
		err := cfg.AuthorizeClientCredentials(viewer.ID, "not-the-secret")
		if err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Fatalf("login with a wrong secret: %v, want an invalid_client error", err)
		}
		cfg.AccessToken = "not-a-token"
		_, resp, err := platformclientv2.NewUsageApiWithConfig(cfg).PostUsageQuery(
			platformclientv2.Apiusageorganizationquery{Interval: &fullInterval})
		wantError(t, "PostUsageQuery with a bad token", resp, err, http.StatusUnauthorized, "bad.credentials")
	})

	t.Run("query by day, client, template and method", func(t *testing.T) {
		exec, resp, err := api.PostUsageQuery(platformclientv2.Apiusageorganizationquery{
			Interval:    &fullInterval,
			Granularity: platformclientv2.String("Day"),
			GroupBy:     &[]string{"OAuthClientId", "TemplateUri", "HttpMethod"},
		})
		id := started(t, "PostUsageQuery", exec, resp, err, "/api/v2/usage/query/")
		res := await(t, "GetUsageQueryExecutionIdResults", func() (*platformclientv2.Apiusagequeryresult, *platformclientv2.APIResponse, error) {
			return api.GetUsageQueryExecutionIdResults(id)
		})
		type key struct{ Day, ClientID, TemplateURI, HTTPMethod string }
		rows := newRowSet[key](t, "query by day, client, template and method")
		for _, row := range results(res) {
			k := key{rows.day(row), str(row.ClientId), str(row.TemplateUri), str(row.HttpMethod)}
			rows.template(k.TemplateURI)
			if n := str(row.ClientName); n != "" && n != names[k.ClientID] {
				rows.problemf("row %+v: clientName %q, want %q", k, n, names[k.ClientID])
			}
			rows.notGrouped(k, row, "userId", "organizationId")
			rows.add(k, row)
		}
		rows.check(tally(tr.events, nil, func(e event) key { return key{e.day, e.clientID, e.template, e.method} }))
	})

	t.Run("query per client over a date interval", func(t *testing.T) {
		exec, resp, err := api.PostUsageQuery(platformclientv2.Apiusageorganizationquery{Interval: &dateInterval})
		id := started(t, "PostUsageQuery", exec, resp, err, "/api/v2/usage/query/")
		res := await(t, "GetUsageQueryExecutionIdResults", func() (*platformclientv2.Apiusagequeryresult, *platformclientv2.APIResponse, error) {
			return api.GetUsageQueryExecutionIdResults(id)
		})
		rows := newRowSet[string](t, "query per client")
		for _, row := range results(res) {
			k := str(row.ClientId)
			if n := str(row.ClientName); n != names[k] {
				rows.problemf("row of client %q: clientName %q, want %q", k, n, names[k])
			}
			if row.Date != nil {
				rows.problemf("row of client %q has date %v without a granularity", k, row.Date)
			}
			rows.notGrouped(k, row, "templateUri", "httpMethod", "userId", "organizationId")
			rows.add(k, row)
		}
		rows.check(tally(tr.events, nil, func(e event) string { return e.clientID }))
	})

	t.Run("query of some metrics", func(t *testing.T) {
		exec, resp, err := api.PostUsageQuery(platformclientv2.Apiusageorganizationquery{
			Interval:    &midInterval,
			Granularity: platformclientv2.String("Day"),
			Metrics:     &[]string{"Requests", "Status429"},
			GroupBy:     &[]string{"HttpMethod"},
		})
		id := started(t, "PostUsageQuery", exec, resp, err, "/api/v2/usage/query/")
		res := await(t, "GetUsageQueryExecutionIdResults", func() (*platformclientv2.Apiusagequeryresult, *platformclientv2.APIResponse, error) {
			return api.GetUsageQueryExecutionIdResults(id)
		})
		type key struct{ Day, HTTPMethod string }
		rows := newRowSet[key](t, "query of requests and status429 by day and method")
		for _, row := range results(res) {
			k := key{rows.day(row), str(row.HttpMethod)}
			rows.notGrouped(k, row, "clientId", "templateUri", "userId", "organizationId")
			rows.add(k, row)
		}
		want := tally(tr.events, midDays, func(e event) key { return key{e.day, e.method} })
		for k, c := range want {
			// Metrics not asked for are reported as zero.
			want[k] = counts{Requests: c.Requests, Status429: c.Status429}
		}
		rows.check(want)
	})

	t.Run("simplesearch paged", func(t *testing.T) {
		type key struct{ Day, ClientName, HTTPMethod, TemplateURI string }
		want := tally(tr.events, nil, func(e event) key { return key{e.day, e.clientName, e.method, e.template} })
		const pageSize = 100
		if len(want) < 3*pageSize {
			t.Fatalf("the traffic makes %d simplesearch records: too few to page through", len(want))
		}
		exec, resp, err := api.PostUsageSimplesearch(platformclientv2.Apiusagesimplesearch{Interval: &fullInterval})
		id := started(t, "PostUsageSimplesearch", exec, resp, err, "/api/v2/usage/simplesearch/")
		rows := newRowSet[key](t, "simplesearch")
		pages := readPages(t, api, id, pageSize, func(row platformclientv2.Apiusagerow) {
			k := key{rows.day(row), str(row.ClientName), str(row.HttpMethod), str(row.TemplateUri)}
			rows.template(k.TemplateURI)
			if c := str(row.ClientId); c != "" && c != ids[k.ClientName] {
				rows.problemf("record %+v: clientId %q, want %q", k, c, ids[k.ClientName])
			}
			rows.add(k, row)
		})
		if pages < 2 {
			t.Errorf("%d records came in %d page(s) of at most %d", len(rows.got), pages, pageSize)
		}
		rows.check(want)
	})

	t.Run("simplesearch filtered", func(t *testing.T) {
		filterNames := []string{eventClients[0].name, ingester.Name}
		filterMethods := []string{"GET", "DELETE"}
		filterTemplates := []string{templates[0], strings.TrimPrefix(templates[1], "/"), strings.TrimPrefix(templates[6], "/")}
		keep := func(e event) bool {
			return slices.Contains(filterNames, e.clientName) && slices.Contains(filterMethods, e.method) &&
				slices.Contains(filterTemplates, e.template)
		}
		type key struct{ Day, ClientName, HTTPMethod, TemplateURI string }
		want := tally(tr.events, keep, func(e event) key { return key{e.day, e.clientName, e.method, e.template} })
		if len(want) == 0 {
			t.Fatal("the traffic has no events the filters select")
		}
		exec, resp, err := api.PostUsageSimplesearch(platformclientv2.Apiusagesimplesearch{
			Interval:         &dateInterval,
			Metrics:          &[]string{"Date", "ClientName", "HttpMethod", "TemplateUri", "Status200", "Status300", "Status400", "Status500", "Status429"},
			OauthClientNames: &filterNames,
			HttpMethods:      &filterMethods,
			TemplateUris:     &filterTemplates,
		})
		id := started(t, "PostUsageSimplesearch", exec, resp, err, "/api/v2/usage/simplesearch/")
		rows := newRowSet[key](t, "filtered simplesearch")
		// Page size 0 asks for the default page size.
		readPages(t, api, id, 0, func(row platformclientv2.Apiusagerow) {
			rows.add(key{rows.day(row), str(row.ClientName), str(row.HttpMethod), str(row.TemplateUri)}, row)
		})
		rows.check(want)
	})

	t.Run("client query", func(t *testing.T) {
		for _, tc := range []struct {
			client   apiClient
			interval string
			keep     func(event) bool
		}{
			{eventClients[0], midInterval, midDays},
			{apiClient{ingester.ID, ingester.Name}, fullInterval, nil},
		} {
			exec, resp, err := api.PostOauthClientUsageQuery(tc.client.id, platformclientv2.Apiusageclientquery{
				Interval:    &tc.interval,
				Granularity: platformclientv2.String("Day"),
				GroupBy:     &[]string{"TemplateUri"},
			})
			id := started(t, "PostOauthClientUsageQuery", exec, resp, err, "/api/v2/oauth/clients/"+tc.client.id+"/usage/query/results/")
			res := await(t, "GetOauthClientUsageQueryResult", func() (*platformclientv2.Apiusagequeryresult, *platformclientv2.APIResponse, error) {
				return api.GetOauthClientUsageQueryResult(id, tc.client.id)
			})
			type key struct{ Day, TemplateURI string }
			rows := newRowSet[key](t, fmt.Sprintf("client query of %s over %s by day and template", tc.client.name, tc.interval))
			for _, row := range results(res) {
				k := key{rows.day(row), str(row.TemplateUri)}
				rows.template(k.TemplateURI)
				if c := str(row.ClientId); c != "" && c != tc.client.id {
					rows.problemf("client query of %s: row %+v of client %q", tc.client.id, k, c)
				}
				rows.notGrouped(k, row, "httpMethod", "userId", "organizationId")
				rows.add(k, row)
			}
			rows.check(tally(tr.events, func(e event) bool {
				return e.clientID == tc.client.id && (tc.keep == nil || tc.keep(e))
			}, func(e event) key { return key{e.day, e.template} }))

			// An execution is read only through the operation that started it.
			_, resp, err = api.GetUsageQueryExecutionIdResults(id)
			wantError(t, "a client query read as an organization query", resp, err, http.StatusNotFound, "not.found")
		}
	})

	t.Run("client summary", func(t *testing.T) {
		c := eventClients[1]
		today := time.Now().UTC().Truncate(24 * time.Hour)
		exec, resp, err := api.GetOauthClientUsageSummary(c.id, "7")
		id := started(t, "GetOauthClientUsageSummary", exec, resp, err, "/api/v2/oauth/clients/"+c.id+"/usage/query/results/")
		res := await(t, "GetOauthClientUsageQueryResult of the summary", func() (*platformclientv2.Apiusagequeryresult, *platformclientv2.APIResponse, error) {
			return api.GetOauthClientUsageQueryResult(id, c.id)
		})
		if !time.Now().UTC().Truncate(24 * time.Hour).Equal(today) {
			t.Skip("the UTC day changed while the summary ran, so which 7 days it covers is not known")
		}
		window := map[string]bool{}
		for d := range 7 {
			window[today.AddDate(0, 0, -d).Format(time.DateOnly)] = true
		}
		rows := newRowSet[string](t, "7-day summary of "+c.name)
		for _, row := range results(res) {
			day := rows.day(row)
			if !window[day] {
				rows.problemf("summary row of %s is outside the 7 days ending %s", day, today.Format(time.DateOnly))
			}
			if cid := str(row.ClientId); cid != "" && cid != c.id {
				rows.problemf("summary of %s: row of %s for client %q", c.id, day, cid)
			}
			rows.add(day, row)
		}
		want := tally(tr.events, func(e event) bool { return e.clientID == c.id && window[e.day] },
			func(e event) string { return e.day })
		// A day without events may be reported with zeros or not at all.
		for day, got := range rows.got {
			if _, ok := want[day]; !ok && got.zero() {
				delete(rows.got, day)
			}
		}
		rows.check(want)

		exec, resp, err = api.GetOauthClientUsageSummary(c.id, "")
		started(t, "GetOauthClientUsageSummary with the default days", exec, resp, err, "/api/v2/oauth/clients/"+c.id+"/usage/query/results/")
		for _, days := range []string{"0", "400"} {
			_, resp, err := api.GetOauthClientUsageSummary(c.id, days)
			wantError(t, "GetOauthClientUsageSummary with days "+days, resp, err, http.StatusBadRequest, "invalid.query.param.value")
		}
	})

	t.Run("errors", func(t *testing.T) {
		nobodyAPI := platformclientv2.NewUsageApiWithConfig(login(t, srv.base, nobody))
		_, resp, err := nobodyAPI.PostUsageQuery(platformclientv2.Apiusageorganizationquery{Interval: &fullInterval})
		wantError(t, "PostUsageQuery without a view permission", resp, err, http.StatusForbidden, "missing.any.permissions")
		_, resp, err = nobodyAPI.PostUsageSimplesearch(platformclientv2.Apiusagesimplesearch{Interval: &fullInterval})
		wantError(t, "PostUsageSimplesearch without a view permission", resp, err, http.StatusForbidden, "missing.any.permissions")
		_, resp, err = nobodyAPI.GetOauthClientUsageSummary(ingester.ID, "7")
		wantError(t, "GetOauthClientUsageSummary without a view permission", resp, err, http.StatusForbidden, "missing.any.permissions")

		_, resp, err = api.GetUsageQueryExecutionIdResults(randomUUID())
		wantError(t, "GetUsageQueryExecutionIdResults of an unknown execution", resp, err, http.StatusNotFound, "not.found")
		_, resp, err = api.GetUsageSimplesearchExecutionIdResults(randomUUID(), "", 0)
		wantError(t, "GetUsageSimplesearchExecutionIdResults of an unknown execution", resp, err, http.StatusNotFound, "not.found")
		_, resp, err = api.GetOauthClientUsageQueryResult(randomUUID(), ingester.ID)
		wantError(t, "GetOauthClientUsageQueryResult of an unknown execution", resp, err, http.StatusNotFound, "not.found")

		body := platformclientv2.Apiusageclientquery{Interval: &fullInterval, Granularity: platformclientv2.String("Day")}
		_, resp, err = api.PostOauthClientUsageQuery(randomUUID(), body)
		wantError(t, "PostOauthClientUsageQuery of a client never seen", resp, err, http.StatusNotFound, "not.found")
		_, resp, err = api.PostOauthClientUsageQuery(otherOnly.id, body)
		wantError(t, "PostOauthClientUsageQuery of a client of another organization", resp, err, http.StatusNotFound, "not.found")
		_, resp, err = api.GetOauthClientUsageSummary(otherOnly.id, "7")
		wantError(t, "GetOauthClientUsageSummary of a client of another organization", resp, err, http.StatusNotFound, "not.found")

		_, resp, err = api.PostUsageQuery(platformclientv2.Apiusageorganizationquery{Granularity: platformclientv2.String("Day")})
		wantError(t, "PostUsageQuery without an interval", resp, err, http.StatusBadRequest, "constraint.validation")
		_, resp, err = api.PostUsageSimplesearch(platformclientv2.Apiusagesimplesearch{})
		wantError(t, "PostUsageSimplesearch without an interval", resp, err, http.StatusBadRequest, "constraint.validation")
		_, resp, err = api.PostOauthClientUsageQuery(ingester.ID, platformclientv2.Apiusageclientquery{})
		wantError(t, "PostOauthClientUsageQuery without an interval", resp, err, http.StatusBadRequest, "constraint.validation")
		_, resp, err = api.PostUsageQuery(platformclientv2.Apiusageorganizationquery{Interval: platformclientv2.String("last week")})
		wantError(t, "PostUsageQuery with a malformed interval", resp, err, http.StatusBadRequest, "invalid.date")
		_, resp, err = api.PostUsageQuery(platformclientv2.Apiusageorganizationquery{Interval: &fullInterval, Granularity: platformclientv2.String("Fortnight")})
		wantError(t, "PostUsageQuery with an unknown granularity", resp, err, http.StatusBadRequest, "invalid.value")
	})

	t.Run("organizations are isolated", func(t *testing.T) {
		otherAPI := platformclientv2.NewUsageApiWithConfig(login(t, srv.base, otherViewer))
		exec, resp, err := otherAPI.PostUsageQuery(platformclientv2.Apiusageorganizationquery{Interval: &fullInterval})
		id := started(t, "PostUsageQuery of the other organization", exec, resp, err, "/api/v2/usage/query/")
		res := await(t, "GetUsageQueryExecutionIdResults of the other organization", func() (*platformclientv2.Apiusagequeryresult, *platformclientv2.APIResponse, error) {
			return otherAPI.GetUsageQueryExecutionIdResults(id)
		})
		otherNames := map[string]string{eventClients[0].id: "Other Org CRM", otherOnly.id: otherOnly.name}
		rows := newRowSet[string](t, "the other organization's query per client")
		for _, row := range results(res) {
			k := str(row.ClientId)
			if n := str(row.ClientName); n != otherNames[k] {
				rows.problemf("other organization's row of client %q: clientName %q, want %q", k, n, otherNames[k])
			}
			rows.add(k, row)
		}
		rows.check(tally(otherTr.events, nil, func(e event) string { return e.clientID }))

		_, resp, err = api.GetUsageQueryExecutionIdResults(id)
		wantError(t, "another organization's execution", resp, err, http.StatusNotFound, "not.found")
	})
}

// newConfig returns an SDK configuration for the server at base. The
// configuration file does not exist: the SDK then neither reads the user's
// $HOME/.genesyscloudgo/config nor watches it.
func newConfig(t *testing.T, base string) *platformclientv2.Configuration {
	t.Helper()
	cfg := platformclientv2.NewConfigurationWithConfigFile(filepath.Join(t.TempDir(), "genesyscloudgo.ini"), false)
	cfg.BasePath = base
	return cfg
}

// login returns an SDK configuration logged in with c's client credentials.
func login(t *testing.T, base string, c oauthClient) *platformclientv2.Configuration {
	t.Helper()
	cfg := newConfig(t, base)
	if err := cfg.AuthorizeClientCredentials(c.ID, c.Secret); err != nil {
		t.Fatalf("SDK login of client %q: %v", c.Name, err)
	}
	return cfg
}

// started checks the answer to an operation that starts an execution and
// returns the execution id. Its results URI must start with resultsPrefix
// and name the execution.
func started(t *testing.T, what string, exec *platformclientv2.Usageexecutionresult, resp *platformclientv2.APIResponse, err error, resultsPrefix string) string {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %s", what, describe(resp, err))
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%s: status %d, want 200 or 202", what, resp.StatusCode)
	}
	id, uri := str(exec.ExecutionId), str(exec.ResultsUri)
	if id == "" || !strings.HasPrefix(uri, resultsPrefix) || !strings.Contains(uri, id) {
		t.Fatalf("%s: executionId %q, resultsUri %q: want an id and a results URI under %s naming it", what, id, uri, resultsPrefix)
	}
	return id
}

// await polls an execution until it is no longer running and requires it
// to be complete.
func await(t *testing.T, what string, get func() (*platformclientv2.Apiusagequeryresult, *platformclientv2.APIResponse, error)) *platformclientv2.Apiusagequeryresult {
	t.Helper()
	deadline := time.Now().Add(pollFor)
	wait := pollFirst
	for {
		res, resp, err := get()
		if err != nil {
			t.Fatalf("%s: %s", what, describe(resp, err))
		}
		status := ""
		if res != nil {
			status = str(res.QueryStatus)
		}
		switch status {
		case "Complete":
			return res
		case "Running":
			if time.Now().After(deadline) {
				t.Fatalf("%s: still running after %v", what, pollFor)
			}
			time.Sleep(wait)
			wait = min(2*wait, pollMax)
		default:
			t.Fatalf("%s: queryStatus %q, want Complete; body: %s", what, status, resp.RawBody)
		}
	}
}

// readPages reads every page of a simplesearch execution, following the
// after cursor until it is absent, and hands each record to each. It
// returns the number of pages.
func readPages(t *testing.T, api *platformclientv2.UsageApi, id string, pageSize int, each func(platformclientv2.Apiusagerow)) int {
	t.Helper()
	limit := pageSize
	if limit == 0 {
		limit = 1000 // the documented maximum: 0 asks for a default no larger
	}
	after := ""
	for page := 1; ; page++ {
		if page > 1000 {
			t.Fatal("simplesearch: over 1000 pages; the cursors do not end")
		}
		res := await(t, fmt.Sprintf("GetUsageSimplesearchExecutionIdResults page %d (after %q)", page, after),
			func() (*platformclientv2.Apiusagequeryresult, *platformclientv2.APIResponse, error) {
				return api.GetUsageSimplesearchExecutionIdResults(id, after, pageSize)
			})
		rows := results(res)
		if len(rows) > limit {
			t.Errorf("simplesearch page %d has %d records, over the page size %d", page, len(rows), limit)
		}
		for _, row := range rows {
			each(row)
		}
		next := ""
		if res.Cursors != nil {
			next = str(res.Cursors.After)
		}
		if next == "" {
			return page
		}
		if len(rows) == 0 {
			t.Fatalf("simplesearch page %d is empty but has a cursor to more", page)
		}
		if next == after {
			t.Fatalf("simplesearch page %d points back to itself (after %q)", page, after)
		}
		after = next
	}
}

// wantError checks that an SDK call failed with status and, unless empty,
// the ErrorBody code, and that the error carries its correlation id.
func wantError(t *testing.T, what string, resp *platformclientv2.APIResponse, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded with status %d, want %d %s", what, resp.StatusCode, status, code)
		return
	}
	if resp == nil {
		t.Errorf("%s: %v, want an API error %d %s", what, err, status, code)
		return
	}
	if resp.StatusCode != status {
		t.Errorf("%s: %s; want status %d", what, describe(resp, err), status)
		return
	}
	if resp.Error == nil {
		t.Errorf("%s: %s; the SDK found no error body", what, describe(resp, err))
		return
	}
	if code != "" && resp.Error.Code != code {
		t.Errorf("%s: code %q, want %q; body: %s", what, resp.Error.Code, code, resp.RawBody)
	}
	if resp.Error.ContextID == "" || resp.Error.ContextID != resp.CorrelationID {
		t.Errorf("%s: contextId %q and ININ-Correlation-Id %q, want the same id in both", what, resp.Error.ContextID, resp.CorrelationID)
	}
}

// describe explains a failed SDK call.
func describe(resp *platformclientv2.APIResponse, err error) string {
	if resp == nil {
		return err.Error()
	}
	return fmt.Sprintf("status %d: %v; body: %s", resp.StatusCode, err, resp.RawBody)
}

func results(res *platformclientv2.Apiusagequeryresult) []platformclientv2.Apiusagerow {
	if res == nil || res.Results == nil {
		return nil
	}
	return *res.Results
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
