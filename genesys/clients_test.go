package genesys_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/usaged/usaged/usage"
)

// oauthClient is Genesys' OAuthClient as usaged answers it.
type oauthClient struct {
	ID                         string   `json:"id"`
	Name                       string   `json:"name"`
	Description                string   `json:"description"`
	AccessTokenValiditySeconds int64    `json:"accessTokenValiditySeconds"`
	Secret                     string   `json:"secret"`
	AuthorizedGrantType        string   `json:"authorizedGrantType"`
	State                      string   `json:"state"`
	DateCreated                string   `json:"dateCreated"`
	Permissions                []string `json:"permissions"`
	SelfURI                    string   `json:"selfUri"`
}

type oauthClientListing struct {
	Entities    []oauthClient `json:"entities"`
	PageSize    int           `json:"pageSize"`
	PageNumber  int           `json:"pageNumber"`
	Total       int           `json:"total"`
	PageCount   int           `json:"pageCount"`
	FirstURI    string        `json:"firstUri"`
	SelfURI     string        `json:"selfUri"`
	LastURI     string        `json:"lastUri"`
	NextURI     string        `json:"nextUri"`
	PreviousURI string        `json:"previousUri"`
}

const clientsPath = "/api/v2/oauth/clients"

// oauthManager is a client of org holding every permission, which may
// therefore grant any.
func (e *env) oauthManager(orgID string) (client, string) {
	e.t.Helper()
	m := e.mustClient(orgID, 0, usage.Permissions...)
	return m, e.mustToken(m)
}

// mustCreateOAuthClient creates a client through the Genesys route.
func (e *env) mustCreateOAuthClient(token string, body any) oauthClient {
	e.t.Helper()
	c := decode[oauthClient](e.t, e.do("POST", clientsPath, token, body), 200)
	if c.ID == "" || c.Secret == "" {
		e.t.Fatalf("created client %+v", c)
	}
	return c
}

// tokenStatus asks for a token with id and secret and returns the status.
func (e *env) tokenStatus(id, secret string) int {
	e.t.Helper()
	return e.tokenReply(url.Values{"grant_type": {"client_credentials"}}, id, secret, "application/x-www-form-urlencoded").status
}

