package tenancy_test

import (
	"testing"

	"github.com/usaged/usaged/tenancy"
	"github.com/usaged/usaged/usage"
)

// scopedWorld is two partners: A with resellers A1 and A2, a collection,
// and a service under each reseller; B with reseller B1 and its service.
type scopedWorld struct {
	reg                  *tenancy.Registry
	pA, pB               usage.Partner
	xA1, xA2, xB1        usage.Reseller
	colA                 usage.Collection
	sA1, sA2, sB1        usage.Service
	admin, partnerA      tenancy.Caller
	resellerA1, serviceA tenancy.Caller
}

func mustScopedWorld(t *testing.T) *scopedWorld {
	t.Helper()
	ctx := t.Context()
	reg, done := MustRegistry(t, t.TempDir())
	t.Cleanup(done)
	w := &scopedWorld{reg: reg}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	w.pA, err = reg.CreatePartner(ctx, "A")
	must(err)
	w.pB, err = reg.CreatePartner(ctx, "B")
	must(err)
	w.xA1, err = reg.CreateReseller(ctx, w.pA.GUID, "A1")
	must(err)
	w.xA2, err = reg.CreateReseller(ctx, w.pA.GUID, "A2")
	must(err)
	w.xB1, err = reg.CreateReseller(ctx, w.pB.GUID, "B1")
	must(err)
	w.colA, err = reg.CreateCollection(ctx, usage.Collection{Name: "cA", PartnerGUID: w.pA.GUID})
	must(err)
	_, err = reg.CreateCollection(ctx, usage.Collection{Name: "cA2", PartnerGUID: w.pA.GUID})
	must(err)
	_, err = reg.CreateCollection(ctx, usage.Collection{Name: "cB", PartnerGUID: w.pB.GUID})
	must(err)
	w.sA1, err = reg.CreateService(ctx, usage.Service{Name: "sA1", ResellerGUID: w.xA1.GUID, CollectionGUID: w.colA.GUID})
	must(err)
	w.sA2, err = reg.CreateService(ctx, usage.Service{Name: "sA2", ResellerGUID: w.xA2.GUID})
	must(err)
	w.sB1, err = reg.CreateService(ctx, usage.Service{Name: "sB1", ResellerGUID: w.xB1.GUID})
	must(err)
	w.admin = tenancy.Caller{Admin: true}
	w.partnerA = tenancy.Caller{Scope: usage.Scope{Kind: usage.ScopePartner, GUID: w.pA.GUID}}
	w.resellerA1 = tenancy.Caller{Scope: usage.Scope{Kind: usage.ScopeReseller, GUID: w.xA1.GUID}}
	w.serviceA = tenancy.Caller{Scope: usage.Scope{Kind: usage.ScopeService, GUID: w.sA1.GUID}}
	return w
}

// wantErrKind checks err is nil for kind 0, else of kind k.
func wantErrKind(t *testing.T, what string, err error, k usage.Kind) {
	t.Helper()
	if k == 0 && err != nil || k != 0 && (err == nil || usage.KindOf(err) != k) {
		t.Errorf("%s: got %v (kind %v), want kind %v", what, err, usage.KindOf(err), k)
	}
}

// Each caller sees its part of the hierarchy; the rest is not found.
func TestScopedReads(t *testing.T) {
	w := mustScopedWorld(t)
	const ok, nf = usage.Kind(0), usage.KindNotFound
	for _, c := range []struct {
		name       string
		who        tenancy.Caller
		services   [3]usage.Kind // sA1, sA2, sB1
		resellers  [3]usage.Kind // A1, A2, B1
		partnerA   usage.Kind
		partnerB   usage.Kind
		collection int // how many collections it lists
	}{
		{"admin", w.admin, [3]usage.Kind{ok, ok, ok}, [3]usage.Kind{ok, ok, ok}, ok, ok, 3},
		{"partner A", w.partnerA, [3]usage.Kind{ok, ok, nf}, [3]usage.Kind{ok, ok, nf}, ok, nf, 2},
		{"reseller A1", w.resellerA1, [3]usage.Kind{ok, nf, nf}, [3]usage.Kind{ok, nf, nf}, usage.KindForbidden, usage.KindForbidden, 2},
		{"service A1", w.serviceA, [3]usage.Kind{ok, nf, nf}, [3]usage.Kind{nf, nf, nf}, usage.KindForbidden, usage.KindForbidden, 1},
	} {
		reg := w.reg.As(c.who)
		seen := 0
		for i, s := range []usage.Service{w.sA1, w.sA2, w.sB1} {
			_, err := reg.Service(s.GUID)
			wantErrKind(t, c.name+" Service "+s.Name, err, c.services[i])
			if err == nil {
				seen++
			}
		}
		listed := 0
		reg.Services(func(*usage.Service) bool { listed++; return true })
		if listed != seen {
			t.Errorf("%s: Services lists %d, Service finds %d", c.name, listed, seen)
		}
		for i, x := range []usage.Reseller{w.xA1, w.xA2, w.xB1} {
			_, err := reg.Reseller(x.GUID)
			wantErrKind(t, c.name+" Reseller "+x.Name, err, c.resellers[i])
		}
		_, err := reg.Partner(w.pA.GUID)
		wantErrKind(t, c.name+" Partner A", err, c.partnerA)
		_, err = reg.Resellers(w.pB.GUID)
		wantErrKind(t, c.name+" Resellers of B", err, c.partnerB)
		if cols := reg.Collections(); len(cols) != c.collection {
			t.Errorf("%s: %d collections, want %d", c.name, len(cols), c.collection)
		}
		_, err = reg.Collection(w.colA.GUID)
		wantErrKind(t, c.name+" Collection cA", err, ok)
		_, err = reg.Partners()
		wantErrKind(t, c.name+" Partners", err, map[bool]usage.Kind{true: ok, false: usage.KindForbidden}[c.who.Admin])
	}
}

