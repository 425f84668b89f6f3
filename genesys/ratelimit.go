package genesys

import (
	"context"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/usage"
)

// Default rate limits, in requests per minute per bearer token.
const (
	DefaultRateLimit = 300
	// DefaultIngestRateLimit is the budget of event ingest, which a busy
	// platform calls many times a second with one token.
	DefaultIngestRateLimit = 60_000
	// MaxRateLimit is the largest limit a Config may set.
	MaxRateLimit = math.MaxInt32
)

// rateWindow is the length of a rate limit window; the limits are per minute.
const rateWindow = time.Minute

// The rate limit headers of the Genesys conventions.
const (
	headerRateAllowed   = "inin-ratelimit-allowed" // the limit per window
	headerRateCount     = "inin-ratelimit-count"   // requests counted in this window, this one included
	headerRateReset     = "inin-ratelimit-reset"   // whole seconds until the window ends
	codeTooManyRequests = "too.many.requests.retry.after"
)

// ingestRoute is the route with a budget of its own.
const ingestRoute = "POST /api/v2/usage/events"

// tokenRoute is the token endpoint, always limited by remote address.
const tokenRoute = "POST /oauth/token"

// rateLimits are a Server's limiters; a nil one means unlimited.
type rateLimits struct {
	general *auth.Limiter // every route but ingest
	ingest  *auth.Limiter // ingestRoute
}

// newRateLimits builds the limiters cfg asks for. cfg has its defaults.
func newRateLimits(cfg Config) (rateLimits, error) {
	var rl rateLimits
	var err error
	if rl.general, err = newLimiter(cfg.RateLimit, DefaultRateLimit, cfg.Now); err != nil {
		return rl, err
	}
	rl.ingest, err = newLimiter(cfg.IngestRateLimit, DefaultIngestRateLimit, cfg.Now)
	return rl, err
}

func newLimiter(limit, def int, now func() time.Time) (*auth.Limiter, error) {
	switch {
	case limit < 0:
		return nil, nil
	case limit == 0:
		limit = def
	}
	return auth.NewLimiter(auth.LimiterConfig{Limit: limit, Window: rateWindow, Now: now})
}

// limiterFor returns the limiter of route, or nil if it is unlimited.
func (rl rateLimits) limiterFor(route string) *auth.Limiter {
	if route == ingestRoute {
		return rl.ingest
	}
	return rl.general
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

// limit counts r against l and sets the rate limit headers. It returns
// r, carrying the authentication outcome when it authenticated the token,
// and whether r may proceed; if not, it has answered 429.
//
// Requests with a valid bearer token count against that token. Requests to
// the token endpoint, and those without a valid token, count against their
// remote IP address: failing authentication costs a budget too.
func (s *Server) limit(l *auth.Limiter, route string, w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	var key string
	if tok, ok := bearerToken(r); ok && route != tokenRoute {
		p, err := s.authenticate(r)
		r = r.WithContext(context.WithValue(r.Context(), authResultKey, authResult{p: p, err: err}))
		if err == nil {
			key = tok
		}
	}
	if key == "" {
		// No header value holds a NUL byte, so these keys never equal a token.
		key = "\x00ip " + remoteIP(r)
	}
	d := l.Take(key)
	h := w.Header()
	h.Set(headerRateAllowed, strconv.Itoa(d.Limit))
	h.Set(headerRateCount, strconv.Itoa(d.Count))
	h.Set(headerRateReset, strconv.Itoa(d.ResetSeconds()))
	if d.Allowed {
		return r, true
	}
	retry := strconv.Itoa(d.ResetSeconds())
	h.Set("Retry-After", retry)
	s.writeError(w, r, &apiError{
		// The kind only decides logging: a refusal of the client's doing.
		// The status is outside the kind table, as for 405.
		err:    usage.Errorf(usage.KindInvalid, "", "Rate limit exceeded the maximum. Retry the request in [%s] seconds", retry),
		code:   codeTooManyRequests,
		status: http.StatusTooManyRequests,
		params: map[string]string{"retryAfter": retry},
	})
	return r, false
}

// bearerToken returns the token of a "Bearer" Authorization header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	tok = strings.TrimSpace(tok)
	return tok, strings.EqualFold(scheme, "Bearer") && tok != ""
}

// remoteIP is the address of the connection's peer. Forwarding headers are
// not trusted: any client could set them to spread its requests over many
// budgets.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
