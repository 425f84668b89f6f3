package tenancy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/tenancy"
	"github.com/usaged/usaged/usage"
)

var now = time.Date(2026, 5, 4, 10, 30, 0, 0, time.UTC)

// MustRegistry opens a registry on a fresh store in dir; reopen with the same
// dir to see what survives a restart.
func MustRegistry(tb testing.TB, dir string) (*tenancy.Registry, func()) {
	tb.Helper()
	db, err := pebble.Open(pebble.Config{Dir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	r, err := tenancy.New(context.Background(), tenancy.Config{Store: db, Now: func() time.Time { return now }})
	if err != nil {
		db.Close()
		tb.Fatal(err)
	}
	return r, func() { db.Close() }
}

func wantKind(t *testing.T, err error, k usage.Kind) {
	t.Helper()
	if usage.KindOf(err) != k || err == nil {
		t.Fatalf("got error %v (kind %v), want kind %v", err, usage.KindOf(err), k)
	}
}

func TestHierarchySurvivesRestart(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	r, closeDB := MustRegistry(t, dir)
	p, err := r.CreatePartner(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	x, err := r.CreateReseller(ctx, p.GUID, "Resale")
	if err != nil {
		t.Fatal(err)
	}
	col, err := r.CreateCollection(ctx, usage.Collection{Name: "Legal", PartnerGUID: p.GUID})
	if err != nil {
		t.Fatal(err)
	}
	var made []usage.Service
	for i, name := range []string{"b-second", "a-first", "c-third"} {
		s, err := r.CreateService(ctx, usage.Service{Name: name, ResellerGUID: x.GUID, CollectionGUID: col.GUID,
			Status: usage.StatusTrialActive, PrimaryDomain: name + ".example", CreatedOn: now.Add(time.Duration(i) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if s.PartnerGUID != p.GUID {
			t.Fatalf("service took partner %s, want the reseller's %s", s.PartnerGUID, p.GUID)
		}
		made = append(made, s)
	}
	if _, err := r.SetServiceStatus(ctx, made[1].GUID, usage.StatusBlocked); err != nil {
		t.Fatal(err)
	}
	k, secret, err := r.CreateAPIKey(ctx, "reports", usage.Scope{Kind: usage.ScopeReseller, GUID: x.GUID})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, tenancy.KeyPrefix) || len(secret) < 40 {
		t.Fatalf("key %q is not a long prefixed secret", secret)
	}
	closeDB()

	r, closeDB = MustRegistry(t, dir)
	defer closeDB()
	if got, ok := r.Partner(p.GUID); !ok || got.Name != "Acme" {
		t.Fatalf("partner after restart: %+v, %v", got, ok)
	}
	if got := r.Resellers(p.GUID); len(got) != 1 || got[0].GUID != x.GUID {
		t.Fatalf("resellers after restart: %+v", got)
	}
	if got, ok := r.Collection(col.GUID); !ok || got.SiteGUID.IsZero() {
		t.Fatalf("collection after restart: %+v, %v (a collection is always in a site)", got, ok)
	}
	var order []string
	r.Services(func(s *usage.Service) bool { order = append(order, s.Name); return true })
	if strings.Join(order, ",") != "b-second,a-first,c-third" {
		t.Fatalf("services listed as %v, want creation order", order)
	}
	if s, _ := r.Service(made[1].GUID); s.Status != usage.StatusBlocked {
		t.Fatalf("status after restart: %v", s.Status)
	}
	got, ok := r.Authenticate(secret)
	if !ok || got.Digest != k.Digest || got.Scope != k.Scope {
		t.Fatalf("key after restart: %+v, %v", got, ok)
	}
	if err := r.DeleteAPIKey(ctx, k.Digest); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Authenticate(secret); ok {
		t.Fatal("a deleted key still authenticates")
	}
	wantKind(t, r.DeleteAPIKey(ctx, k.Digest), usage.KindNotFound)
}

func TestRejects(t *testing.T) {
	ctx := t.Context()
	r, closeDB := MustRegistry(t, t.TempDir())
	defer closeDB()
	p, _ := r.CreatePartner(ctx, "P")
	other, _ := r.CreatePartner(ctx, "Other")
	x, _ := r.CreateReseller(ctx, p.GUID, "R")
	otherCol, _ := r.CreateCollection(ctx, usage.Collection{Name: "theirs", PartnerGUID: other.GUID})

	_, err := r.CreatePartner(ctx, "  ")
	wantKind(t, err, usage.KindInvalid)
	_, err = r.CreatePartner(ctx, strings.Repeat("x", tenancy.MaxNameLen+1))
	wantKind(t, err, usage.KindInvalid)
	// Every name is held to usage.CheckName, however it comes in.
	for _, bad := range []string{"a\x00b", "bad\xff", "\uFFFD", "a\u202eb"} {
		_, err = r.CreatePartner(ctx, bad)
		wantKind(t, err, usage.KindInvalid)
		_, err = r.CreateReseller(ctx, p.GUID, bad)
		wantKind(t, err, usage.KindInvalid)
		_, err = r.CreateCollection(ctx, usage.Collection{Name: bad, PartnerGUID: p.GUID})
		wantKind(t, err, usage.KindInvalid)
		_, err = r.CreateCollection(ctx, usage.Collection{Name: "C", SiteName: bad, PartnerGUID: p.GUID})
		wantKind(t, err, usage.KindInvalid)
		_, err = r.CreateService(ctx, usage.Service{Name: bad, ResellerGUID: x.GUID})
		wantKind(t, err, usage.KindInvalid)
		_, _, err = r.CreateAPIKey(ctx, bad, usage.Scope{Kind: usage.ScopePartner, GUID: p.GUID})
		wantKind(t, err, usage.KindInvalid)
	}
	_, err = r.CreateReseller(ctx, usage.NewGUID(), "R")
	wantKind(t, err, usage.KindNotFound)
	_, err = r.CreateService(ctx, usage.Service{Name: "S", ResellerGUID: usage.NewGUID()})
	wantKind(t, err, usage.KindNotFound)
	// A collection of another partner is as good as missing.
	_, err = r.CreateService(ctx, usage.Service{Name: "S", ResellerGUID: x.GUID, CollectionGUID: otherCol.GUID})
	wantKind(t, err, usage.KindNotFound)
	s, err := r.CreateService(ctx, usage.Service{Name: "S", ResellerGUID: x.GUID})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.CreateService(ctx, usage.Service{GUID: s.GUID, Name: "again", ResellerGUID: x.GUID})
	wantKind(t, err, usage.KindConflict)
	_, err = r.SetServiceStatus(ctx, usage.NewGUID(), usage.StatusBlocked)
	wantKind(t, err, usage.KindNotFound)
	_, _, err = r.CreateAPIKey(ctx, "k", usage.Scope{Kind: usage.ScopeService, GUID: usage.NewGUID()})
	wantKind(t, err, usage.KindNotFound)
	_, _, err = r.CreateAPIKey(ctx, "k", usage.Scope{GUID: s.GUID})
	wantKind(t, err, usage.KindInvalid)
	for _, bad := range []string{"", "usk_", "usk_nope", "Bearer x"} {
		if _, ok := r.Authenticate(bad); ok {
			t.Errorf("Authenticate(%q) succeeded", bad)
		}
	}
}

func TestScopeCovers(t *testing.T) {
	p, x, s := usage.NewGUID(), usage.NewGUID(), usage.NewGUID()
	svc := usage.Service{GUID: s, PartnerGUID: p, ResellerGUID: x}
	f := func(sc usage.Scope, want bool) {
		t.Helper()
		if got := sc.Covers(&svc); got != want {
			t.Errorf("%v %s covers: got %v, want %v", sc.Kind, sc.GUID, got, want)
		}
	}
	f(usage.Scope{Kind: usage.ScopePartner, GUID: p}, true)
	f(usage.Scope{Kind: usage.ScopeReseller, GUID: x}, true)
	f(usage.Scope{Kind: usage.ScopeService, GUID: s}, true)
	f(usage.Scope{Kind: usage.ScopePartner, GUID: x}, false)
	f(usage.Scope{Kind: usage.ScopeReseller, GUID: p}, false)
	f(usage.Scope{Kind: usage.ScopeService, GUID: p}, false)
	f(usage.Scope{GUID: s}, false)
}
