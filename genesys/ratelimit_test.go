package genesys_test

import (
	"cmp"
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/usaged/usaged/genesys"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/usage"
)

// mustLimitedEnv is MustEnv with the rate limits given.
func mustLimitedEnv(t *testing.T, rateLimit, ingestRateLimit int) *env {
	t.Helper()
	return MustEnv(t, func(c *server.Config) {
		// 0: the defaults, as the flags' are.
		c.Limits.RateLimit = cmp.Or(rateLimit, genesys.DefaultRateLimit)
		c.Limits.IngestRateLimit = cmp.Or(ingestRateLimit, genesys.DefaultIngestRateLimit)
	})
}

// rateHeaders are a response's rate limit headers; -1 when absent.
type rateHeaders struct{ allowed, count, reset int }

func rateOf(t *testing.T, r reply) rateHeaders {
	t.Helper()
	get := func(name string) int {
		vs := r.header.Values(name)
		if len(vs) == 0 {
			return -1
		}
		n, err := strconv.Atoi(vs[0])
		if err != nil || len(vs) != 1 {
			t.Fatalf("header %s: %q", name, vs)
		}
		return n
	}
	return rateHeaders{get("inin-ratelimit-allowed"), get("inin-ratelimit-count"), get("inin-ratelimit-reset")}
}

