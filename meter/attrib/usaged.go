package attrib

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/usaged/usaged/client"
)

// Defaults of UsagedConfig.
const (
	DefaultTTL         = 5 * time.Minute
	DefaultNegativeTTL = 5 * time.Minute
	DefaultMaxEntries  = 100_000
	DefaultMaxRefused  = 100_000
	DefaultLookupRate  = 50 // lookups a second
	DefaultLookupBurst = 100
	DefaultMaxBackoff  = time.Minute
)

// ErrDeferred is wrapped by the error Usaged returns when it did not ask
// usaged about a token because lookups are paused (usaged failed or asked
// to wait) or their rate is used up: the token is neither valid nor
// refused yet, and asking again later may tell.
var ErrDeferred = errors.New("attrib: lookup deferred")

const (
	// tokensMePath is Genesys' token introspection route, which usaged
	// serves to any valid token.
	tokensMePath = "/api/v2/tokens/me"
	// minBackoff is the first pause after a failed lookup; each failure
	// in a row doubles it, up to MaxBackoff.
	minBackoff = time.Second
	// maxRetryAfter bounds the Retry-After taken from usaged, so that a
	// misconfigured server cannot stop attribution for days.
	maxRetryAfter = time.Hour
	// lookupTimeout bounds one question to usaged, whatever the Client, so
	// that a hung usaged delays requests by at most this.
	lookupTimeout = 10 * time.Second
	// maxUsagedToken is the longest token worth asking about. usaged's own
	// are about 200 bytes; anything much longer is someone else's, or junk
	// that should not be forwarded.
	maxUsagedToken = 4096
)

// UsagedConfig configures NewUsaged.
type UsagedConfig struct {
	// Server is usaged's base URL, such as https://usaged.example.com;
	// required.
	Server string
	// Client asks usaged; default a client with a 10 s timeout.
	Client *http.Client
	// TTL is how long a token's identity is remembered, unless the token
	// expires sooner. It is also how long a deleted client or a rotated
	// secret may still be attributed: usaged is not asked again before.
	// Default DefaultTTL.
	TTL time.Duration
	// NegativeTTL is how long a token usaged refused (401) is remembered as
	// refused, without asking usaged again. A refusal is final: a token
	// that is invalid, expired or of a deleted client never becomes valid.
	// Default DefaultNegativeTTL.
	NegativeTTL time.Duration
	// MaxEntries bounds the valid tokens remembered; past it the oldest
	// answer is forgotten. Default DefaultMaxEntries.
	MaxEntries int
	// MaxRefused bounds the refused tokens remembered, apart from the
	// valid ones so that made-up tokens never push those out; past it the
	// oldest refusal is forgotten. Default DefaultMaxRefused.
	MaxRefused int
	// LookupRate bounds the lookups a second toward usaged, with bursts of
	// up to LookupBurst; a token that would exceed it is not looked up
	// now (ErrDeferred). Concurrent lookups of one token are one lookup.
	// Default DefaultLookupRate and DefaultLookupBurst; a negative
	// LookupRate means unbounded.
	LookupRate  float64
	LookupBurst int
	// MaxBackoff caps the pause of lookups after failures: a failed lookup
	// (usaged unreachable, 5xx, 429) pauses every lookup for 1 s, doubling
	// with each failure in a row up to MaxBackoff, or for the answer's
	// Retry-After if longer, plus up to a quarter more at random so that
	// many proxies do not come back at once. Default DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Now is the clock of the cache; default time.Now.
	Now func() time.Time
}

// Validate reports every problem with the configuration.
func (c UsagedConfig) Validate() error {
	var errs []error
	if c.Server == "" {
		errs = append(errs, errors.New("attrib: Server is required: usaged's base URL, such as https://usaged.example.com"))
	} else if u, err := url.Parse(c.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("attrib: Server must be an http or https base URL such as https://usaged.example.com, without query or fragment; got %q", c.Server))
	}
	if c.TTL < 0 {
		errs = append(errs, fmt.Errorf("attrib: TTL must not be negative, got %s", c.TTL))
	}
	if c.NegativeTTL < 0 {
		errs = append(errs, fmt.Errorf("attrib: NegativeTTL must not be negative, got %s", c.NegativeTTL))
	}
	if c.MaxEntries < 0 {
		errs = append(errs, fmt.Errorf("attrib: MaxEntries must not be negative, got %d", c.MaxEntries))
	}
	if c.MaxRefused < 0 {
		errs = append(errs, fmt.Errorf("attrib: MaxRefused must not be negative, got %d", c.MaxRefused))
	}
	if c.LookupBurst < 0 {
		errs = append(errs, fmt.Errorf("attrib: LookupBurst must not be negative, got %d", c.LookupBurst))
	}
	if c.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("attrib: MaxBackoff must not be negative, got %s", c.MaxBackoff))
	}
	return errors.Join(errs...)
}

