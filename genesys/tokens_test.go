package genesys_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// tokenInfo is Genesys' TokenInfo as the SDK decodes it.
type tokenInfo struct {
	Organization     *namedEntity `json:"organization"`
	HomeOrganization *namedEntity `json:"homeOrganization"`
	AuthorizedScope  []string     `json:"authorizedScope"`
	OAuthClient      *struct {
		ID                  string       `json:"id"`
		Name                string       `json:"name"`
		DateCreated         string       `json:"dateCreated"`
		AuthorizedGrantType string       `json:"authorizedGrantType"`
		State               string       `json:"state"`
		Organization        *namedEntity `json:"organization"`
	} `json:"OAuthClient"`
}

type namedEntity struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func TestTokensMe(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	org := e.mustOrg("Acme")
	c := e.mustClient(org.ID, 300, usage.PermOrganizationView, usage.PermEventAdd)
	tok := e.mustToken(c)

	r := e.do("GET", "/api/v2/tokens/me", tok, nil)
	ti := decode[tokenInfo](t, r, 200)
	want := namedEntity{ID: org.ID, Name: "Acme"}
	if ti.Organization == nil || *ti.Organization != want || ti.HomeOrganization == nil || *ti.HomeOrganization != want {
		t.Fatalf("organizations: %s", r.body)
	}
	if !slices.Equal(slices.Sorted(slices.Values(ti.AuthorizedScope)), []string{usage.PermEventAdd, usage.PermOrganizationView}) {
		t.Fatalf("authorizedScope %v, want the client's permissions", ti.AuthorizedScope)
	}
	oc := ti.OAuthClient
	if oc == nil || oc.ID != c.ID || oc.Name != "CRM" || oc.Organization == nil || *oc.Organization != want ||
		oc.AuthorizedGrantType != "CLIENT-CREDENTIALS" || oc.State != "active" || oc.DateCreated != c.DateCreated {
		t.Fatalf("OAuthClient: %s", r.body)
	}
	// The SDK's names are case-sensitive in places: "OAuthClient" is one.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"organization", "homeOrganization", "authorizedScope", "OAuthClient"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("no %q in %s", k, r.body)
		}
	}
	// preserveIdleTTL is Genesys' and harmless; nonsense in it is not.
	decode[tokenInfo](t, e.do("GET", "/api/v2/tokens/me?preserveIdleTTL=true", tok, nil), 200)
	wantError(t, e.do("GET", "/api/v2/tokens/me?preserveIdleTTL=maybe", tok, nil), 400, "invalid.query.param.value", "preserveIdleTTL")
	wantError(t, e.do("POST", "/api/v2/tokens/me", tok, nil), 405, "method.not.allowed", "GET")
}

// TestTokensMeNoPermissions: any valid token may ask about itself, and a
// client holding nothing has an empty scope, not a null one.
func TestTokensMeNoPermissions(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	org := e.mustOrg("Acme")
	tok := e.mustToken(e.mustClient(org.ID, 300))
	r := e.do("GET", "/api/v2/tokens/me", tok, nil)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(decode[json.RawMessage](t, r, 200), &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw["authorizedScope"]) != "[]" {
		t.Fatalf("authorizedScope %s, want []", raw["authorizedScope"])
	}
}

// TestTokensMeAdmin: the admin token is valid but belongs to no
// organization and no client, which the answer shows by leaving them out.
func TestTokensMeAdmin(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	r := e.do("GET", "/api/v2/tokens/me", adminToken, nil)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(decode[json.RawMessage](t, r, 200), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"organization", "homeOrganization", "OAuthClient"} {
		if _, ok := raw[k]; ok {
			t.Fatalf("admin answer has %q: %s", k, r.body)
		}
	}
	if ti := decode[tokenInfo](t, r, 200); !slices.Equal(ti.AuthorizedScope, usage.Permissions) {
		t.Fatalf("admin scope %v, want every permission", ti.AuthorizedScope)
	}
}

func TestTokensMeRefused(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	org := e.mustOrg("Acme")
	gone := e.mustClient(org.ID, 300)
	goneTok := e.mustToken(gone)
	decode[json.RawMessage](t, e.do("DELETE", "/api/v2/admin/organizations/"+org.ID+"/clients/"+gone.ID, adminToken, nil), 204)
	old := e.mustToken(e.mustClient(org.ID, 300))

	wantError(t, e.do("GET", "/api/v2/tokens/me", "", nil), 401, "authentication.required", "No authentication bearer token")
	wantError(t, e.do("GET", "/api/v2/tokens/me", "", nil, "Authorization", "Basic Zm9vOmJhcg=="), 401, "authentication.required", "Bearer")
	wantError(t, e.do("GET", "/api/v2/tokens/me", "garbage", nil), 401, "bad.credentials", "token is not valid")
	wantError(t, e.do("GET", "/api/v2/tokens/me", goneTok, nil), 401, "bad.credentials", "client of this token was deleted")
	e.clk.Advance(301 * time.Second)
	wantError(t, e.do("GET", "/api/v2/tokens/me", old, nil), 401, "bad.credentials", "token expired")
}