func wantRate(t *testing.T, r reply, allowed, count, reset int) {
	t.Helper()
	if got, want := rateOf(t, r), (rateHeaders{allowed, count, reset}); got != want {
		t.Fatalf("rate headers %+v, want %+v (status %d %s)", got, want, r.status, r.body)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	e := MustEnv(t) // the default limits
	a := e.mustOrg("A")
	c := e.mustClient(a.ID, 0, usage.PermOrganizationView)
	tok := e.mustToken(c)

	// One token's requests are counted together whatever the route and the
	// outcome: success, an error, an unknown route, a wrong method.
	wantRate(t, e.do("GET", "/api/v2/oauth/clients", tok, nil), 300, 1, 60) // 403: no oauth:client:view
	wantRate(t, e.aggregate200(tok), 300, 2, 60)
	wantRate(t, e.do("GET", "/api/v2/nothing/here", tok, nil), 300, 3, 60)
	wantRate(t, e.do("GET", "/api/v2/usage/aggregate", tok, nil), 300, 4, 60)
	e.clk.Advance(15*time.Second + 500*time.Millisecond)
	wantRate(t, e.aggregate200(tok), 300, 5, 45) // whole seconds, rounded up

	// Without a valid token the remote address is counted.
	before := rateOf(t, e.do("GET", "/api/v2/nothing", "", nil)).count
	wantRate(t, e.do("GET", "/api/v2/nothing", "not-a-token", nil), 300, before+1, 45)
	// The token endpoint counts the address in a budget of its own: this
	// is its second request, after the one that got tok.
	tr := e.tokenReply(url.Values{"grant_type": {"client_credentials"}}, c.ID, c.Secret, "application/x-www-form-urlencoded")
	if tr.status != 200 {
		t.Fatalf("token: %d %s", tr.status, tr.body)
	}
	wantRate(t, tr, genesys.DefaultTokenRateLimit, 2, 45)
	// The token itself still has its own count.
	wantRate(t, e.aggregate200(tok), 300, 6, 45)
}

// aggregate200 runs a small aggregate and returns the reply.
func (e *env) aggregate200(token string) reply {
	e.t.Helper()
	r := e.do("POST", "/api/v2/usage/aggregate", token, map[string]any{"interval": day})
	if r.status != 200 {
		e.t.Fatalf("aggregate: %d %s", r.status, r.body)
	}
	return r
}

func TestRateLimitExceeded(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))
	other := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))
	e.clk.Advance(20 * time.Second)

	for i := range 300 {
		r := e.do("GET", "/api/v2/nothing", tok, nil)
		if r.status != 404 {
			t.Fatalf("request %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := e.do("POST", "/api/v2/usage/aggregate", tok, map[string]any{"interval": day})
	eb := wantError(t, r, 429, "too.many.requests.retry.after", "Rate limit exceeded the maximum. Retry the request in [40] seconds")
	if r.header.Get("Retry-After") != "40" || eb.MessageParams["retryAfter"] != "40" {
		t.Fatalf("Retry-After %q, messageParams %v", r.header.Get("Retry-After"), eb.MessageParams)
	}
	wantRate(t, r, 300, 301, 40)
	// Refused requests are counted and refused alike.
	e.clk.Advance(39 * time.Second)
	r = e.do("GET", "/api/v2/nothing", tok, nil)
	wantError(t, r, 429, "too.many.requests.retry.after", "[1] seconds")
	wantRate(t, r, 300, 302, 1)
	// Another token has a budget of its own.
	wantRate(t, e.aggregate200(other), 300, 1, 1)

	// The next window starts afresh.
	e.clk.Advance(time.Second)
	wantRate(t, e.aggregate200(tok), 300, 1, 60)
}

func TestRateLimitByAddress(t *testing.T) {
	t.Parallel()
	e := mustLimitedEnv(t, 5, -1)
	// The admin token's requests (one organization, one client) are its own.
	a := e.mustOrg("A")
	c := e.mustClient(a.ID, 0, usage.PermEventAdd)
	form := url.Values{"grant_type": {"client_credentials"}}
	ct := "application/x-www-form-urlencoded"
	// Requests without a valid token share the address's budget, bad
	// tokens included.
	for i, r := range []reply{
		e.do("GET", "/api/v2/admin/organizations", "", nil),
		e.do("GET", "/api/v2/admin/organizations", "v1.forged.token", nil),
		e.do("GET", "/api/v2/admin/organizations", "", nil, "Authorization", "Basic Zm9vOmJhcg=="),
		e.do("GET", "/api/v2/admin/organizations", "not-a-token", nil),
		e.do("GET", "/api/v2/nothing", "", nil),
	} {
		if r.status == 429 {
			t.Fatalf("request %d refused: %s", i+1, r.body)
		}
		wantRate(t, r, 5, i+1, 60)
	}
	r := e.do("GET", "/api/v2/admin/organizations", "", nil)
	eb := wantError(t, r, 429, "too.many.requests.retry.after", "[60] seconds")
	if r.header.Get("Retry-After") != "60" || eb.Status != 429 {
		t.Fatalf("6th request from the address: %d %v", r.status, r.header)
	}
	// The token endpoint has a budget of its own: the address's bad
	// requests did not use it up.
	for i, secret := range []string{c.Secret, "wrong"} {
		wantRate(t, e.tokenReply(form, c.ID, secret, ct), genesys.DefaultTokenRateLimit, i+1, 60)
	}
	// A valid token is not held back by its address.
	wantRate(t, e.do("GET", "/api/v2/admin/organizations", adminToken, nil), 5, 3, 60)
}

func TestIngestRateLimit(t *testing.T) {
	t.Parallel()
	e := mustLimitedEnv(t, 4, 3)
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd, usage.PermOrganizationView))
	for i := range 3 {
		r := e.do("POST", "/api/v2/usage/events", tok, []any{event(fmt.Sprint("e", i))})
		decode[result](t, r, 200)
		wantRate(t, r, 3, i+1, 60)
	}
	r := e.do("POST", "/api/v2/usage/events", tok, []any{event("e3")})
	wantError(t, r, 429, "too.many.requests.retry.after", "[60] seconds")
	wantRate(t, r, 3, 4, 60)
	// Ingest took nothing from the token's budget for other routes, and
	// the refused batch was not recorded.
	r = e.do("POST", "/api/v2/usage/aggregate", tok, map[string]any{"interval": day})
	wantRate(t, r, 4, 1, 60)
	if rows := decode[aggregate](t, r, 200).Results; len(rows) != 1 || *rows[0].Requests != 3 {
		t.Fatalf("rows %s", mustJSON(rows))
	}
	// A wrong method on the ingest path is not ingest.
	wantRate(t, e.do("DELETE", "/api/v2/usage/events", tok, nil), 4, 2, 60)
}

func TestRateLimitUnlimited(t *testing.T) {
	t.Parallel()
	e := MustEnv(t, func(c *server.Config) {
		c.Limits.RateLimit, c.Limits.IngestRateLimit, c.Limits.TokenRateLimit = -1, -1, -1
	})
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd))
	for _, r := range []reply{
		e.do("POST", "/api/v2/usage/events", tok, []any{event("e1")}),
		e.do("GET", "/api/v2/nothing", tok, nil),
		e.tokenReply(url.Values{}, "", "", "text/plain"),
	} {
		wantRate(t, r, -1, -1, -1)
	}
}

func TestRateLimitConfig(t *testing.T) {
	t.Parallel()
	e := mustLimitedEnv(t, 0, 0) // the defaults
	tok := e.mustToken(e.mustClient(e.mustOrg("A").ID, 0, usage.PermEventAdd))
	wantRate(t, e.do("POST", "/api/v2/usage/events", tok, []any{event("e1")}), genesys.DefaultIngestRateLimit, 1, 60)
	wantRate(t, e.do("GET", "/api/v2/nothing", tok, nil), genesys.DefaultRateLimit, 1, 60)
}
