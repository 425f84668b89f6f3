package attrib

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults of UsagedConfig.
const (
	DefaultTTL         = 5 * time.Minute
	DefaultNegativeTTL = 30 * time.Second
	DefaultMaxEntries  = 100_000
)

const (
	// tokensMePath is Genesys' token introspection route, which usaged
	// serves to any valid token.
	tokensMePath = "/api/v2/tokens/me"
	// lookupTimeout bounds one question to usaged, whatever the Client, so
	// that a hung usaged delays requests by at most this.
	lookupTimeout = 10 * time.Second
	// maxTokenInfo bounds the answer read; a TokenInfo is a few hundred bytes.
	maxTokenInfo = 1 << 20
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
	// NegativeTTL is how long a token usaged refused is remembered as
	// refused. Default DefaultNegativeTTL.
	NegativeTTL time.Duration
	// MaxEntries bounds the tokens remembered; past it the oldest answer is
	// forgotten. Default DefaultMaxEntries.
	MaxEntries int
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
	return errors.Join(errs...)
}

// Usaged attributes bearer tokens issued by usaged, by asking GET
// {Server}/api/v2/tokens/me once per token and caching the answer. It never
// holds usaged's signing key: usaged alone decides whether a token is valid.
//
// A valid token is remembered for TTL, or until its expiry if that is
// sooner; a refused one (401) for NegativeTTL. A valid token without an
// organization, which is the admin token, is remembered as not an identity.
// Failures — usaged unreachable, rate limited, answering 5xx — are returned
// and not remembered, so the next request asks again. Concurrent lookups of
// one token share one request. Tokens are kept only as SHA-256 digests.
type Usaged struct {
	cfg      UsagedConfig
	endpoint string

	mu    sync.Mutex
	cache *tokenCache
	calls map[tokenKey]*call // lookups under way
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Usaged{
		cfg:      cfg,
		endpoint: strings.TrimRight(cfg.Server, "/") + tokensMePath,
		cache:    newTokenCache(cfg.MaxEntries),
		calls:    make(map[tokenKey]*call),
	}, nil
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
	if e, ok := u.cache.get(key, u.cfg.Now()); ok {
		u.mu.Unlock()
		return e.id, e.ok, nil
	}
	c, ok := u.calls[key]
	if !ok {
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
	id, ok, ttl, err := u.ask(ctx, tok)
	c.id, c.ok, c.err = id, ok, err

	u.mu.Lock()
	delete(u.calls, key)
	if err == nil && ttl > 0 {
		u.cache.put(&entry{key: key, id: id, ok: ok, expires: u.cfg.Now().Add(ttl)})
	}
	u.mu.Unlock()
	close(c.done)
}

// tokenInfoAnswer is the part of Genesys' TokenInfo that attributes a token.
type tokenInfoAnswer struct {
	Organization *struct {
		ID string `json:"id"`
	} `json:"organization"`
	OAuthClient *struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"OAuthClient"`
}

// ask asks usaged about tok and returns its identity, whether it is one,
// and how long the answer holds.
func (u *Usaged) ask(ctx context.Context, tok string) (Identity, bool, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.endpoint, nil)
	if err != nil {
		return Identity{}, false, 0, fmt.Errorf("attrib: asking usaged about a token: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	resp, err := u.cfg.Client.Do(req)
	if err != nil {
		return Identity{}, false, 0, fmt.Errorf("attrib: asking usaged about a token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenInfo))
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return Identity{}, false, u.cfg.NegativeTTL, nil
	case resp.StatusCode != http.StatusOK:
		return Identity{}, false, 0, fmt.Errorf("attrib: usaged answered GET %s with %s: %.200s", tokensMePath, resp.Status, body)
	case err != nil:
		return Identity{}, false, 0, fmt.Errorf("attrib: reading usaged's answer about a token: %w", err)
	}
	var ti tokenInfoAnswer
	if err := json.Unmarshal(body, &ti); err != nil {
		return Identity{}, false, 0, fmt.Errorf("attrib: usaged's answer about a token is not a TokenInfo: %w", err)
	}
	ttl := u.cfg.TTL
	if exp, ok := tokenExpiry(tok); ok {
		ttl = min(ttl, exp.Sub(u.cfg.Now()))
	}
	if ti.Organization == nil || ti.OAuthClient == nil {
		return Identity{}, false, ttl, nil // the admin token: valid, but nobody's
	}
	id := Identity{OrganizationID: ti.Organization.ID, ClientID: ti.OAuthClient.ID, ClientName: ti.OAuthClient.Name}
	return id, id.complete(), ttl, nil
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
