package genesys_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// pollRaw posts body to path and polls the results URI until the
// execution is final, returning the final answer as sent.
func (e *env) pollRaw(token, method, path string, body any) reply {
	e.t.Helper()
	ex := decode[executionResult](e.t, e.do(method, path, token, body), 202)
	for range 200 {
		r := e.do("GET", ex.ResultsURI, token, nil)
		if r.status != 200 || !strings.Contains(string(r.body), `"Running"`) {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("%s never finished", ex.ResultsURI)
	return reply{}
}

// An execution without rows answers "results": [], not an absent field:
// the SDKs type ApiUsageQueryResult.results as an array.
func TestEmptyResultsArePresent(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	quiet := e.mustClient(a.ID, 0)
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView, usage.PermClientView, usage.PermSimpleSearchView))
	const iv = "2026-06-10/2026-06-11"
	for _, c := range []struct{ method, path string }{
		{"POST", "/api/v2/usage/query"},
		{"POST", "/api/v2/usage/simplesearch"},
		{"POST", "/api/v2/oauth/clients/" + quiet.ID + "/usage/query"},
		{"GET", "/api/v2/oauth/clients/" + quiet.ID + "/usage/summary?days=2"},
	} {
		var body any
		if c.method == "POST" {
			body = map[string]any{"interval": iv}
		}
		r := e.pollRaw(tok, c.method, c.path, body)
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &fields); err != nil || r.status != 200 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, r.status, r.body)
		}
		if string(fields["queryStatus"]) != `"Complete"` || string(fields["results"]) != "[]" {
			t.Errorf("%s %s: %s, want Complete with \"results\":[]", c.method, c.path, r.body)
		}
	}
}

// ErrorBody as Genesys fills it: messageWithParams is the message with a
// {name} placeholder for each of messageParams; a 403 for missing
// permissions opens with "Unable to perform the requested action."; a
// malformed date says what Genesys says, then what is wrong.
func TestErrorBodyAsGenesys(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	nobody := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd))
	viewer := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))

	filled := func(eb errorBody) string {
		m := eb.MessageWithParams
		for k, v := range eb.MessageParams {
			m = strings.ReplaceAll(m, "{"+k+"}", v)
		}
		return m
	}
	check := func(what string, eb errorBody, template string) {
		t.Helper()
		if eb.MessageWithParams != template || filled(eb) != eb.Message {
			t.Errorf("%s: messageWithParams %q, params %v, message %q; want template %q filling to the message",
				what, eb.MessageWithParams, eb.MessageParams, eb.Message, template)
		}
	}

	eb := wantError(t, e.do("POST", "/api/v2/usage/query", nobody, map[string]any{"interval": "2026-06-10/2026-06-11"}),
		403, "missing.any.permissions", "Unable to perform the requested action. You must have at least one of the following permissions assigned: ")
	check("403", eb, "Unable to perform the requested action. You must have at least one of the following permissions assigned: {permissions}")

	eb = wantError(t, e.do("POST", "/api/v2/usage/query", viewer, map[string]any{"interval": "2026-06-10/2026-06-11", "granularity": "Fortnight"}),
		400, "invalid.value", "Value [Fortnight] is not valid for field type [granularity]")
	check("invalid.value", eb, "Value [{value}] is not valid for field type [{field}]. Allowable values are: {allowableValues}")

	for _, path := range []string{"/api/v2/usage/query", jobsPath, "/api/v2/usage/aggregate"} {
		eb = wantError(t, e.do("POST", path, viewer, map[string]any{"interval": "yesterday"}), 400, "invalid.date",
			"Dates must be specified as ISO-8601 strings. For example: yyyy-MM-ddTHH:mm:ss.SSSZ. ")
		if !strings.HasPrefix(eb.Message, "Dates must") || !strings.Contains(eb.Message, `"yesterday"`) || eb.MessageWithParams != "" {
			t.Errorf("%s: invalid.date message %q (messageWithParams %q)", path, eb.Message, eb.MessageWithParams)
		}
	}
	// Well-formed dates in the wrong order are not a format error.
	eb = wantError(t, e.do("POST", "/api/v2/usage/query", viewer, map[string]any{"interval": "2026-02-01/2026-01-01"}), 400, "invalid.date", "end must be after start")
	if strings.Contains(eb.Message, "ISO-8601") {
		t.Errorf("order error %q", eb.Message)
	}
}

