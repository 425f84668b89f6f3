package attrib_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/usaged/usaged/internal/fakeclock"
	"github.com/usaged/usaged/meter/attrib"
)

const (
	issuer   = "https://idp.example.com/"
	audience = "usage-api"
)

// idp is an identity provider: two signing keys and their JWKS on
// 127.0.0.1, which can be made to fail.
type idp struct {
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
	other   *rsa.PrivateKey // signs forgeries; not in the JWKS
	url     string
	clk     *fakeclock.Clock
	fetches atomic.Int64
	down    atomic.Bool
}

// mustIdP generates keys and serves their JWKS.
func mustIdP(t testing.TB) *idp {
	t.Helper()
	p := &idp{clk: fakeclock.New(time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC))}
	var err error
	if p.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if p.other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if p.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	ecPub, err := p.ec.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	xy := ecPub.Bytes()[1:] // uncompressed point: 0x04, X, Y
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
			"n": b64(p.rsa.N.Bytes()), "e": b64(big.NewInt(int64(p.rsa.E)).Bytes())},
		{"kty": "EC", "kid": "ec-1", "use": "sig", "alg": "ES256", "crv": "P-256",
			"x": b64(xy[:32]), "y": b64(xy[32:])},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		if p.down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL + "/.well-known/jwks.json"
	return p
}

// claims returns valid claims, fresh for each token.
func (p *idp) claims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": issuer, "aud": audience, "iat": p.clk.Now().Unix(), "exp": p.clk.Now().Add(time.Hour).Unix(),
		"org_id": "org-1", "client_id": "client-1", "client_name": "CRM", "sub": "user-1",
	}
}

// with returns claims with kv pairs set; a nil value removes a claim.
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// sign signs claims with key by alg, with key id kid unless it is empty.
func (p *idp) sign(t testing.TB, key any, kid, alg string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustJWT returns a JWT for p, with cfg's unset fields filled in.
func (p *idp) mustJWT(t testing.TB, cfg attrib.JWTConfig) *attrib.JWT {
	t.Helper()
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = p.url
	}
	if cfg.Issuer == "" {
		cfg.Issuer = issuer
	}
	if cfg.Audience == "" {
		cfg.Audience = audience
	}
	if cfg.Now == nil {
		cfg.Now = p.clk.Now
	}
	j, err := attrib.NewJWT(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestJWT(t *testing.T) {
	p := mustIdP(t)
	j := p.mustJWT(t, attrib.JWTConfig{})
	want := attrib.Identity{OrganizationID: "org-1", ClientID: "client-1", ClientName: "CRM", UserID: "user-1"}
	f := func(name, tok string, want attrib.Identity, wantOK bool) {
		t.Helper()
		got, ok, err := j.Attribute(t.Context(), bearer(tok))
		if got != want || ok != wantOK || err != nil {
			t.Fatalf("%s: got %+v, %v, %v; want %+v, %v", name, got, ok, err, want, wantOK)
		}
	}
	none := attrib.Identity{}
	rsaPEM := pemPublic(t, &p.rsa.PublicKey)

	f("RS256", p.sign(t, p.rsa, "rsa-1", "RS256", p.claims()), want, true)
	f("ES256", p.sign(t, p.ec, "ec-1", "ES256", p.claims()), want, true)
	f("no kid: every key is tried", p.sign(t, p.rsa, "", "RS256", p.claims()), want, true)
	f("numbers", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "org_id", json.Number("12345678901234567890"), "client_id", 42, "sub", 7.5)),
		attrib.Identity{OrganizationID: "12345678901234567890", ClientID: "42", ClientName: "CRM", UserID: "7.5"}, true)
	f("azp when no client_id", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "client_id", nil, "azp", "client-azp")),
		attrib.Identity{OrganizationID: "org-1", ClientID: "client-azp", ClientName: "CRM", UserID: "user-1"}, true)
	f("client_id before azp", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "azp", "client-azp")), want, true)
	f("optional claims absent", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "client_name", nil, "sub", nil)),
		attrib.Identity{OrganizationID: "org-1", ClientID: "client-1"}, true)
	f("aud among several", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "aud", []string{"other", audience})), want, true)
	f("expired within the clock skew", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "exp", p.clk.Now().Add(-10*time.Second).Unix())), want, true)

	f("wrong issuer", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "iss", "https://evil.example.com/")), none, false)
	f("no issuer", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "iss", nil)), none, false)
	f("wrong audience", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "aud", "another-api")), none, false)
	f("no audience", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "aud", nil)), none, false)
	f("expired", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "exp", p.clk.Now().Add(-time.Hour).Unix())), none, false)
	f("no exp", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "exp", nil)), none, false)
	f("not yet valid", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "nbf", p.clk.Now().Add(time.Hour).Unix())), none, false)
	f("bad signature", p.sign(t, p.other, "rsa-1", "RS256", p.claims()), none, false)
	f("key of another type", p.sign(t, p.rsa, "ec-1", "RS256", p.claims()), none, false)
	f("alg none", p.sign(t, jwt.UnsafeAllowNoneSignatureType, "rsa-1", "none", p.claims()), none, false)
	f("HS256 with the public key as secret", p.sign(t, rsaPEM, "rsa-1", "HS256", p.claims()), none, false)
	f("no organization", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "org_id", nil)), none, false)
	f("no client", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "client_id", nil)), none, false)
	f("organization of another type", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "org_id", true)), none, false)
	f("organization too long to ingest", p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "org_id", strings.Repeat("o", 257))), none, false)
	f("not a JWT", "v1.eyJjIjoiYyJ9.c2ln", none, false)

	// A payload swapped under a valid signature.
	good := strings.Split(p.sign(t, p.rsa, "rsa-1", "RS256", p.claims()), ".")
	forged := strings.Split(p.sign(t, p.other, "rsa-1", "RS256", with(p.claims(), "org_id", "org-2")), ".")
	f("tampered payload", good[0]+"."+forged[1]+"."+good[2], none, false)

	if _, ok, err := j.Attribute(t.Context(), request()); ok || err != nil {
		t.Fatalf("no token: %v, %v", ok, err)
	}
}

