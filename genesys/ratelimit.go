package genesys

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/httpmw"
	"github.com/usaged/usaged/ratelimit"
	"github.com/usaged/usaged/usage"
)

// Default rate limits, in requests per minute per client (or per address).
const (
	DefaultRateLimit = httpmw.DefaultAPILimit
	// DefaultTokenRateLimit is the budget of POST /oauth/token per remote
	// address, apart from every other route's: a token lasts a day by
	// default, so a client needs few.
	DefaultTokenRateLimit = httpmw.DefaultTokenLimit
	// DefaultIngestRateLimit is the budget of event ingest, which a busy
	// platform calls many times a second with one token.
	DefaultIngestRateLimit = httpmw.DefaultIngestLimit
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

// classOf returns the rate limit class of route: event ingest and the
// token endpoint have budgets of their own.
func classOf(route string) httpmw.Class {
	switch route {
	case ingestRoute:
		return httpmw.ClassIngest
	case tokenRoute:
		return httpmw.ClassToken
	}
	return httpmw.ClassAPI
}

// rateHeaders sets the Genesys rate limit headers.
func rateHeaders(h http.Header, d auth.Decision) {
	h.Set(headerRateAllowed, strconv.Itoa(d.Limit))
	h.Set(headerRateCount, strconv.Itoa(d.Count))
	h.Set(headerRateReset, strconv.Itoa(d.ResetSeconds()))
}

// refuse answers a request over its budget: in the RFC 6749 shape on the
// token endpoint, else with a Genesys ErrorBody.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, d auth.Decision) {
	if httpmw.RouteOf(r.Context()).Class == httpmw.ClassToken {
		s.refuseToken(w, r, d)
		return
	}
	s.refuseAPI(w, r, d)
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

// authenticated returns the outcome rateKey recorded for r, if any.
func authenticated(r *http.Request) (authResult, bool) {
	res, ok := r.Context().Value(authResultKey).(authResult)
	return res, ok
}

// rateKey returns what r counts against, and r carrying the authentication
// outcome when it authenticated the token.
//
// Requests with a valid bearer token count against its principal: the
// client, whichever of its tokens is used, or the admin. Requests to the
// token endpoint, and those without a valid token, count against their
// remote IP address: failing authentication costs a budget too.
func (s *Server) rateKey(r *http.Request) (*http.Request, ratelimit.Key) {
	key := ratelimit.AddressKey(r)
	if _, ok := bearerToken(r); ok && httpmw.RouteOf(r.Context()).Class != httpmw.ClassToken {
		p, err := s.authenticate(r)
		r = r.WithContext(context.WithValue(r.Context(), authResultKey, authResult{p: p, err: err}))
		if err == nil {
			key = principalKey(p)
		}
	}
	return r, key
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