// Changes are refused to keys that may never make them, and a key cannot
// reach outside its scope, nor learn of a taken GUID there.
func TestScopedChanges(t *testing.T) {
	w := mustScopedWorld(t)
	ctx := t.Context()
	partnerB := tenancy.Caller{Scope: usage.Scope{Kind: usage.ScopePartner, GUID: w.pB.GUID}}

	_, err := w.reg.As(w.serviceA).CreateService(ctx, usage.Service{Name: "x", ResellerGUID: w.xA1.GUID})
	wantErrKind(t, "service key creates", err, usage.KindForbidden)
	_, err = w.reg.As(partnerB).CreateService(ctx, usage.Service{Name: "x", ResellerGUID: w.xA1.GUID})
	wantErrKind(t, "partner B creates under A1", err, usage.KindNotFound)
	_, err = w.reg.As(w.resellerA1).CreateService(ctx, usage.Service{Name: "x", ResellerGUID: w.xA2.GUID})
	wantErrKind(t, "reseller A1 creates under A2", err, usage.KindNotFound)
	_, err = w.reg.As(w.resellerA1).CreateService(ctx, usage.Service{Name: "x", ResellerGUID: w.xA1.GUID})
	wantErrKind(t, "reseller A1 creates under A1", err, 0)
	_, err = w.reg.As(partnerB).CreateService(ctx, usage.Service{GUID: w.sA1.GUID, Name: "x", ResellerGUID: w.xB1.GUID})
	wantErrKind(t, "partner B takes sA1's GUID", err, usage.KindNotFound)
	_, err = w.reg.As(w.partnerA).CreateService(ctx, usage.Service{GUID: w.sA1.GUID, Name: "x", ResellerGUID: w.xA2.GUID})
	wantErrKind(t, "partner A takes sA1's GUID", err, usage.KindConflict)

	_, err = w.reg.As(w.serviceA).SetServiceStatus(ctx, w.sA1.GUID, usage.StatusBlocked)
	wantErrKind(t, "service key blocks its service", err, usage.KindForbidden)
	_, err = w.reg.As(w.resellerA1).SetServiceStatus(ctx, w.sA2.GUID, usage.StatusBlocked)
	wantErrKind(t, "reseller A1 blocks sA2", err, usage.KindNotFound)
	_, err = w.reg.As(w.resellerA1).SetServiceStatus(ctx, w.sA1.GUID, usage.StatusBlocked)
	wantErrKind(t, "reseller A1 blocks sA1", err, 0)

	_, err = w.reg.As(w.resellerA1).CreateCollection(ctx, usage.Collection{Name: "c"})
	wantErrKind(t, "reseller key creates a collection", err, usage.KindForbidden)
	_, err = w.reg.As(w.partnerA).CreateCollection(ctx, usage.Collection{Name: "c", PartnerGUID: w.pB.GUID})
	wantErrKind(t, "partner A creates in B", err, usage.KindNotFound)
	col, err := w.reg.As(w.partnerA).CreateCollection(ctx, usage.Collection{Name: "c"})
	if err != nil || col.PartnerGUID != w.pA.GUID {
		t.Errorf("partner A creates in its own: %+v, %v", col, err)
	}

	_, err = w.reg.As(w.partnerA).CreateReseller(ctx, w.pB.GUID, "x")
	wantErrKind(t, "partner A adds a reseller to B", err, usage.KindNotFound)
	_, err = w.reg.As(w.resellerA1).CreateReseller(ctx, w.pA.GUID, "x")
	wantErrKind(t, "reseller key adds a reseller", err, usage.KindForbidden)

	_, err = w.reg.As(w.partnerA).CreatePartner(ctx, "x")
	wantErrKind(t, "partner key creates a partner", err, usage.KindForbidden)
	_, _, err = w.reg.As(w.partnerA).CreateAPIKey(ctx, "x", w.partnerA.Scope)
	wantErrKind(t, "partner key creates a key", err, usage.KindForbidden)
	_, err = w.reg.As(w.partnerA).APIKeys()
	wantErrKind(t, "partner key lists keys", err, usage.KindForbidden)
	wantErrKind(t, "partner key deletes a key", w.reg.As(w.partnerA).DeleteAPIKey(ctx, [32]byte{1}), usage.KindForbidden)
}