// pemPublic is the PEM of pub, which an HS256 forger would use as secret.
func pemPublic(t *testing.T, pub *rsa.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return []byte("-----BEGIN PUBLIC KEY-----\n" + base64.StdEncoding.EncodeToString(der) + "\n-----END PUBLIC KEY-----\n")
}

func TestJWTClaimNames(t *testing.T) {
	p := mustIdP(t)
	j := p.mustJWT(t, attrib.JWTConfig{OrgClaim: "tenant", ClientClaim: "cid", ClientNameClaim: "cname", UserClaim: "uid"})
	c := jwt.MapClaims{"iss": issuer, "aud": audience, "exp": p.clk.Now().Add(time.Hour).Unix(),
		"tenant": "t-9", "cid": 1001, "cname": "Billing", "uid": "u-3", "sub": "ignored"}
	id, ok, err := j.Attribute(t.Context(), bearer(p.sign(t, p.ec, "ec-1", "ES256", c)))
	if want := (attrib.Identity{OrganizationID: "t-9", ClientID: "1001", ClientName: "Billing", UserID: "u-3"}); id != want || !ok || err != nil {
		t.Fatalf("got %+v, %v, %v; want %+v", id, ok, err, want)
	}
	// A configured client claim has no azp fallback.
	c = with(c, "cid", nil, "azp", "client-azp")
	if _, ok, err := j.Attribute(t.Context(), bearer(p.sign(t, p.ec, "ec-1", "ES256", c))); ok || err != nil {
		t.Fatalf("azp used for a configured client claim: %v, %v", ok, err)
	}
}

// TestJWTUnknownKID: a key id not in the JWKS fetches it again, in case the
// provider rotated its keys, but not for every made-up key id.
func TestJWTUnknownKID(t *testing.T) {
	p := mustIdP(t)
	j := p.mustJWT(t, attrib.JWTConfig{})
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches at start, want 1", n)
	}
	for i := range 3 {
		if _, ok, err := j.Attribute(t.Context(), bearer(p.sign(t, p.other, "rotated", "RS256", p.claims()))); ok || err != nil {
			t.Fatalf("unknown kid, try %d: %v, %v", i, ok, err)
		}
	}
	if n := p.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after three unknown kids, want 2", n)
	}
}

// TestJWTDown: a JWKS that cannot be fetched is reported, as an error to
// log, for each token it keeps from being verified; keys fetched before
// keep working.
func TestJWTDown(t *testing.T) {
	p := mustIdP(t)
	p.down.Store(true)
	j := p.mustJWT(t, attrib.JWTConfig{}) // an outage does not keep it from starting
	tok := p.sign(t, p.rsa, "rsa-1", "RS256", p.claims())
	_, ok, err := j.Attribute(t.Context(), bearer(tok))
	if ok || err == nil || !strings.Contains(err.Error(), "JWKS") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("JWKS down: %v, %v", ok, err)
	}
	// Tokens that are not JWTs are none of its business, outage or not.
	if _, ok, err := j.Attribute(t.Context(), bearer("v1.eyJjIjoiYyJ9.c2ln")); ok || err != nil {
		t.Fatalf("not a JWT while JWKS down: %v, %v", ok, err)
	}

	// Down at start, back by the first token: the unknown key id fetches it.
	p2 := mustIdP(t)
	p2.down.Store(true)
	j2 := p2.mustJWT(t, attrib.JWTConfig{})
	p2.down.Store(false)
	if _, ok, err := j2.Attribute(t.Context(), bearer(p2.sign(t, p2.rsa, "rsa-1", "RS256", p2.claims()))); !ok || err != nil {
		t.Fatalf("JWKS back: %v, %v", ok, err)
	}

	// Down after a good fetch: known keys still verify.
	p3 := mustIdP(t)
	j3 := p3.mustJWT(t, attrib.JWTConfig{})
	p3.down.Store(true)
	if _, ok, err := j3.Attribute(t.Context(), bearer(p3.sign(t, p3.other, "rotated", "RS256", p3.claims()))); ok || err == nil {
		t.Fatalf("unknown kid while JWKS down: %v, %v", ok, err)
	}
	if _, ok, err := j3.Attribute(t.Context(), bearer(p3.sign(t, p3.ec, "ec-1", "ES256", p3.claims()))); !ok || err != nil {
		t.Fatalf("known kid while JWKS down: %v, %v", ok, err)
	}
}

