package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/internal/fakeclock"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/usage"
)

const adminToken = "admin-token-for-tests"

// MustService returns a Service over a fresh Pebble store in tb.TempDir, and
// its clock.
func MustService(tb testing.TB) (*auth.Service, *fakeclock.Clock, *pebble.DB) {
	tb.Helper()
	db, err := pebble.Open(pebble.Config{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	clk := fakeclock.New(time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC))
	s, err := auth.New(tb.Context(), auth.Config{
		Registry:   db,
		AdminToken: adminToken,
		SigningKey: []byte(strings.Repeat("k", 32)),
		Now:        clk.Now,
		BcryptCost: bcrypt.MinCost,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s, clk, db
}

func mustOrg(tb testing.TB, s *auth.Service) usage.Organization {
	tb.Helper()
	o, err := s.CreateOrganization(tb.Context(), "Acme")
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

func mustClient(tb testing.TB, s *auth.Service, orgID string, spec auth.ClientSpec) (usage.Client, string) {
	tb.Helper()
	c, secret, err := s.CreateClient(tb.Context(), orgID, spec)
	if err != nil {
		tb.Fatal(err)
	}
	return c, secret
}

func wantKind(t *testing.T, err error, k usage.Kind, inMessage string) {
	t.Helper()
	var e *usage.Error
	if !errors.As(err, &e) || e.Kind != k || !strings.Contains(e.Message, inMessage) {
		t.Fatalf("error %v: want kind %v with %q", err, k, inMessage)
	}
}

func TestConfigValidate(t *testing.T) {
	err := auth.Config{SigningKey: []byte("short"), BcryptCost: 99}.Validate()
	for _, want := range []string{"Registry", "AdminToken", "SigningKey", "BcryptCost"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a problem with %s", err, want)
		}
	}
}

func TestTokenRoundTrip(t *testing.T) {
	s, _, _ := MustService(t)
	o := mustOrg(t, s)
	c, secret := mustClient(t, s, o.ID, auth.ClientSpec{Name: "CRM", Permissions: []string{usage.PermEventAdd}, AccessTokenValidity: time.Hour})
	if len(c.SecretHash) != 0 {
		t.Fatal("CreateClient returned the secret hash")
	}
	tok, exp, err := s.IssueToken(t.Context(), c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	if exp != time.Hour || !strings.HasPrefix(tok, "v1.") {
		t.Fatalf("IssueToken = %q, %v", tok, exp)
	}
	p, err := s.Authenticate(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Admin || p.ClientID != c.ID || p.OrganizationID != o.ID || p.ClientName != "CRM" {
		t.Fatalf("principal %+v", p)
	}
	if !p.Has(usage.PermEventAdd) || p.Has(usage.PermOrganizationView) || !p.HasAny(usage.PermOrganizationView, usage.PermEventAdd) {
		t.Fatalf("permissions %v", p.Permissions)
	}
	if !p.CanAccess(o.ID) || p.CanAccess("other") {
		t.Fatal("CanAccess")
	}
	admin, err := s.Authenticate(t.Context(), adminToken)
	if err != nil || !admin.Admin || !admin.Has(usage.PermOAuthClientDel) || !admin.CanAccess("any") {
		t.Fatalf("admin: %+v, %v", admin, err)
	}
}

func TestTokenSurvivesRestart(t *testing.T) {
	s, clk, db := MustService(t)
	o := mustOrg(t, s)
	c, secret := mustClient(t, s, o.ID, auth.ClientSpec{Name: "CRM"})
	tok, _, err := s.IssueToken(t.Context(), c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := auth.New(t.Context(), auth.Config{Registry: db, AdminToken: adminToken,
		SigningKey: []byte(strings.Repeat("k", 32)), Now: clk.Now, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	if !s2.KnownOrganization(o.ID) || s2.KnownOrganization("nope") {
		t.Fatal("organizations not reloaded")
	}
	if _, err := s2.Authenticate(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
}

func TestExpiry(t *testing.T) {
	s, clk, _ := MustService(t)
	o := mustOrg(t, s)
	c, secret := mustClient(t, s, o.ID, auth.ClientSpec{Name: "CRM", AccessTokenValidity: 300 * time.Second})
	tok, _, err := s.IssueToken(t.Context(), c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(299 * time.Second)
	if _, err := s.Authenticate(t.Context(), tok); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	clk.Advance(time.Second)
	_, err = s.Authenticate(t.Context(), tok)
	wantKind(t, err, usage.KindUnauthorized, "token expired")
}

func TestDeletedClient(t *testing.T) {
	s, _, _ := MustService(t)
	o := mustOrg(t, s)
	c, secret := mustClient(t, s, o.ID, auth.ClientSpec{Name: "CRM"})
	tok, _, err := s.IssueToken(t.Context(), c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClient(t.Context(), o.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Authenticate(t.Context(), tok)
	wantKind(t, err, usage.KindUnauthorized, "client of this token was deleted")
	wantKind(t, s.DeleteClient(t.Context(), o.ID, c.ID), usage.KindNotFound, "not found")
	if _, _, err := s.IssueToken(t.Context(), c.ID, secret); err != auth.ErrInvalidClient {
		t.Fatalf("IssueToken for a deleted client: %v", err)
	}
}

func TestRotateSecret(t *testing.T) {
	s, _, _ := MustService(t)
	o := mustOrg(t, s)
	c, old := mustClient(t, s, o.ID, auth.ClientSpec{Name: "CRM"})
	tok, _, err := s.IssueToken(t.Context(), c.ID, old)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := s.RotateSecret(t.Context(), o.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.IssueToken(t.Context(), c.ID, old); err != auth.ErrInvalidClient {
		t.Fatalf("old secret: %v", err)
	}
	_, err = s.Authenticate(t.Context(), tok)
	wantKind(t, err, usage.KindUnauthorized, "rotated")
	if _, _, err := s.IssueToken(t.Context(), c.ID, secret); err != nil {
		t.Fatalf("new secret: %v", err)
	}
}

func TestWrongSecret(t *testing.T) {
	s, _, _ := MustService(t)
	o := mustOrg(t, s)
	c, secret := mustClient(t, s, o.ID, auth.ClientSpec{Name: "CRM"})
	f := func(id, secret string) {
		t.Helper()
		if _, _, err := s.IssueToken(t.Context(), id, secret); err != auth.ErrInvalidClient {
			t.Fatalf("IssueToken(%q, %q) = %v, want ErrInvalidClient", id, secret, err)
		}
	}
	f(c.ID, secret+"x")
	f(c.ID, "")
	f("no-such-client", secret)
	f("", "")
	if usage.KindOf(auth.ErrInvalidClient) != usage.KindUnauthorized {
		t.Fatal("ErrInvalidClient kind")
	}
}

func TestTamperedToken(t *testing.T) {
	s, _, db := MustService(t)
	o := mustOrg(t, s)
	c, secret := mustClient(t, s, o.ID, auth.ClientSpec{Name: "CRM"})
	tok, _, err := s.IssueToken(t.Context(), c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	payload, mac, _ := strings.Cut(strings.TrimPrefix(tok, "v1."), ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	// The same client, but a token signed with another key.
	other, err := auth.New(t.Context(), auth.Config{Registry: db, AdminToken: adminToken,
		SigningKey: []byte(strings.Repeat("x", 32)), BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := other.IssueToken(t.Context(), c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"v1." + flip(payload, 3) + "." + mac,
		"v1." + payload + "." + flip(mac, 3),
		"v2." + payload + "." + mac,
		"v1." + payload,
		"v1." + payload + "." + mac + "x",
		"v1." + payload + ".!!!",
		tok[:len(tok)-1],
		"garbage",
		"v1..",
		adminToken + " ",
		forged,
	} {
		_, err := s.Authenticate(t.Context(), bad)
		wantKind(t, err, usage.KindUnauthorized, "token is not valid")
	}
	_, err = s.Authenticate(t.Context(), "")
	wantKind(t, err, usage.KindUnauthorized, "")
}

func TestCreateClientValidation(t *testing.T) {
	s, _, _ := MustService(t)
	o := mustOrg(t, s)
	f := func(spec auth.ClientSpec, field, inMessage string) {
		t.Helper()
		_, _, err := s.CreateClient(t.Context(), o.ID, spec)
		var e *usage.Error
		if !errors.As(err, &e) || e.Kind != usage.KindInvalid || e.Field != field || !strings.Contains(e.Message, inMessage) {
			t.Fatalf("CreateClient(%+v) = %v, want invalid %s with %q", spec, err, field, inMessage)
		}
	}
	f(auth.ClientSpec{}, "name", "name is required")
	f(auth.ClientSpec{Name: strings.Repeat("n", 257)}, "name", "limit is 256")
	f(auth.ClientSpec{Name: "a\x00b"}, "name", "name holds the control character U+0000 at character 2")
	f(auth.ClientSpec{Name: "   "}, "name", "name is required")
	f(auth.ClientSpec{Name: "bad\xffutf8"}, "name", "name holds invalid UTF-8 (byte 0xff) at character 4")
	f(auth.ClientSpec{Name: "bad\uFFFD"}, "name", "name holds U+FFFD")
	f(auth.ClientSpec{Name: "a\u202eb"}, "name", "name holds the invisible formatting character U+202E")
	f(auth.ClientSpec{Name: "CRM", Permissions: []string{usage.PermEventAdd, "usage:everything"}}, "permissions", `"usage:everything" is not one of usage:event:add, `)
	f(auth.ClientSpec{Name: "CRM", AccessTokenValidity: 299 * time.Second}, "accessTokenValiditySeconds", "from 300 to 172800")
	f(auth.ClientSpec{Name: "CRM", AccessTokenValidity: 172801 * time.Second}, "accessTokenValiditySeconds", "from 300 to 172800")
	f(auth.ClientSpec{Name: "CRM", AccessTokenValidity: -time.Hour}, "accessTokenValiditySeconds", "from 300 to 172800")
	f(auth.ClientSpec{Name: "CRM", Description: strings.Repeat("d", 1025)}, "description", "limit is 1024")

	c, _ := mustClient(t, s, o.ID, auth.ClientSpec{Name: "CRM", Permissions: []string{usage.PermEventAdd, usage.PermEventAdd}})
	if c.AccessTokenValidity != 86400*time.Second || len(c.Permissions) != 1 {
		t.Fatalf("defaults not applied: %+v", c)
	}
	_, _, err := s.CreateClient(t.Context(), "no-such-org", auth.ClientSpec{Name: "CRM"})
	wantKind(t, err, usage.KindNotFound, "no-such-org")
}

func TestOrganizations(t *testing.T) {
	s, _, _ := MustService(t)
	for _, name := range []string{"", " ", "a\x00", "\xff", "\uFFFD", "x\u2029"} {
		_, err := s.CreateOrganization(t.Context(), name)
		var e *usage.Error
		if !errors.As(err, &e) || e.Kind != usage.KindInvalid || e.Field != "name" {
			t.Fatalf("name %q: %v", name, err)
		}
	}
	a := mustOrg(t, s)
	b := mustOrg(t, s)
	if a.ID == b.ID || a.CreatedAt.IsZero() {
		t.Fatal("ids not unique or no creation time")
	}
	orgs, err := s.Organizations(t.Context())
	if err != nil || len(orgs) != 2 || orgs[0].ID > orgs[1].ID {
		t.Fatalf("Organizations = %v, %v", orgs, err)
	}
	if got, err := s.Organization(t.Context(), a.ID); err != nil || got != a {
		t.Fatalf("Organization = %v, %v", got, err)
	}
	_, err = s.Organization(t.Context(), "missing")
	wantKind(t, err, usage.KindNotFound, "missing")
}

func TestCrossOrganizationClient(t *testing.T) {
	s, _, _ := MustService(t)
	a, b := mustOrg(t, s), mustOrg(t, s)
	c, _ := mustClient(t, s, a.ID, auth.ClientSpec{Name: "CRM"})
	if _, err := s.Client(t.Context(), a.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err := s.Client(t.Context(), b.ID, c.ID)
	wantKind(t, err, usage.KindNotFound, "not found")
	wantKind(t, s.DeleteClient(t.Context(), b.ID, c.ID), usage.KindNotFound, "not found")
	_, err = s.RotateSecret(t.Context(), b.ID, c.ID)
	wantKind(t, err, usage.KindNotFound, "not found")
	cs, err := s.Clients(t.Context(), b.ID)
	if err != nil || len(cs) != 0 {
		t.Fatalf("Clients(b) = %v, %v", cs, err)
	}
	cs, err = s.Clients(t.Context(), a.ID)
	if err != nil || len(cs) != 1 || cs[0].ID != c.ID || cs[0].SecretHash != nil {
		t.Fatalf("Clients(a) = %v, %v", cs, err)
	}
	_, err = s.Clients(t.Context(), "missing")
	wantKind(t, err, usage.KindNotFound, "missing")
}

func TestUpdateClient(t *testing.T) {
	s, _, _ := MustService(t)
	o, other := mustOrg(t, s), mustOrg(t, s)
	c, secret := mustClient(t, s, o.ID, auth.ClientSpec{Name: "CRM", Permissions: []string{usage.PermEventAdd}})
	tok, _, err := s.IssueToken(t.Context(), c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.UpdateClient(t.Context(), o.ID, c.ID, auth.ClientSpec{Name: "Billing", Description: "nightly",
		Permissions: []string{usage.PermOrganizationView, usage.PermOrganizationView}, AccessTokenValidity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != c.ID || u.Name != "Billing" || u.Description != "nightly" || u.AccessTokenValidity != time.Hour ||
		!u.CreatedAt.Equal(c.CreatedAt) || len(u.Permissions) != 1 || u.SecretHash != nil {
		t.Fatalf("updated client %+v", u)
	}
	// The token issued before still works, with the new permissions.
	p, err := s.Authenticate(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Has(usage.PermEventAdd) || !p.Has(usage.PermOrganizationView) || p.ClientName != "Billing" {
		t.Fatalf("principal after update %+v", p)
	}
	if _, _, err := s.IssueToken(t.Context(), c.ID, secret); err != nil {
		t.Fatalf("secret after update: %v", err)
	}
	// Absent validity is the default, as on create.
	u, err = s.UpdateClient(t.Context(), o.ID, c.ID, auth.ClientSpec{Name: "Billing"})
	if err != nil || u.AccessTokenValidity != auth.DefaultTokenValidity || len(u.Permissions) != 0 {
		t.Fatalf("update to defaults: %+v, %v", u, err)
	}

	_, err = s.UpdateClient(t.Context(), other.ID, c.ID, auth.ClientSpec{Name: "x"})
	wantKind(t, err, usage.KindNotFound, c.ID)
	_, err = s.UpdateClient(t.Context(), o.ID, "nope", auth.ClientSpec{Name: "x"})
	wantKind(t, err, usage.KindNotFound, "nope")
	_, err = s.UpdateClient(t.Context(), o.ID, c.ID, auth.ClientSpec{Name: ""})
	wantKind(t, err, usage.KindInvalid, "name is required")
	_, err = s.UpdateClient(t.Context(), o.ID, c.ID, auth.ClientSpec{Name: "x", Permissions: []string{"usage:all"}})
	wantKind(t, err, usage.KindInvalid, "usage:all")
	if got, err := s.Client(t.Context(), o.ID, c.ID); err != nil || got.Name != "Billing" {
		t.Fatalf("a refused update changed the client: %+v, %v", got, err)
	}
}