func TestOAuthClientsLifecycle(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	_, mgr := e.oauthManager(a.ID)

	c := e.mustCreateOAuthClient(mgr, map[string]any{
		"name": "Ingest", "description": "the pipeline", "authorizedGrantType": "CLIENT-CREDENTIALS",
		"accessTokenValiditySeconds": 3600, "permissions": []string{usage.PermEventAdd},
		// Fields of Genesys' request that do not apply are accepted empty.
		"roleIds": []string{}, "scope": []string{}, "registeredRedirectUri": []string{}, "roleDivisions": []any{}, "state": "active",
	})
	if c.Name != "Ingest" || c.Description != "the pipeline" || c.AccessTokenValiditySeconds != 3600 ||
		c.AuthorizedGrantType != "CLIENT-CREDENTIALS" || c.State != "active" || c.DateCreated != "2026-06-15T12:00:00Z" ||
		c.SelfURI != clientsPath+"/"+c.ID || strings.Join(c.Permissions, ",") != usage.PermEventAdd {
		t.Fatalf("created client %+v", c)
	}
	// The new client works at once.
	tok := e.mustToken(client{ID: c.ID, Secret: c.Secret})
	decode[result](t, e.do("POST", "/api/v2/usage/events", tok, []any{event("e1")}), 200)

	// Read one and all, never with the secret.
	got := e.do("GET", clientsPath+"/"+c.ID, mgr, nil)
	if g := decode[oauthClient](t, got, 200); g.ID != c.ID || g.Name != "Ingest" || strings.Contains(string(got.body), "secret") {
		t.Fatalf("client %s", got.body)
	}
	list := e.do("GET", clientsPath, mgr, nil)
	l := decode[oauthClientListing](t, list, 200)
	if l.Total != 2 || len(l.Entities) != 2 || l.Entities[1].ID != c.ID || l.PageSize != 2 || l.PageNumber != 1 || l.PageCount != 1 ||
		l.FirstURI != clientsPath+"?pageNumber=1" || l.SelfURI != l.FirstURI || l.LastURI != l.FirstURI || l.NextURI != "" ||
		strings.Contains(string(list.body), "secret") {
		t.Fatalf("listing %s", list.body)
	}
	// Pages, in name order: "CRM" (the manager), then "Ingest".
	l = decode[oauthClientListing](t, e.do("GET", clientsPath+"?pageSize=1&pageNumber=2", mgr, nil), 200)
	if len(l.Entities) != 1 || l.Entities[0].ID != c.ID || l.PageCount != 2 || l.PreviousURI != clientsPath+"?pageNumber=1&pageSize=1" ||
		l.NextURI != "" || l.LastURI != clientsPath+"?pageNumber=2&pageSize=1" {
		t.Fatalf("second page %s", mustJSON(l))
	}
	if l := decode[oauthClientListing](t, e.do("GET", clientsPath+"?pageSize=1", mgr, nil), 200); l.NextURI != clientsPath+"?pageNumber=2&pageSize=1" {
		t.Fatalf("first page %s", mustJSON(l))
	}
	if l := decode[oauthClientListing](t, e.do("GET", clientsPath+"?pageNumber=3", mgr, nil), 200); len(l.Entities) != 0 || l.Total != 2 {
		t.Fatalf("page past the end %s", mustJSON(l))
	}
	for _, q := range []string{"pageSize=0", "pageSize=1001", "pageNumber=0", "pageSize=x"} {
		name, _, _ := strings.Cut(q, "=")
		eb := wantError(t, e.do("GET", clientsPath+"?"+q, mgr, nil), 400, "invalid.query.param.value", name)
		if eb.Details[0].FieldName != name {
			t.Fatalf("%s: details %+v", q, eb.Details)
		}
	}

	// Update replaces what it names and defaults the rest; tokens see the
	// new permissions at once.
	u := decode[oauthClient](t, e.do("PUT", clientsPath+"/"+c.ID, mgr, map[string]any{
		"name": "Reports", "authorizedGrantType": "CLIENT-CREDENTIALS", "permissions": []string{usage.PermOrganizationView},
	}), 200)
	if u.ID != c.ID || u.Name != "Reports" || u.Description != "" || u.AccessTokenValiditySeconds != 86400 || u.Secret != "" ||
		strings.Join(u.Permissions, ",") != usage.PermOrganizationView || u.DateCreated != c.DateCreated {
		t.Fatalf("updated client %+v", u)
	}
	wantError(t, e.do("POST", "/api/v2/usage/events", tok, []any{event("e2")}), 403, "missing.any.permissions", usage.PermEventAdd)
	e.aggregate(tok, map[string]any{"interval": day})

	// A new secret: the old one and its tokens stop working.
	r := decode[oauthClient](t, e.do("POST", clientsPath+"/"+c.ID+"/secret", mgr, nil), 200)
	if r.ID != c.ID || r.Secret == "" || r.Secret == c.Secret || r.Name != "Reports" {
		t.Fatalf("regenerated %+v", r)
	}
	if st := e.tokenStatus(c.ID, c.Secret); st != 401 {
		t.Fatalf("old secret: token status %d", st)
	}
	wantError(t, e.do("POST", "/api/v2/usage/aggregate", tok, map[string]any{"interval": day}), 401, "bad.credentials", "rotated")
	tok = e.mustToken(client{ID: c.ID, Secret: r.Secret})
	e.aggregate(tok, map[string]any{"interval": day})

	// Delete: gone, and so are its tokens.
	decode[json.RawMessage](t, e.do("DELETE", clientsPath+"/"+c.ID, mgr, nil), 204)
	wantError(t, e.do("GET", clientsPath+"/"+c.ID, mgr, nil), 404, "not.found", c.ID)
	wantError(t, e.do("DELETE", clientsPath+"/"+c.ID, mgr, nil), 404, "not.found", c.ID)
	wantError(t, e.do("POST", "/api/v2/usage/aggregate", tok, map[string]any{"interval": day}), 401, "bad.credentials", "deleted")
	if st := e.tokenStatus(c.ID, r.Secret); st != 401 {
		t.Fatalf("deleted client: token status %d", st)
	}
}

