package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/ccc/dto"
	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/internal/servertest"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/store/storetest"
	"github.com/usaged/usaged/usage"
)

const parityAdmin = "parity-admin-token-0123456789"

// createdOn is when a node registered the service, which differs by a moment.
var createdOn = regexp.MustCompile(`"createdOn":"[^"]*"`)

// parityNode is a server, the organization and the service the test made
// on it, and a token of the organization's viewer.
type parityNode struct {
	name, url, org string
	viewer         string // the id of an OAuth client of org, which sends events of its own too
	token          string // the viewer's access token
}

// A node on the cluster answers as a node on the embedded store: the same
// events and service activity sent to both give the same Genesys usage
// queries, simple search, aggregates jobs and aggregates, and the same
// service-usage reports, byte for byte once the organization's id (which
// each node drew) and when each registered the service are set aside. The embedded store's answers are checked
// against oracles elsewhere; this checks that the cluster's faces add
// nothing and lose nothing.
func TestClusterAnswersAsTheEmbeddedStore(t *testing.T) {
	ctx := t.Context()
	admin := func(c *server.Config) { c.Auth.AdminToken = parityAdmin }
	nodes := []*parityNode{
		{name: "embedded", url: servertest.Start(t, admin).URL()},
		{name: "cluster", url: servertest.Start(t, admin, servertest.Cluster(t)).URL()},
	}

	// The events: 2,000 over the last 9 days across 5 clients, 4 users, 3
	// templates, 2 methods and 5 statuses; every seventh sent twice. The
	// clients' ids sort after any UUID, so that rows sort the same on both
	// nodes although their viewers' ids differ.
	now := time.Now().UTC()
	start := now.Truncate(time.Hour).Add(-9 * 24 * time.Hour)
	var events []usage.Event
	for i := range 2000 {
		ev := usage.Event{ID: fmt.Sprintf("ev-%d", i), Time: start.Add(time.Duration(i) * 6 * time.Minute),
			ClientID: fmt.Sprintf("x-client-%d", i%5), ClientName: fmt.Sprintf("Client %d", i%5), UserID: fmt.Sprintf("user-%d", i%4),
			TemplateURI: []string{"api/v2/items", "api/v2/items/{id}", "api/v2/users/{id}"}[i%3], HTTPMethod: []string{"GET", "POST"}[i%2],
			Status: []int{200, 201, 302, 404, 429, 503}[i%6]}
		if !ev.Time.Before(now) {
			break
		}
		events = append(events, ev)
		if i%7 == 0 {
			events = append(events, ev)
		}
	}
	// The activity of one service: the generator's first service, its 20
	// days ending yesterday.
	ag := storetest.NewActivityGen(7)
	ag.Start, ag.Days, ag.Quiet = now.Truncate(24*time.Hour).AddDate(0, 0, -20), 20, 5
	ag.Repeat = 0
	service := ag.Casts[0].GUID
	acts := ag.Batch(0, 600)

	for _, n := range nodes {
		c, err := client.New(client.Config{Server: n.url, Token: parityAdmin})
		if err != nil {
			t.Fatal(err)
		}
		org, err := c.CreateOrganization(ctx, "parity")
		if err != nil {
			t.Fatal(err)
		}
		n.org = org.ID
		viewer, err := c.CreateClient(ctx, org.ID, wire.CreateClientRequest{Name: "viewer",
			Permissions: []string{string(usage.PermOrganizationView), string(usage.PermSimpleSearchView), string(usage.PermClientView)}})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.AccessToken(ctx, viewer.ID, viewer.Secret)
		if err != nil {
			t.Fatal(err)
		}
		n.viewer, n.token = viewer.ID, tok.AccessToken
		evs := append([]usage.Event(nil), events...)
		for i := range evs {
			evs[i].OrganizationID = org.ID
			if i%9 == 0 {
				evs[i].ClientID, evs[i].ClientName = viewer.ID, "viewer"
			}
		}
		if res, err := c.SendEvents(ctx, evs, client.Retry{}); err != nil || res.Rejected > 0 {
			t.Fatalf("%s: sending the events: %+v, %v", n.name, res, err)
		}

		partner, err := c.CreatePartner(ctx, "partner")
		if err != nil {
			t.Fatal(err)
		}
		reseller, err := c.CreateReseller(ctx, usage.GUID(partner.PartnerGuid), "reseller")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateService(ctx, dto.CreateServiceRequest{ServiceGuid: service.String(), Name: "service",
			ResellerGuid: reseller.ResellerGuid.String(), PrimaryDomain: "parity.example"}); err != nil {
			t.Fatal(err)
		}
		if res, err := c.SendActivity(ctx, service, acts, client.Retry{}); err != nil || res.Rejected > 0 {
			t.Fatalf("%s: sending the activity: %+v, %v", n.name, res, err)
		}
	}

	interval := start.Format(time.RFC3339) + "/" + now.Truncate(time.Hour).Add(time.Hour).Format(time.RFC3339)
	day := start.Truncate(24*time.Hour).AddDate(0, 0, 1).Format(time.DateOnly) + "/" + now.Format(time.DateOnly)
	type call struct {
		what, method, path, token string
		body                      any
		async                     bool // a Genesys execution: POST, then poll the results it names
	}
	calls := []call{
		{what: "organization query by client, daily", path: "/api/v2/usage/query", async: true,
			body: map[string]any{"interval": interval, "granularity": "Day", "groupBy": []string{"OAuthClientId"}}},
		{what: "organization query by template and method, hourly", path: "/api/v2/usage/query", async: true,
			body: map[string]any{"interval": interval, "granularity": "Hour", "groupBy": []string{"TemplateUri", "HttpMethod"}, "metrics": []string{"Requests", "Status429", "Status500"}}},
		{what: "organization query, monthly", path: "/api/v2/usage/query", async: true,
			body: map[string]any{"interval": interval, "granularity": "Month"}},
		{what: "simple search", path: "/api/v2/usage/simplesearch", async: true, body: map[string]any{"interval": day}},
		{what: "aggregates job by user, daily", path: "/api/v2/usage/aggregates/query/jobs", async: true,
			body: map[string]any{"interval": interval, "granularity": "Day", "groupBy": []string{"UserId"}}},
		{what: "aggregate by client and user, weekly", path: "/api/v2/usage/aggregate",
			body: map[string]any{"interval": interval, "granularity": "Week", "groupBy": []string{"OAuthClientId", "UserId"}}},
		{what: "aggregate of two clients by method, daily", path: "/api/v2/usage/aggregate",
			body: map[string]any{"interval": interval, "granularity": "Day", "groupBy": []string{"HttpMethod"},
				"filter": map[string]any{"clientIds": []string{"x-client-1", "x-client-3"}}}},
	}
	from, to := ag.Start.Format(time.DateOnly), now.Truncate(24*time.Hour).Format(time.DateOnly)
	for _, p := range []string{
		"/api/services/%s/serviceusage?PeriodType=Monthly&Period=" + from,
		"/api/services/%s/serviceusage?PeriodType=Daily&Period=" + ag.Start.AddDate(0, 0, 3).Format(time.DateOnly),
		"/api/services/%s/serviceusage/history?PeriodType=Daily&From=" + from + "&To=" + to,
		"/api/services/%s/users/usage?PeriodType=Monthly&Period=" + from,
	} {
		calls = append(calls, call{what: "service report " + p, method: "GET", path: fmt.Sprintf(p, service), token: parityAdmin})
	}

	// The viewer's own usage, VIEWER standing for its id.
	calls = append(calls,
		call{what: "client query, daily", path: "/api/v2/oauth/clients/VIEWER/usage/query", async: true,
			body: map[string]any{"interval": interval, "granularity": "Day"}},
		call{what: "client summary", method: "GET", path: "/api/v2/oauth/clients/VIEWER/usage/summary?days=10", async: true},
		call{what: "client aggregates job by template, weekly", path: "/api/v2/usage/client/VIEWER/aggregates/query/jobs", async: true,
			body: map[string]any{"interval": interval, "granularity": "Week", "groupBy": []string{"TemplateUri"}}},
	)

	for _, c := range calls {
		var answers [][]byte
		for _, n := range nodes {
			token, body := c.token, c.body
			if token == "" {
				token = n.token
			}
			if m, ok := body.(map[string]any); ok && c.path == "/api/v2/usage/aggregate" {
				m["organizationId"] = n.org
				token = parityAdmin
			}
			got := n.answer(t, c.method, strings.ReplaceAll(c.path, "VIEWER", n.viewer), token, body, c.async)
			got = bytes.ReplaceAll(got, []byte(n.org), []byte("ORG"))
			got = bytes.ReplaceAll(got, []byte(n.viewer), []byte("VIEWER"))
			answers = append(answers, createdOn.ReplaceAll(got, []byte(`"createdOn":"…"`)))
		}
		if len(answers[0]) < 200 {
			t.Errorf("%s: the embedded node answered little: %s", c.what, answers[0])
		}
		if !bytes.Equal(answers[0], answers[1]) {
			t.Errorf("%s: the nodes answer differently\nembedded: %.2000s\n cluster: %.2000s", c.what, answers[0], answers[1])
		}
	}
}

