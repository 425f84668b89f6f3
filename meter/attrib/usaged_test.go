package attrib_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/internal/fakeclock"
	"github.com/usaged/usaged/internal/servertest"
	"github.com/usaged/usaged/meter/attrib"
	"github.com/usaged/usaged/server"
)

const adminToken = "admin-token-for-tests"

// usagedEnv is a real usaged Genesys face on 127.0.0.1 that counts the
// token lookups it answers and can hold them.
type usagedEnv struct {
	t     *testing.T
	url   string
	clk   *fakeclock.Clock
	auth  *auth.Service
	calls atomic.Int64
	// hold, when set, is waited on by each token lookup before it is
	// answered.
	hold atomic.Pointer[chan struct{}]
	// retryAfter is the Retry-After of the last lookup answered 429, and
	// limited how many were.
	retryAfter atomic.Value // string
	limited    atomic.Int64
}

// MustUsaged starts usaged with its store in memory, without rate limits.
func MustUsaged(t *testing.T) *usagedEnv { return mustUsagedLimited(t, -1) }

// mustUsagedLimited starts usaged with its rate limit of rateLimit requests
// per minute, per token or, for invalid tokens, per address.
func mustUsagedLimited(t *testing.T, rateLimit int) *usagedEnv {
	t.Helper()
	clk := fakeclock.New(time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC))
	s := servertest.Start(t, servertest.Memory, func(c *server.Config) {
		c.Now = clk.Now
		c.Auth.AdminToken = adminToken
		c.Limits.RateLimit = rateLimit
	})
	mux := s.Handler()
	e := &usagedEnv{t: t, clk: clk, auth: s.Auth()}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v2/tokens/me" {
			e.calls.Add(1)
			if h := e.hold.Load(); h != nil {
				<-*h
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, r)
			if rec.Code == http.StatusTooManyRequests {
				e.limited.Add(1)
				e.retryAfter.Store(rec.Header().Get("Retry-After"))
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// mustToken creates a client of a new organization and returns a token of
// it and the identity it stands for.
func (e *usagedEnv) mustToken(validity time.Duration) (string, attrib.Identity) {
	e.t.Helper()
	org, err := e.auth.CreateOrganization(e.t.Context(), "Acme")
	if err != nil {
		e.t.Fatal(err)
	}
	c, secret, err := e.auth.CreateClient(e.t.Context(), org.ID, auth.ClientSpec{Name: "CRM sync", AccessTokenValidity: validity})
	if err != nil {
		e.t.Fatal(err)
	}
	tok, _, err := e.auth.IssueToken(e.t.Context(), c.ID, secret)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok, attrib.Identity{OrganizationID: org.ID, ClientID: c.ID, ClientName: "CRM sync"}
}

func (e *usagedEnv) mustAttributor(cfg attrib.UsagedConfig) *attrib.Usaged {
	e.t.Helper()
	cfg.Server = e.url
	cfg.Now = e.clk.Now
	u, err := attrib.NewUsaged(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// want fails unless attributing tok gives id and ok without error, after
// calls lookups in all.
func (e *usagedEnv) want(u *attrib.Usaged, tok string, id attrib.Identity, ok bool, calls int64) {
	e.t.Helper()
	got, gotOK, err := u.Attribute(e.t.Context(), bearer(tok))
	if got != id || gotOK != ok || err != nil {
		e.t.Fatalf("got %+v, %v, %v; want %+v, %v", got, gotOK, err, id, ok)
	}
	if n := e.calls.Load(); n != calls {
		e.t.Fatalf("%d lookups, want %d", n, calls)
	}
}

func TestUsaged(t *testing.T) {
	e := MustUsaged(t)
	u := e.mustAttributor(attrib.UsagedConfig{})
	tok, id := e.mustToken(0)

	e.want(u, tok, id, true, 1)
	e.want(u, tok, id, true, 1) // remembered
	e.want(u, "garbage", attrib.Identity{}, false, 2)
	e.want(u, "garbage", attrib.Identity{}, false, 2) // remembered as refused
	// The admin token is valid but nobody's.
	e.want(u, adminToken, attrib.Identity{}, false, 3)
	e.want(u, adminToken, attrib.Identity{}, false, 3)
	// Not a bearer token: usaged is not asked.
	if _, ok, err := u.Attribute(t.Context(), request("Authorization", "Basic Zm9vOmJhcg==")); ok || err != nil {
		t.Fatalf("Basic: %v, %v", ok, err)
	}
	if _, ok, err := u.Attribute(t.Context(), bearer(strings.Repeat("x", 5000))); ok || err != nil {
		t.Fatalf("huge token: %v, %v", ok, err)
	}
	if n := e.calls.Load(); n != 3 {
		t.Fatalf("%d lookups, want 3", n)
	}
}

// TestUsagedExpiry: answers are remembered for their TTL, refusals for the
// negative TTL, and neither past the token's own expiry.
func TestUsagedExpiry(t *testing.T) {
	e := MustUsaged(t)
	u := e.mustAttributor(attrib.UsagedConfig{TTL: 10 * time.Minute, NegativeTTL: 30 * time.Second})
	long, longID := e.mustToken(time.Hour)
	short, shortID := e.mustToken(5 * time.Minute)

	e.want(u, long, longID, true, 1)
	e.want(u, short, shortID, true, 2)
	e.want(u, "garbage", attrib.Identity{}, false, 3)

	e.clk.Advance(31 * time.Second)
	e.want(u, long, longID, true, 3)
	e.want(u, "garbage", attrib.Identity{}, false, 4) // refusal forgotten: asked again

	// Past the short token's expiry, its identity is forgotten before the
	// TTL, and usaged now refuses it.
	e.clk.Advance(5 * time.Minute)
	e.want(u, long, longID, true, 4)
	e.want(u, short, attrib.Identity{}, false, 5)

	// Past the TTL the long token is asked about again.
	e.clk.Advance(5 * time.Minute)
	e.want(u, long, longID, true, 6)
}

// TestUsagedRevocation: a deleted client stays attributed until the TTL
// ends, which is the price of not asking usaged for every request.
func TestUsagedRevocation(t *testing.T) {
	e := MustUsaged(t)
	u := e.mustAttributor(attrib.UsagedConfig{TTL: time.Minute})
	tok, id := e.mustToken(time.Hour)
	e.want(u, tok, id, true, 1)
	if err := e.auth.DeleteClient(t.Context(), id.OrganizationID, id.ClientID); err != nil {
		t.Fatal(err)
	}
	e.want(u, tok, id, true, 1)
	e.clk.Advance(time.Minute)
	e.want(u, tok, attrib.Identity{}, false, 2)
}

// TestUsagedCoalesce: concurrent lookups of one token make one request.
func TestUsagedCoalesce(t *testing.T) {
	e := MustUsaged(t)
	u := e.mustAttributor(attrib.UsagedConfig{})
	tok, id := e.mustToken(0)
	release := make(chan struct{})
	e.hold.Store(&release)

	const n = 50
	var started, done sync.WaitGroup
	errs := make(chan string, n)
	for range n {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			got, ok, err := u.Attribute(t.Context(), bearer(tok))
			if got != id || !ok || err != nil {
				errs <- "wrong answer"
			}
		}()
	}
	started.Wait()
	// Whether a goroutine joins the lookup under way or finds its answer
	// remembered, usaged is asked once; the pause only makes joining likely.
	time.Sleep(50 * time.Millisecond)
	close(release)
	done.Wait()
	close(errs)
	for msg := range errs {
		t.Fatal(msg)
	}
	if c := e.calls.Load(); c != 1 {
		t.Fatalf("%d lookups for %d concurrent requests, want 1", c, n)
	}
}

// TestUsagedGiveUp: a caller whose context ends stops waiting, and the
// lookup it started still completes for the next caller.
func TestUsagedGiveUp(t *testing.T) {
	e := MustUsaged(t)
	u := e.mustAttributor(attrib.UsagedConfig{})
	tok, id := e.mustToken(0)
	release := make(chan struct{})
	e.hold.Store(&release)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, ok, err := u.Attribute(ctx, bearer(tok)); ok || err == nil {
		t.Fatalf("gave up: %v, %v", ok, err)
	}
	close(release)
	e.want(u, tok, id, true, 1)
}

// TestUsagedEviction: past MaxRefused the oldest refusal is forgotten.
func TestUsagedEviction(t *testing.T) {
	e := MustUsaged(t)
	u := e.mustAttributor(attrib.UsagedConfig{MaxRefused: 2})
	none := attrib.Identity{}
	e.want(u, "a", none, false, 1)
	e.want(u, "b", none, false, 2)
	e.want(u, "c", none, false, 3) // forgets a
	e.want(u, "c", none, false, 3)
	e.want(u, "b", none, false, 3)
	e.want(u, "a", none, false, 4) // forgets b
	e.want(u, "c", none, false, 4)
	e.want(u, "b", none, false, 5)
}

// TestUsagedDown: usaged unreachable or failing is an error, never
// remembered, so usaged is asked again once it is back and the pause after
// the failure is over.
func TestUsagedDown(t *testing.T) {
	e := MustUsaged(t)
	tok, id := e.mustToken(0)

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	u, err := attrib.NewUsaged(attrib.UsagedConfig{Server: closed.URL})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, ok, err := u.Attribute(t.Context(), bearer(tok)); ok || err == nil {
			t.Fatalf("usaged unreachable: %v, %v", ok, err)
		}
	}

	var failing atomic.Bool
	failing.Store(true)
	var calls atomic.Int64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if failing.Load() {
			http.Error(w, `{"status":503}`, http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, e.url+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(flaky.Close)
	u, err = attrib.NewUsaged(attrib.UsagedConfig{Server: flaky.URL + "/", Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, ok, err := u.Attribute(t.Context(), bearer(tok))
	if ok || err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("usaged failing: %v, %v", ok, err)
	}
	failing.Store(false)
	// The failure paused lookups for about a second.
	if _, ok, err := u.Attribute(t.Context(), bearer(tok)); ok || !errors.Is(err, attrib.ErrDeferred) {
		t.Fatalf("right after a failure: %v, %v; want ErrDeferred", ok, err)
	}
	e.clk.Advance(2 * time.Second)
	if got, ok, err := u.Attribute(t.Context(), bearer(tok)); got != id || !ok || err != nil {
		t.Fatalf("usaged back: %+v, %v, %v", got, ok, err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d calls, want 2: a failure must not be remembered", n)
	}
}

func TestUsagedConfigValidate(t *testing.T) {
	_, err := attrib.NewUsaged(attrib.UsagedConfig{Server: "usaged:8080", TTL: -1, NegativeTTL: -1, MaxEntries: -1,
		MaxRefused: -1, LookupBurst: -1, MaxBackoff: -1})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"Server must be an http or https base URL", "TTL must not be negative", "NegativeTTL must not be negative",
		"MaxEntries must not be negative", "MaxRefused must not be negative", "LookupBurst must not be negative", "MaxBackoff must not be negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if _, err := attrib.NewUsaged(attrib.UsagedConfig{}); err == nil || !strings.Contains(err.Error(), "Server is required") {
		t.Fatalf("no server: %v", err)
	}
}

func BenchmarkUsagedCached(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"organization":{"id":"o1","name":"Acme"},"OAuthClient":{"id":"c1","name":"CRM"}}`))
	}))
	b.Cleanup(srv.Close)
	u, err := attrib.NewUsaged(attrib.UsagedConfig{Server: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	r := bearer("v1.eyJjIjoiYzEifQ.c2ln")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := u.Attribute(b.Context(), r); !ok {
			b.Fatal("not identified")
		}
	}
}
