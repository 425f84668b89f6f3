package attrib_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usaged/usaged/meter/attrib"
)

// request returns a request with headers from kv pairs; a repeated name
// adds a value.
func request(kv ...string) *http.Request {
	r := httptest.NewRequest("GET", "http://127.0.0.1/api/v2/things", nil)
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

func bearer(tok string) *http.Request { return request("Authorization", "Bearer "+tok) }

func TestBearerToken(t *testing.T) {
	f := func(want string, wantOK bool, auth ...string) {
		t.Helper()
		kv := make([]string, 0, 2*len(auth))
		for _, a := range auth {
			kv = append(kv, "Authorization", a)
		}
		got, ok := attrib.BearerToken(request(kv...))
		if got != want || ok != wantOK {
			t.Fatalf("BearerToken(%q) = %q, %v; want %q, %v", auth, got, ok, want, wantOK)
		}
	}
	f("abc", true, "Bearer abc")
	f("abc", true, "bearer abc")
	f("abc", true, "BEARER  abc ")
	f("v1.eyJ9.sig-_~+/=", true, "Bearer v1.eyJ9.sig-_~+/=")
	f("", false)
	f("", false, "")
	f("", false, "Bearer")
	f("", false, "Bearer ")
	f("", false, "Basic Zm9vOmJhcg==")
	f("", false, "Bearerabc")
	f("", false, "Bearer a b")
	f("", false, "Bearer a\tb")
	f("", false, "Bearer a\x00b")
	f("", false, "Bearer a\x7fb")
	f("", false, "Bearer tökén")
	f("", false, "Bearer a", "Bearer b") // which one the upstream uses is not known
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  x.y.z ", "Basic Zm9v", "Bearer", "", "Bearer a b", "Bearer \x00", "BEARER\tx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := request()
		r.Header["Authorization"] = []string{h}
		tok, ok := attrib.BearerToken(r)
		if !ok {
			if tok != "" {
				t.Fatalf("not ok, but token %q", tok)
			}
			return
		}
		if tok == "" {
			t.Fatal("ok with an empty token")
		}
		for i := 0; i < len(tok); i++ {
			if tok[i] <= ' ' || tok[i] >= 0x7f {
				t.Fatalf("token %q holds byte %#x", tok, tok[i])
			}
		}
		if !strings.Contains(h, tok) {
			t.Fatalf("token %q is not in the header %q", tok, h)
		}
		// What comes out goes back in unchanged: the token can be forwarded.
		r.Header["Authorization"] = []string{"Bearer " + tok}
		if again, ok := attrib.BearerToken(r); !ok || again != tok {
			t.Fatalf("round trip of %q gave %q, %v", tok, again, ok)
		}
	})
}