// Usaged attributes bearer tokens issued by usaged, by asking GET
// {Server}/api/v2/tokens/me once per token and caching the answer. It never
// holds usaged's signing key: usaged alone decides whether a token is valid.
//
// A valid token is remembered for TTL, or until its expiry if that is
// sooner; a refused one (401) for NegativeTTL, apart, so that made-up
// tokens cost one lookup each and never push valid ones out. A valid token
// without an organization, which is the admin token, is remembered as not
// an identity. Failures — usaged unreachable, rate limited, answering 5xx —
// are returned and not remembered, and pause every lookup for a while
// (see MaxBackoff), during which unknown tokens get ErrDeferred without a
// request. Lookups are bounded by LookupRate, and concurrent lookups of
// one token share one request. Tokens are kept only as SHA-256 digests.
type Usaged struct {
	cfg     UsagedConfig
	api     *client.Client // asks with each token in turn
	limiter *rate.Limiter  // nil: unbounded

	mu      sync.Mutex
	cache   *tokenCache
	refused *refusedCache
	calls   map[tokenKey]*call // lookups under way
	// failures counts the failed lookups in a row; no lookup starts
	// before pausedUntil.
	failures    int
	pausedUntil time.Time
}

var _ Attributor = (*Usaged)(nil)

// call is a lookup under way; done closes when its answer is set.
type call struct {
	done chan struct{}
	id   Identity
	ok   bool
	err  error
}

// NewUsaged returns a Usaged for cfg.
func NewUsaged(cfg UsagedConfig) (*Usaged, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: lookupTimeout}
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = DefaultNegativeTTL
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.MaxRefused == 0 {
		cfg.MaxRefused = DefaultMaxRefused
	}
	if cfg.LookupRate == 0 {
		cfg.LookupRate = DefaultLookupRate
	}
	if cfg.LookupBurst == 0 {
		cfg.LookupBurst = DefaultLookupBurst
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	api, err := client.New(client.Config{Server: cfg.Server, HTTPClient: cfg.Client, UserAgent: "usaged-attrib"})
	if err != nil {
		return nil, err
	}
	u := &Usaged{
		cfg:     cfg,
		api:     api,
		cache:   newTokenCache(cfg.MaxEntries),
		refused: newRefusedCache(cfg.MaxRefused),
		calls:   make(map[tokenKey]*call),
	}
	if cfg.LookupRate > 0 {
		// The limiter reads the time it is given, cfg.Now's, so that tests
		// can move it.
		u.limiter = rate.NewLimiter(rate.Limit(cfg.LookupRate), cfg.LookupBurst)
	}
	return u, nil
}

// Attribute implements Attributor for the request's bearer token. It
// returns ctx's error if ctx ends before usaged answers; the lookup itself
// goes on, and its answer is remembered for the next request.
func (u *Usaged) Attribute(ctx context.Context, r *http.Request) (Identity, bool, error) {
	tok, ok := BearerToken(r)
	if !ok || len(tok) > maxUsagedToken {
		return Identity{}, false, nil
	}
	key := tokenKey(sha256.Sum256([]byte(tok)))

	u.mu.Lock()
	now := u.cfg.Now()
	if e, ok := u.cache.get(key, now); ok {
		u.mu.Unlock()
		return e.id, e.ok, nil
	}
	if u.refused.has(key, now) {
		u.mu.Unlock()
		return Identity{}, false, nil
	}
	c, ok := u.calls[key]
	if !ok {
		if now.Before(u.pausedUntil) {
			until, failed := u.pausedUntil, u.failedWhat()
			u.mu.Unlock()
			return Identity{}, false, fmt.Errorf("attrib: not asking usaged about a token before %s, after %s: %w", until.Format(time.RFC3339), failed, ErrDeferred)
		}
		if u.limiter != nil && !u.limiter.AllowN(now, 1) {
			u.mu.Unlock()
			return Identity{}, false, fmt.Errorf("attrib: not asking usaged about a token now: the lookup rate of %g a second is used up: %w", u.cfg.LookupRate, ErrDeferred)
		}
		c = &call{done: make(chan struct{})}
		u.calls[key] = c
		// The lookup runs apart from any one caller, so that a caller
		// giving up does not fail the others waiting for the same token.
		go u.lookup(context.WithoutCancel(ctx), key, tok, c)
	}
	u.mu.Unlock()

	select {
	case <-c.done:
		return c.id, c.ok, c.err
	case <-ctx.Done():
		return Identity{}, false, fmt.Errorf("attrib: waiting for usaged to check a token: %w", context.Cause(ctx))
	}
}