// A job's date-time end is inclusive: it reads as the whole UTC hour that
// contains it, so the events at that instant count, and so does the Day
// bucket of its day. The test counts the events it sent by its own rule.
func TestJobIntervalEndIsInclusive(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	ingest := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd))
	viewer := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))
	sent := e.mustJobEvents(ingest, 1500, 21)
	// Events on and around the boundaries, as a client would send them.
	edges := []string{
		"2026-06-12T00:00:00Z", "2026-06-12T00:00:00Z", "2026-06-11T23:59:59Z",
		"2026-06-14T00:00:00Z", "2026-06-14T00:00:00Z", "2026-06-14T00:00:00Z",
		"2026-06-14T00:30:00Z", "2026-06-14T00:59:59Z", "2026-06-14T01:00:00Z", "2026-06-14T10:00:00Z",
	}
	var batch []any
	for i, at := range edges {
		tm, _ := time.Parse(time.RFC3339, at)
		sent = append(sent, jobEvent{client: "jc-1", name: "One", template: "api/v2/edge", method: "GET", status: 200, at: tm})
		batch = append(batch, event(fmt.Sprintf("edge-%d", i), "time", at, "clientId", "jc-1", "clientName", "One",
			"templateUri", "api/v2/edge", "httpMethod", "GET", "status", 200))
	}
	if res := decode[result](t, e.do("POST", "/api/v2/usage/events", ingest, batch), 200); res.Rejected != 0 {
		t.Fatalf("rejected: %+v", res)
	}

	for _, c := range []struct {
		interval   string
		start, end time.Time // the test's reading: [start, end)
	}{
		// On the hour: the hour that starts at the end counts.
		{"2026-06-12T00:00:00/2026-06-14T00:00:00", time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 14, 1, 0, 0, 0, time.UTC)},
		{"2026-06-12T00:00:00Z/2026-06-14T00:00:00.000Z", time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 14, 1, 0, 0, 0, time.UTC)},
		// Off the hour: the hour containing the end.
		{"2026-06-12T00:00:00Z/2026-06-14T00:30:00+00:00", time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 14, 1, 0, 0, 0, time.UTC)},
		{"2026-06-12T00:00:00Z/2026-06-14T09:59:59Z", time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 14, 10, 0, 0, 0, time.UTC)},
		// A date end: its whole day. A duration end: exclusive.
		{"2026-06-12/2026-06-13", time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 14, 0, 0, 0, 0, time.UTC)},
		{"2026-06-12T00:00:00Z/P2D", time.Date(2026, 6, 12, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 14, 0, 0, 0, 0, time.UTC)},
	} {
		got := e.mustJobEntities(viewer, jobsPath, map[string]any{"interval": c.interval, "granularity": "Day"}, 0)
		want := count(sent, func(ev jobEvent) string {
			if ev.at.Before(c.start) || !ev.at.Before(c.end) {
				return ""
			}
			return ev.at.UTC().Format(time.DateOnly)
		})
		delete(want, "")
		if c.end.Hour() != 0 && want["2026-06-14"] == nil {
			t.Fatalf("%s: the test sent no events on 2026-06-14", c.interval)
		}
		checkJobEntities(t, got, want, nil, func(en jobEntityJSON) string { return jobPtr(en.Date) })
	}
}

// Genesys admin scripts create clients with roles: roleIds, roleDivisions
// and scope are accepted, stored and answered back by every route, and
// replaced by PUT; they grant nothing, permissions do.
func TestOAuthClientRoles(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	_, mgr := e.oauthManager(a.ID)
	type roles struct {
		RoleIDs       []string            `json:"roleIds"`
		RoleDivisions []map[string]string `json:"roleDivisions"`
		Scope         []string            `json:"scope"`
		Permissions   []string            `json:"permissions"`
	}
	rolesOf := func(r reply) roles {
		t.Helper()
		return decode[roles](t, r, 200)
	}
	const role, division = "2f3c9a1e-7d7a-4c0e-9d36-6a7e1c7a0b11", "8b1f0c2d-3e4a-4b5c-9d6e-7f8091a2b3c4"
	body := map[string]any{
		"name": "Admin script", "authorizedGrantType": "CLIENT-CREDENTIALS",
		"roleIds":       []string{role, role},
		"roleDivisions": []map[string]string{{"roleId": role, "divisionId": division}},
		"scope":         []string{"analytics"},
		"permissions":   []string{usage.PermOrganizationView},
	}
	want := `{"roleIds":["` + role + `"],"roleDivisions":[{"divisionId":"` + division + `","roleId":"` + role + `"}],"scope":["analytics"],"permissions":["usage:organization:view"]}`
	created := e.do("POST", clientsPath, mgr, body)
	c := decode[oauthClient](t, created, 200)
	for what, r := range map[string]reply{"POST": created, "GET": e.do("GET", clientsPath+"/"+c.ID, mgr, nil)} {
		if got := mustJSON(rolesOf(r)); got != want {
			t.Errorf("%s: %s, want %s", what, got, want)
		}
	}
	list := decode[struct{ Entities []json.RawMessage }](t, e.do("GET", clientsPath, mgr, nil), 200)
	found := false
	for _, en := range list.Entities {
		var x struct{ ID string }
		json.Unmarshal(en, &x)
		if x.ID == c.ID {
			found = true
			var r roles
			json.Unmarshal(en, &r)
			if got := mustJSON(r); got != want {
				t.Errorf("list: %s, want %s", got, want)
			}
		}
	}
	if !found {
		t.Fatalf("client %s not listed", c.ID)
	}
	// The roles grant nothing: the token holds its permissions only.
	tok := e.mustToken(client{ID: c.ID, Secret: c.Secret})
	wantError(t, e.do("POST", "/api/v2/usage/events", tok, []any{}), 403, "missing.any.permissions", usage.PermEventAdd)

	// PUT replaces them, as it replaces every field; absent means none.
	body["roleIds"], body["scope"] = []string{"other-role"}, nil
	delete(body, "roleDivisions")
	updated := rolesOf(e.do("PUT", clientsPath+"/"+c.ID, mgr, body))
	if got := mustJSON(updated); got != `{"roleIds":["other-role"],"roleDivisions":null,"scope":null,"permissions":["usage:organization:view"]}` {
		t.Errorf("PUT: %s", got)
	}
	if got := mustJSON(rolesOf(e.do("GET", clientsPath+"/"+c.ID, mgr, nil))); got != mustJSON(updated) {
		t.Errorf("GET after PUT: %s, want %s", got, mustJSON(updated))
	}
}
