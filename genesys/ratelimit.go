package genesys

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/ratelimit"
	"github.com/usaged/usaged/usage"
)

// Default rate limits, in requests per minute per client (or per address).
const (
	DefaultRateLimit = 300
	// DefaultTokenRateLimit is the budget of POST /oauth/token per remote
	// address, apart from every other route's: a token lasts a day by
	// default, so a client needs few.
	DefaultTokenRateLimit = 300
	// DefaultIngestRateLimit is the budget of event ingest, which a busy
	// platform calls many times a second with one token.
	DefaultIngestRateLimit = 60_000
	// MaxRateLimit is the largest limit a Config may set.
	MaxRateLimit = ratelimit.MaxLimit
)

// The rate limit headers of the Genesys conventions.
const (
	headerRateAllowed   = "inin-ratelimit-allowed" // the limit per window
	headerRateCount     = "inin-ratelimit-count"   // requests counted in this window, this one included
	headerRateReset     = "inin-ratelimit-reset"   // whole seconds until the window ends
	codeTooManyRequests = "too.many.requests.retry.after"
)

// ingestRoute is the route with a budget of its own.
const ingestRoute = "POST /api/v2/usage/events"

// tokenRoute is the token endpoint, always limited by remote address, with
// a budget of its own.
const tokenRoute = "POST /oauth/token"

// rateLimits are a Server's budgets; a nil one is unlimited.
type rateLimits struct {
	general *ratelimit.Budget // every route but ingest and the token endpoint
	ingest  *ratelimit.Budget // ingestRoute
	token   *ratelimit.Budget // tokenRoute, per remote address
}

// newRateLimits builds the budgets s.cfg asks for. s.cfg has its defaults.
func (s *Server) newRateLimits() (rateLimits, error) {
	var rl rateLimits
	var err error
	budget := func(limit, def int, refuse func(http.ResponseWriter, *http.Request, auth.Decision)) *ratelimit.Budget {
		if err != nil {
			return nil
		}
		var b *ratelimit.Budget
		b, err = ratelimit.New(ratelimit.Config{Limit: limit, Default: def, Now: s.cfg.Now, Headers: rateHeaders, Refuse: refuse})
		return b
	}
	rl.general = budget(s.cfg.RateLimit, DefaultRateLimit, s.refuseAPI)
	rl.ingest = budget(s.cfg.IngestRateLimit, DefaultIngestRateLimit, s.refuseAPI)
	rl.token = budget(s.cfg.TokenRateLimit, DefaultTokenRateLimit, s.refuseToken)
	return rl, err
}

// budgetFor returns the budget of route, or nil if it is unlimited.
func (rl rateLimits) budgetFor(route string) *ratelimit.Budget {
	switch route {
	case ingestRoute:
		return rl.ingest
	case tokenRoute:
		return rl.token
	}
	return rl.general
}

// rateHeaders sets the Genesys rate limit headers.
func rateHeaders(h http.Header, d auth.Decision) {
	h.Set(headerRateAllowed, strconv.Itoa(d.Limit))
	h.Set(headerRateCount, strconv.Itoa(d.Count))
	h.Set(headerRateReset, strconv.Itoa(d.ResetSeconds()))
}

// refuseAPI answers a request over its budget with a Genesys ErrorBody.
func (s *Server) refuseAPI(w http.ResponseWriter, r *http.Request, d auth.Decision) {
	retry := strconv.Itoa(d.ResetSeconds())
	params := map[string]string{"retryAfter": retry}
	const template = "Rate limit exceeded the maximum. Retry the request in [{retryAfter}] seconds"
	s.writeError(w, r, &apiError{
		// The kind only decides logging: a refusal of the client's doing.
		// The status is outside the kind table, as for 405.
		err:      usage.Errorf(usage.KindInvalid, "", "%s", fill(template, params)),
		code:     codeTooManyRequests,
		status:   http.StatusTooManyRequests,
		params:   params,
		template: template,
	})
}

// refuseToken answers a token request over its address's budget in the
// RFC 6749 error shape, as the token endpoint answers every error.
func (s *Server) refuseToken(w http.ResponseWriter, _ *http.Request, d auth.Decision) {
	s.writeOAuth(w, http.StatusTooManyRequests, oauthFail(http.StatusTooManyRequests, codeSlowDown,
		fmt.Sprintf("too many token requests from this address: the limit is %d a minute; retry in %d seconds", d.Limit, d.ResetSeconds())))
}

const authResultKey ctxKey = 1

// authResult is the outcome of authenticating a request's bearer token,
// kept in its context so that it is done once for rate limiting and for
// the handler.
type authResult struct {
	p   *auth.Principal
	err error
}

// authenticated returns the outcome instrument recorded for r, if any.
func authenticated(r *http.Request) (authResult, bool) {
	res, ok := r.Context().Value(authResultKey).(authResult)
	return res, ok
}

// limit counts r against b. It returns r, carrying the authentication
// outcome when it authenticated the token, and whether r may proceed; if
// not, it has answered 429.
//
// Requests with a valid bearer token count against its principal: the
// client, whichever of its tokens is used, or the admin. Requests to the
// token endpoint, and those without a valid token, count against their
// remote IP address: failing authentication costs a budget too.
func (s *Server) limit(b *ratelimit.Budget, route string, w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	key := ratelimit.AddressKey(r)
	if _, ok := bearerToken(r); ok && route != tokenRoute {
		p, err := s.authenticate(r)
		r = r.WithContext(context.WithValue(r.Context(), authResultKey, authResult{p: p, err: err}))
		if err == nil {
			key = principalKey(p)
		}
	}
	return r, b.Allow(w, r, key)
}

// principalKey is the rate limit key of an authenticated principal.
func principalKey(p *auth.Principal) ratelimit.Key {
	if p.Admin {
		return ratelimit.AdminKey
	}
	return ratelimit.ClientKey(p.ClientID)
}

// bearerToken returns the token of a "Bearer" Authorization header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	tok = strings.TrimSpace(tok)
	return tok, strings.EqualFold(scheme, "Bearer") && tok != ""
}