// lookup asks usaged about tok, remembers the answer unless it is a
// failure, and hands it to the callers waiting on c.
func (u *Usaged) lookup(ctx context.Context, key tokenKey, tok string, c *call) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	a, err := u.ask(ctx, tok)
	c.id, c.ok, c.err = a.id, a.ok, err

	u.mu.Lock()
	delete(u.calls, key)
	now := u.cfg.Now()
	switch {
	case err != nil:
		u.pause(now, a.retryAfter)
	case a.refused:
		u.failures = 0
		u.refused.add(key, now.Add(u.cfg.NegativeTTL), now)
	default:
		u.failures = 0
		if a.ttl > 0 {
			u.cache.put(&entry{key: key, id: a.id, ok: a.ok, expires: now.Add(a.ttl)})
		}
	}
	u.mu.Unlock()
	close(c.done)
}

// pause stops lookups after a failure: for the exponential backoff or
// retryAfter, whichever is longer, plus jitter. Failures of lookups
// already under way when the pause began do not lengthen it again. u.mu
// is held.
func (u *Usaged) pause(now time.Time, retryAfter time.Duration) {
	if now.Before(u.pausedUntil) {
		return
	}
	u.failures++
	d := u.cfg.MaxBackoff
	if u.failures < 32 {
		d = min(d, minBackoff<<(u.failures-1))
	}
	d = max(d, min(retryAfter, maxRetryAfter))
	d += rand.N(d/4 + 1)
	u.pausedUntil = now.Add(d)
}

// failedWhat says how many lookups failed in a row, for the error of a
// deferred one. u.mu is held.
func (u *Usaged) failedWhat() string {
	if u.failures == 1 {
		return "a failed lookup"
	}
	return strconv.Itoa(u.failures) + " failed lookups in a row"
}

// answer is what usaged said about a token.
type answer struct {
	id      Identity
	ok      bool          // id is an identity
	refused bool          // usaged answered 401
	ttl     time.Duration // how long a valid token's answer holds
	// retryAfter is the Retry-After of a failed lookup's answer, if any.
	retryAfter time.Duration
}

// ask asks usaged about tok.
func (u *Usaged) ask(ctx context.Context, tok string) (answer, error) {
	ti, err := u.api.WithToken(tok).TokenMe(ctx)
	var ce *client.Error
	switch {
	case errors.As(err, &ce) && ce.Status == http.StatusUnauthorized:
		return answer{refused: true}, nil
	case errors.As(err, &ce):
		return answer{retryAfter: min(ce.RetryAfter, maxRetryAfter)},
			fmt.Errorf("attrib: usaged answered GET %s with %d %s: %.200s", tokensMePath, ce.Status, http.StatusText(ce.Status), ce.Body)
	case err != nil:
		return answer{}, fmt.Errorf("attrib: asking usaged about a token: %w", err)
	}
	a := answer{ttl: u.cfg.TTL}
	if exp, ok := tokenExpiry(tok); ok {
		a.ttl = min(a.ttl, exp.Sub(u.cfg.Now()))
	}
	if ti.Organization == nil || ti.OAuthClient == nil {
		return a, nil // the admin token: valid, but nobody's
	}
	a.id = Identity{OrganizationID: ti.Organization.ID, ClientID: ti.OAuthClient.ID, ClientName: ti.OAuthClient.Name}
	a.ok = a.id.complete()
	return a, nil
}

// tokenExpiry returns when a token says it expires, without verifying it:
// usaged has just vouched for the token, so this only keeps its identity
// from being remembered past the expiry, and a token lying about it gains
// nothing, since the cache never keeps an answer longer than TTL. It reads
// usaged's tokens ("v1.", base64url JSON claims with expiry "e" in unix
// seconds, ".", signature) and JWT-shaped ones ("exp"); for any other
// shape it returns false and TTL alone applies.
func tokenExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var cl struct {
		E   *json.Number `json:"e"`
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &cl); err != nil {
		return time.Time{}, false
	}
	n := cl.Exp
	if parts[0] == "v1" {
		n = cl.E
	}
	if n == nil {
		return time.Time{}, false
	}
	sec, err := n.Float64()
	// Beyond these bounds the instant is meaningless and time.Unix would
	// overflow; year 1970 to 9999 is plenty.
	if err != nil || sec < 0 || sec > 253402300799 {
		return time.Time{}, false
	}
	return time.Unix(int64(sec), 0), true
}