func TestOAuthClientsPermissions(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a, b := e.mustOrg("A"), e.mustOrg("B")
	_, mgr := e.oauthManager(a.ID)
	theirs := e.mustClient(b.ID, 0)
	mine := e.mustCreateOAuthClient(mgr, map[string]any{"name": "Mine"})
	body := map[string]any{"name": "x"}
	routes := []struct {
		method, path string
		body         any
		perm         string
		ok           int
	}{
		{"GET", clientsPath, nil, usage.PermOAuthClientView, 200},
		{"POST", clientsPath, body, usage.PermOAuthClientAdd, 200},
		{"GET", clientsPath + "/" + mine.ID, nil, usage.PermOAuthClientView, 200},
		{"PUT", clientsPath + "/" + mine.ID, body, usage.PermOAuthClientEdit, 200},
		{"POST", clientsPath + "/" + mine.ID + "/secret", nil, usage.PermOAuthClientEdit, 200},
		{"DELETE", clientsPath + "/" + mine.ID, nil, usage.PermOAuthClientDel, 204},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			// Every permission but the route's is not enough.
			var without []string
			for _, p := range usage.Permissions {
				if p != rt.perm {
					without = append(without, p)
				}
			}
			lacking := e.mustToken(e.mustClient(a.ID, 0, without...))
			eb := wantError(t, e.do(rt.method, rt.path, lacking, rt.body), 403, "missing.any.permissions",
				"You must have at least one of the following permissions assigned: "+rt.perm)
			if eb.MessageParams["permissions"] != rt.perm {
				t.Fatalf("messageParams %v", eb.MessageParams)
			}
			// The admin token has no organization.
			wantError(t, e.do(rt.method, rt.path, adminToken, rt.body), 403, "not.authorized", "/api/v2/admin/organizations")
			// The route's permission alone is.
			only := e.mustToken(e.mustClient(a.ID, 0, rt.perm))
			if r := e.do(rt.method, rt.path, only, rt.body); r.status != rt.ok {
				t.Fatalf("with %s: %d %s", rt.perm, r.status, r.body)
			}
			// Another organization's client is missing, like one that does
			// not exist.
			if strings.Contains(rt.path, mine.ID) {
				other := strings.Replace(rt.path, mine.ID, theirs.ID, 1)
				eb := wantError(t, e.do(rt.method, other, mgr, rt.body), 404, "not.found", theirs.ID)
				missing := wantError(t, e.do(rt.method, strings.Replace(rt.path, mine.ID, "nope", 1), mgr, rt.body), 404, "not.found", "nope")
				if strings.ReplaceAll(eb.Message, theirs.ID, "X") != strings.ReplaceAll(missing.Message, "nope", "X") {
					t.Fatalf("another organization's client %q and a missing one %q are told apart", eb.Message, missing.Message)
				}
			}
		})
	}
	// Listing shows only the caller's organization.
	l := decode[oauthClientListing](t, e.do("GET", clientsPath, mgr, nil), 200)
	for _, c := range l.Entities {
		if c.ID == theirs.ID {
			t.Fatalf("another organization's client listed: %+v", c)
		}
	}
	// No token at all.
	wantError(t, e.do("GET", clientsPath, "", nil), 401, "authentication.required", "No authentication bearer token")
}