func TestJWTConfigValidate(t *testing.T) {
	_, err := attrib.NewJWT(t.Context(), attrib.JWTConfig{JWKSURL: "ftp://idp"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"JWKSURL must be an http or https URL", "Issuer is required", "Audience is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
}

// BenchmarkJWT measures a verified token taken from the cache, and a
// signature check (two tokens alternating through a cache of one).
func BenchmarkJWT(b *testing.B) {
	p := mustIdP(b)
	cached := p.mustJWT(b, attrib.JWTConfig{})
	verified := p.mustJWT(b, attrib.JWTConfig{MaxEntries: 1})
	for _, alg := range []struct {
		name, kid string
		key       any
	}{{"RS256", "rsa-1", p.rsa}, {"ES256", "ec-1", p.ec}} {
		reqs := []*http.Request{
			bearer(p.sign(b, alg.key, alg.kid, alg.name, p.claims())),
			bearer(p.sign(b, alg.key, alg.kid, alg.name, with(p.claims(), "sub", "user-2"))),
		}
		for _, c := range []struct {
			name string
			j    *attrib.JWT
		}{{"cached", cached}, {"verify", verified}} {
			b.Run(alg.name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i++
					if _, ok, _ := c.j.Attribute(b.Context(), reqs[i%2]); !ok {
						b.Fatal("not identified")
					}
				}
			})
		}
	}
}

// A verified token is remembered until its exp, at most TTL; a refused one
// is not remembered; the oldest go past MaxEntries.
func TestJWTCache(t *testing.T) {
	p := mustIdP(t)
	j := p.mustJWT(t, attrib.JWTConfig{TTL: 5 * time.Minute, MaxEntries: 2})
	start := p.clk.Now()
	long := p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "exp", start.Add(time.Hour).Unix()))
	short := p.sign(t, p.rsa, "rsa-1", "RS256", with(p.claims(), "exp", start.Add(2*time.Minute).Unix()))
	forged := p.sign(t, p.other, "rsa-1", "RS256", p.claims())
	for _, tok := range []string{long, short, forged} {
		j.Attribute(t.Context(), bearer(tok))
	}
	if until, ok := j.CachedUntil(long); !ok || !until.Equal(start.Add(5*time.Minute)) {
		t.Errorf("a token good for an hour is trusted until %v (%v), want TTL", until, ok)
	}
	if until, ok := j.CachedUntil(short); !ok || !until.Equal(start.Add(2*time.Minute)) {
		t.Errorf("a token good for 2 minutes is trusted until %v (%v), want its exp", until, ok)
	}
	if _, ok := j.CachedUntil(forged); ok {
		t.Error("a refused token is remembered")
	}
	// Past its exp (and the clock skew) the short token is verified again,
	// and refused.
	p.clk.Set(start.Add(3 * time.Minute))
	if _, ok, _ := j.Attribute(t.Context(), bearer(short)); ok {
		t.Error("an expired token is still taken")
	}
	if _, ok, _ := j.Attribute(t.Context(), bearer(long)); !ok {
		t.Error("the long token is refused")
	}
	// Past TTL the long token is verified again: trusted for another TTL.
	p.clk.Set(start.Add(6 * time.Minute))
	if _, ok, _ := j.Attribute(t.Context(), bearer(long)); !ok {
		t.Error("the long token is refused after TTL")
	}
	if until, _ := j.CachedUntil(long); !until.Equal(p.clk.Now().Add(5 * time.Minute)) {
		t.Errorf("after TTL the long token is trusted until %v", until)
	}
	// Two at most: a third verified token pushes out the oldest.
	third := p.sign(t, p.ec, "ec-1", "ES256", with(p.claims(), "exp", start.Add(time.Hour).Unix()))
	fourth := p.sign(t, p.ec, "ec-1", "ES256", with(p.claims(), "exp", start.Add(50*time.Minute).Unix()))
	j.Attribute(t.Context(), bearer(third))
	j.Attribute(t.Context(), bearer(fourth))
	if _, ok := j.CachedUntil(long); ok {
		t.Error("the oldest entry was not evicted")
	}
	if _, ok := j.CachedUntil(fourth); !ok {
		t.Error("the newest entry is not remembered")
	}
}
