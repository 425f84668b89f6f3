package ccc

import (
	"context"
	"fmt"
	"net/http"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/ratelimit"
	"github.com/usaged/usaged/servicestack"
)

// Default rate limits, in requests per minute per key (or per address).
const (
	DefaultRateLimit = 300
	// DefaultIngestRateLimit is the budget of activity events, which a
	// platform sends many times a minute with one key.
	DefaultIngestRateLimit = 60_000
)

// ingestOp is the operation with a budget of its own.
const ingestOp = "PostServiceEvents"

// rateLimits are a Server's budgets; a nil one is unlimited.
type rateLimits struct {
	general *ratelimit.Budget // every operation but ingestOp
	ingest  *ratelimit.Budget // ingestOp
}

func (s *Server) newRateLimits() (rateLimits, error) {
	var rl rateLimits
	var err error
	if rl.general, err = ratelimit.New(ratelimit.Config{Limit: s.cfg.RateLimit, Default: DefaultRateLimit, Now: s.cfg.Now, Refuse: s.refuse}); err != nil {
		return rl, err
	}
	rl.ingest, err = ratelimit.New(ratelimit.Config{Limit: s.cfg.IngestRateLimit, Default: DefaultIngestRateLimit, Now: s.cfg.Now, Refuse: s.refuse})
	return rl, err
}

// opKey is the context key of the operation a request was routed to, which
// names the root of an XML answer and the file of a CSV one.
type opKey struct{}

// limit counts r, routed to operation op, against its budget: that of the
// caller's key (by its digest, never the key itself), of the admin, or of
// the remote address when the request has no valid key. It reports whether
// r may proceed; if not, it has answered 429.
func (s *Server) limit(op string, c *caller, w http.ResponseWriter, r *http.Request) bool {
	b := s.limits.general
	if op == ingestOp {
		b = s.limits.ingest
	}
	if b == nil {
		return true
	}
	key := ratelimit.AddressKey(r)
	switch {
	case c == nil:
	case c.admin:
		key = ratelimit.AdminKey
	default:
		key = ratelimit.DigestKey("apikey", c.digest)
	}
	return b.Allow(w, r.WithContext(context.WithValue(r.Context(), opKey{}, op)), key)
}

// refuse answers a request over its budget: 429 TooManyRequests.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, d auth.Decision) {
	op, _ := r.Context().Value(opKey{}).(string)
	servicestack.RespondError(w, r, op, servicestack.NewError(http.StatusTooManyRequests, "TooManyRequests",
		fmt.Sprintf("Rate limit of %d requests a minute exceeded; retry in %d seconds", d.Limit, d.ResetSeconds())), s.log)
}