// answer sends a request to the node and returns its answer's body; for an
// execution (async), the body of its final results, of every page, without
// the ids that differ between nodes.
func (n *parityNode) answer(t *testing.T, method, path, token string, body any, async bool) []byte {
	t.Helper()
	if method == "" {
		method = "POST"
	}
	b := n.do(t, method, path, token, body)
	if !async {
		return b
	}
	var started struct {
		ResultsURI string `json:"resultsUri"`
		JobID      string `json:"jobId"`
	}
	if err := json.Unmarshal(b, &started); err != nil {
		t.Fatalf("%s %s: %s: %v", n.name, path, b, err)
	}
	next := started.ResultsURI
	if started.JobID != "" {
		path, _, _ = strings.Cut(path, "?")
		next = path + "/" + started.JobID + "/results"
	}
	var all [][]byte
	for deadline := time.Now().Add(time.Minute); next != ""; {
		var page struct {
			QueryStatus string          `json:"queryStatus"`
			Results     json.RawMessage `json:"results"`
			Entities    json.RawMessage `json:"entities"`
			Cursors     *struct {
				After string `json:"after"`
			} `json:"cursors"`
			NextURI string `json:"nextUri"`
		}
		b := n.do(t, "GET", next, token, nil)
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatalf("%s %s: %s: %v", n.name, next, b, err)
		}
		switch page.QueryStatus {
		case "Queued", "Running":
			if time.Now().After(deadline) {
				t.Fatalf("%s %s: still running after a minute", n.name, next)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		case "Complete", "Succeeded":
		default:
			t.Fatalf("%s %s: %.500s", n.name, next, b)
		}
		all = append(all, page.Results, page.Entities)
		switch {
		case page.Cursors != nil && page.Cursors.After != "":
			u, _ := url.Parse(next)
			q := u.Query()
			q.Set("after", page.Cursors.After)
			u.RawQuery = q.Encode()
			next = u.String()
		case page.NextURI != "":
			next = page.NextURI
		default:
			next = ""
		}
	}
	return bytes.Join(all, []byte("\n"))
}

func (n *parityNode) do(t *testing.T, method, path, token string, body any) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	if !strings.HasPrefix(path, "http") {
		path = n.url + path
	}
	req, err := http.NewRequestWithContext(context.Background(), method, path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s: %s %s: %d %s", n.name, method, path, resp.StatusCode, b)
	}
	return b
}