func TestOAuthClientsValidation(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	_, mgr := e.oauthManager(a.ID)
	existing := e.mustCreateOAuthClient(mgr, map[string]any{"name": "Existing"})
	limited := e.mustToken(e.mustClient(a.ID, 0, usage.PermOAuthClientAdd, usage.PermOAuthClientEdit, usage.PermEventAdd))

	f := func(token, body string, status int, code, field, inMessage string) {
		t.Helper()
		for _, r := range []struct{ method, path string }{{"POST", clientsPath}, {"PUT", clientsPath + "/" + existing.ID}} {
			eb := wantError(t, e.do(r.method, r.path, token, body), status, code, inMessage)
			if len(eb.Details) != 1 || eb.Details[0].FieldName != field {
				t.Fatalf("%s %s: details %+v, want field %s", r.method, body, eb.Details, field)
			}
		}
	}
	f(mgr, `{}`, 400, "bad.request", "name", "name is required")
	f(mgr, `{"name":"x","accessTokenValiditySeconds":299}`, 400, "constraint.validation", "accessTokenValiditySeconds", "from 300 to 172800, not 299")
	f(mgr, `{"name":"x","accessTokenValiditySeconds":172801}`, 400, "constraint.validation", "accessTokenValiditySeconds", "not 172801")
	f(mgr, `{"name":"x","accessTokenValiditySeconds":0}`, 400, "constraint.validation", "accessTokenValiditySeconds", "not 0")
	f(mgr, `{"name":"x","accessTokenValiditySeconds":"day"}`, 400, "bad.request", "accessTokenValiditySeconds", "must be of type number")
	f(mgr, `{"name":"x","authorizedGrantType":"CODE"}`, 400, "invalid.value", "authorizedGrantType",
		"Value [CODE] is not valid for field type [authorizedGrantType]. Allowable values are: CLIENT-CREDENTIALS")
	f(mgr, `{"name":"x","state":"disabled"}`, 400, "invalid.value", "state", "Allowable values are: active")
	f(mgr, `{"name":"x","permissions":["usage:all"]}`, 400, "invalid.value", "permissions",
		"Value [usage:all] is not valid for field type [permissions]. Allowable values are: "+strings.Join(usage.Permissions, ", "))
	f(mgr, `{"name":"x","roleIds":[""]}`, 400, "bad.request", "roleIds", "roleIds is required")
	f(mgr, `{"name":"x","roleIds":["`+strings.Repeat(`r","`, 100)+`r"]}`, 400, "bad.request", "roleIds", "101 entries; the limit is 100")
	f(mgr, `{"name":"x","roleDivisions":[{"roleId":"r"}]}`, 400, "bad.request", "roleDivisions.divisionId", "roleDivisions.divisionId is required")
	f(mgr, `{"name":"x","scope":["a\u0000b"]}`, 400, "bad.request", "scope", "scope")
	f(mgr, `{"name":"x","registeredRedirectUri":["https://a.example/cb"]}`, 400, "bad.request", "registeredRedirectUri", "must be empty")
	f(mgr, `{"name":"x","dateToDelete":"2027-01-01T00:00:00Z"}`, 400, "bad.request", "dateToDelete", "must be empty")
	f(mgr, `{"name":"x","secret":"mine"}`, 400, "bad.request", "secret", `unknown field "secret"`)
	f(mgr, `{"name":"x"} {}`, 400, "bad.request", "body", "more follows")
	// A client grants only permissions it holds.
	eb := wantError(t, e.do("POST", clientsPath, limited, map[string]any{"name": "x",
		"permissions": []string{usage.PermEventAdd, usage.PermOrganizationView, usage.PermClientView}}), 403, "missing.permissions",
		"You must have all of the following permissions assigned: usage:organization:view, usage:client:view")
	if eb.Details[0].FieldName != "permissions" || eb.MessageParams["permissions"] != "usage:organization:view, usage:client:view" {
		t.Fatalf("escalation refused with %+v", eb)
	}
	wantError(t, e.do("PUT", clientsPath+"/"+existing.ID, limited, map[string]any{"name": "x", "permissions": []string{usage.PermOAuthClientDel}}),
		403, "missing.permissions", usage.PermOAuthClientDel)
	decode[oauthClient](t, e.do("POST", clientsPath, limited, map[string]any{"name": "x", "permissions": []string{usage.PermEventAdd}}), 200)

	// Nothing refused changed the client.
	if g := decode[oauthClient](t, e.do("GET", clientsPath+"/"+existing.ID, mgr, nil), 200); g.Name != "Existing" || g.AccessTokenValiditySeconds != 86400 {
		t.Fatalf("client after refused updates %+v", g)
	}
}