func TestHeaders(t *testing.T) {
	h, err := attrib.NewHeaders(attrib.HeaderConfig{Organization: "X-Org-Id", Client: "X-Client-Id", ClientName: "X-Client-Name", User: "X-User-Id"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(want attrib.Identity, wantOK bool, kv ...string) {
		t.Helper()
		got, ok, err := h.Attribute(t.Context(), request(kv...))
		if got != want || ok != wantOK || err != nil {
			t.Fatalf("Attribute(%q) = %+v, %v, %v; want %+v, %v", kv, got, ok, err, want, wantOK)
		}
	}
	f(attrib.Identity{OrganizationID: "o1", ClientID: "c1", ClientName: "CRM", UserID: "u1"}, true,
		"X-Org-Id", "o1", "X-Client-Id", "c1", "X-Client-Name", "CRM", "X-User-Id", "u1")
	f(attrib.Identity{OrganizationID: "o1", ClientID: "c1"}, true, "x-org-id", " o1 ", "X-CLIENT-ID", "c1")
	f(attrib.Identity{}, false)
	f(attrib.Identity{}, false, "X-Org-Id", "o1")
	f(attrib.Identity{}, false, "X-Client-Id", "c1")
	f(attrib.Identity{}, false, "X-Org-Id", "", "X-Client-Id", "c1")
	// A repeated header may hold a client's value beside the gateway's.
	f(attrib.Identity{}, false, "X-Org-Id", "o1", "X-Org-Id", "o2", "X-Client-Id", "c1")
	f(attrib.Identity{OrganizationID: "o1", ClientID: "c1"}, true, "X-Org-Id", "o1", "X-Client-Id", "c1", "X-User-Id", "u1", "X-User-Id", "u2")
	// Values usaged would refuse to ingest.
	f(attrib.Identity{}, false, "X-Org-Id", strings.Repeat("o", 257), "X-Client-Id", "c1")
	f(attrib.Identity{}, false, "X-Org-Id", "o1", "X-Client-Id", "c\x01")
	f(attrib.Identity{}, false, "X-Org-Id", "o1", "X-Client-Id", "c1", "X-User-Id", "\xff")
}

func TestHeaderConfigValidate(t *testing.T) {
	_, err := attrib.NewHeaders(attrib.HeaderConfig{User: "X User"})
	if err == nil {
		t.Fatal("no error")
	}
	// Every problem at once.
	for _, want := range []string{"Organization is required", "Client is required", `User "X User" is not a valid`} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if _, err := attrib.NewHeaders(attrib.HeaderConfig{Organization: "X-Org", Client: "X-Client"}); err != nil {
		t.Fatal(err)
	}
}

// fixed is an Attributor with a fixed answer that counts its calls.
type fixed struct {
	id    attrib.Identity
	ok    bool
	err   error
	calls int
}

func (a *fixed) Attribute(context.Context, *http.Request) (attrib.Identity, bool, error) {
	a.calls++
	return a.id, a.ok, a.err
}

func TestChain(t *testing.T) {
	first := attrib.Identity{OrganizationID: "o1", ClientID: "first"}
	second := attrib.Identity{OrganizationID: "o1", ClientID: "second"}
	down := errors.New("usaged is down")
	jwksDown := errors.New("JWKS is down")

	// The first identity wins; later attributors are not asked.
	a, b, c := &fixed{}, &fixed{id: first, ok: true}, &fixed{id: second, ok: true}
	id, ok, err := attrib.Chain(a, nil, b, c).Attribute(t.Context(), request())
	if id != first || !ok || err != nil || a.calls != 1 || b.calls != 1 || c.calls != 0 {
		t.Fatalf("got %+v, %v, %v; calls %d %d %d", id, ok, err, a.calls, b.calls, c.calls)
	}
	// A failure does not stop the chain, and is dropped when a later one
	// identifies the request.
	id, ok, err = attrib.Chain(&fixed{err: down}, &fixed{id: second, ok: true}).Attribute(t.Context(), request())
	if id != second || !ok || err != nil {
		t.Fatalf("got %+v, %v, %v", id, ok, err)
	}
	// Nobody identifies it: every failure comes back.
	_, ok, err = attrib.Chain(&fixed{err: down}, &fixed{}, &fixed{err: jwksDown}).Attribute(t.Context(), request())
	if ok || !errors.Is(err, down) || !errors.Is(err, jwksDown) {
		t.Fatalf("got %v, %v", ok, err)
	}
	if _, ok, err := attrib.Chain().Attribute(t.Context(), request()); ok || err != nil {
		t.Fatalf("empty chain: %v, %v", ok, err)
	}
	// Chain keeps its own copy of the list.
	list := []attrib.Attributor{&fixed{id: first, ok: true}}
	ch := attrib.Chain(list...)
	list[0] = &fixed{}
	if id, _, _ := ch.Attribute(t.Context(), request()); id != first {
		t.Fatalf("chain changed with its argument: %+v", id)
	}
}

// TestChainOrder runs real attributors: trusted headers first, then JWTs,
// and each answers only what it understands.
func TestChainOrder(t *testing.T) {
	h, err := attrib.NewHeaders(attrib.HeaderConfig{Organization: "X-Org-Id", Client: "X-Client-Id"})
	if err != nil {
		t.Fatal(err)
	}
	idp := mustIdP(t)
	j := idp.mustJWT(t, attrib.JWTConfig{})
	ch := attrib.Chain(h, j)
	tok := idp.sign(t, idp.rsa, "rsa-1", "RS256", idp.claims())

	id, ok, err := ch.Attribute(t.Context(), bearer(tok))
	if !ok || err != nil || id.ClientID != "client-1" {
		t.Fatalf("JWT only: %+v, %v, %v", id, ok, err)
	}
	r := bearer(tok)
	r.Header.Set("X-Org-Id", "gw-org")
	r.Header.Set("X-Client-Id", "gw-client")
	id, ok, err = ch.Attribute(t.Context(), r)
	if !ok || err != nil || id != (attrib.Identity{OrganizationID: "gw-org", ClientID: "gw-client"}) {
		t.Fatalf("headers first: %+v, %v, %v", id, ok, err)
	}
	if _, ok, err := ch.Attribute(t.Context(), bearer("v1.not.jwt")); ok || err != nil {
		t.Fatalf("neither: %v, %v", ok, err)
	}
}
