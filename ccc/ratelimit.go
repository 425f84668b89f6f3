package ccc

import (
	"context"
	"fmt"
	"net/http"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/httpmw"
	"github.com/usaged/usaged/ratelimit"
	"github.com/usaged/usaged/servicestack"
)

// Default rate limits, in requests per minute per key (or per address).
const (
	DefaultRateLimit = httpmw.DefaultAPILimit
	// DefaultIngestRateLimit is the budget of activity events, which a
	// platform sends many times a minute with one key.
	DefaultIngestRateLimit = httpmw.DefaultIngestLimit
)

// ingestOp is the operation with a budget of its own.
const ingestOp = "PostServiceEvents"

// authResult is the outcome of authenticating a request's key, kept in its
// context so that it is done once for rate limiting and for the operation.
type authResult struct {
	c   *caller
	err error
}

type authKey struct{}

// authenticated returns the outcome rateKey recorded for r, if any.
func authenticated(r *http.Request) (authResult, bool) {
	a, ok := r.Context().Value(authKey{}).(authResult)
	return a, ok
}

// rateKey returns what r counts against: the caller's key (by its digest,
// never the key itself), the admin, or the remote address when the request
// has no valid key, since failing authentication costs a budget too. The
// request it returns carries the outcome of authenticating it.
func (s *Server) rateKey(r *http.Request) (*http.Request, ratelimit.Key) {
	c, err := s.authenticate(r)
	r = r.WithContext(context.WithValue(r.Context(), authKey{}, authResult{c: c, err: err}))
	switch {
	case c == nil:
		return r, ratelimit.AddressKey(r)
	case c.admin:
		return r, ratelimit.AdminKey
	}
	return r, ratelimit.DigestKey("apikey", c.digest)
}

// refuse answers a request over its budget: 429 TooManyRequests, as the
// DTO of the operation it was routed to.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, d auth.Decision) {
	servicestack.RespondError(w, r, httpmw.RouteOf(r.Context()).Name, servicestack.NewError(http.StatusTooManyRequests, "TooManyRequests",
		fmt.Sprintf("Rate limit of %d requests a minute exceeded; retry in %d seconds", d.Limit, d.ResetSeconds())), s.log)
}
