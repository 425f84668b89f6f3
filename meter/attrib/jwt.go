package attrib

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Default claim names of JWTConfig.
const (
	DefaultOrgClaim        = "org_id"
	DefaultClientClaim     = "client_id"
	DefaultClientNameClaim = "client_name"
	DefaultUserClaim       = "sub"
	// fallbackClientClaim is OpenID Connect's authorized party: the client
	// a token was issued to, which providers without client_id set.
	fallbackClientClaim = "azp"
)

const (
	// jwksTimeout bounds one JWKS fetch.
	jwksTimeout = 10 * time.Second
	// jwksRefresh is how often the JWKS is fetched regardless. A token
	// signed by a key not yet seen triggers a fetch too, so this only
	// matters for keys the provider revokes.
	jwksRefresh = time.Hour
	// unknownKIDRefresh is how often at most a token with an unknown key id
	// fetches the JWKS: often enough to pick up a rotated key quickly, rare
	// enough that made-up key ids cannot turn the proxy against the
	// provider.
	unknownKIDRefresh = time.Minute
	// unknownKIDWait is the longest a request waits for that fetch,
	// including waiting for its turn; past it the token is unverifiable.
	unknownKIDWait = 5 * time.Second
	// clockSkew is how far the provider's clock may be from ours when
	// checking exp and nbf.
	clockSkew = 30 * time.Second
)

// signingMethods are the algorithms accepted: the asymmetric ones a JWKS
// publishes keys for. HMAC is left out, so that a public key can never be
// used as a shared secret, and so is "none".
var signingMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// JWTConfig configures NewJWT.
type JWTConfig struct {
	// JWKSURL is where the identity provider publishes its public keys,
	// such as https://idp.example.com/.well-known/jwks.json; required.
	JWKSURL string
	// Issuer and Audience must equal the token's iss and be one of its aud;
	// both required, since a provider signs tokens for other services and
	// other tenants with the same keys.
	Issuer, Audience string
	// OrgClaim, ClientClaim, ClientNameClaim and UserClaim name the claims
	// that hold the identity; each may hold a string or a number. Defaults
	// DefaultOrgClaim, DefaultClientClaim (then "azp" when client_id is
	// absent; a ClientClaim that is set has no fallback),
	// DefaultClientNameClaim and DefaultUserClaim.
	OrgClaim, ClientClaim, ClientNameClaim, UserClaim string
	// Client fetches the JWKS; default a client with a 10 s timeout.
	Client *http.Client
	// Now is the clock that exp and nbf are checked against; default
	// time.Now.
	Now func() time.Time
	// TTL is how long a verified token is taken on trust without checking
	// its signature again, never past its exp: a key the provider
	// withdraws stops verifying within it. Default DefaultTTL.
	TTL time.Duration
	// MaxEntries bounds the verified tokens remembered; default
	// DefaultMaxEntries.
	MaxEntries int
}

// Validate reports every problem with the configuration.
func (c JWTConfig) Validate() error {
	var errs []error
	if c.JWKSURL == "" {
		errs = append(errs, errors.New("attrib: JWKSURL is required, such as https://idp.example.com/.well-known/jwks.json"))
	} else if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("attrib: JWKSURL must be an http or https URL, got %q", c.JWKSURL))
	}
	if c.Issuer == "" {
		errs = append(errs, errors.New("attrib: Issuer is required: the iss of the provider's tokens"))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("attrib: Audience is required: the aud the provider puts in tokens for this API"))
	}
	return errors.Join(errs...)
}

// JWT attributes bearer tokens that are JWTs of another identity provider,
// verified against the keys it publishes. A token is an identity when its
// signature holds with a published key (RSA, RSA-PSS, ECDSA or EdDSA), its
// iss and aud are the configured ones, it has not expired (exp is
// required), nbf has passed, and it carries an organization and a client.
//
// Verified tokens are remembered by their SHA-256 (see TTL), so that a
// client's every request does not pay for a signature check.
type JWT struct {
	cfg          JWTConfig
	clientClaims []string
	parser       *jwt.Parser
	keys         keyfunc.Keyfunc
	health       *jwksHealth

	mu    sync.Mutex
	cache *tokenCache // verified tokens only
}

var _ Attributor = (*JWT)(nil)

// NewJWT returns a JWT for cfg. It fetches the JWKS once and then keeps it
// fresh in the background until ctx ends. An unreachable JWKS does not fail
// it, so that a provider outage cannot keep the proxy from starting:
// Attribute then reports the failure for each token it cannot verify.
func NewJWT(ctx context.Context, cfg JWTConfig) (*JWT, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: jwksTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	cfg.OrgClaim = cmp.Or(cfg.OrgClaim, DefaultOrgClaim)
	cfg.ClientNameClaim = cmp.Or(cfg.ClientNameClaim, DefaultClientNameClaim)
	cfg.UserClaim = cmp.Or(cfg.UserClaim, DefaultUserClaim)
	clientClaims := []string{cfg.ClientClaim}
	if cfg.ClientClaim == "" {
		clientClaims = []string{DefaultClientClaim, fallbackClientClaim}
	}

	health := &jwksHealth{}
	store, err := jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    cfg.Client,
		Ctx:                       ctx,
		HTTPTimeout:               jwksTimeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshErrorHandler:       func(_ context.Context, err error) { health.set(err) },
		RefreshInterval:           jwksRefresh,
		Storage:                   watchedStorage{Storage: jwkset.NewMemoryStorage(), health: health},
	})
	if err != nil {
		return nil, fmt.Errorf("attrib: JWKS %s: %w", cfg.JWKSURL, err)
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{cfg.JWKSURL: store},
		RateLimitWaitMax:  unknownKIDWait,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(unknownKIDRefresh), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("attrib: JWKS %s: %w", cfg.JWKSURL, err)
	}
	keys, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: client})
	if err != nil {
		return nil, fmt.Errorf("attrib: JWKS %s: %w", cfg.JWKSURL, err)
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods(signingMethods),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(clockSkew),
		jwt.WithTimeFunc(cfg.Now),
		// Numbers stay as written, so that a numeric id of 20 digits is
		// not rounded through float64.
		jwt.WithJSONNumber(),
	)
	return &JWT{cfg: cfg, clientClaims: clientClaims, parser: parser, keys: keys, health: health, cache: newTokenCache(cfg.MaxEntries)}, nil
}

// Attribute implements Attributor for the request's bearer token. Its
// error reports a token that could not be verified because the JWKS could
// not be fetched; any other token that does not verify is simply not an
// identity.
func (j *JWT) Attribute(ctx context.Context, r *http.Request) (Identity, bool, error) {
	tok, ok := BearerToken(r)
	if !ok {
		return Identity{}, false, nil
	}
	key := tokenKey(sha256.Sum256([]byte(tok)))
	now := j.cfg.Now()
	j.mu.Lock()
	e, ok := j.cache.get(key, now)
	j.mu.Unlock()
	if ok {
		return e.id, true, nil
	}
	claims := jwt.MapClaims{}
	if _, err := j.parser.ParseWithClaims(tok, claims, j.keys.KeyfuncCtx(ctx)); err != nil {
		if herr := j.health.get(); herr != nil && errors.Is(err, jwt.ErrTokenUnverifiable) {
			return Identity{}, false, fmt.Errorf("attrib: JWT not verified, since the JWKS %s could not be fetched: %w", j.cfg.JWKSURL, herr)
		}
		return Identity{}, false, nil
	}
	id := Identity{
		OrganizationID: claimString(claims, j.cfg.OrgClaim),
		ClientName:     claimString(claims, j.cfg.ClientNameClaim),
		UserID:         claimString(claims, j.cfg.UserClaim),
	}
	for _, name := range j.clientClaims {
		if id.ClientID = claimString(claims, name); id.ClientID != "" {
			break
		}
	}
	if !id.complete() {
		return Identity{}, false, nil
	}
	// Only verified identities are remembered: a token refused now (an
	// unknown key, the JWKS down) may verify later.
	expires := now.Add(j.cfg.TTL)
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil && exp.Before(expires) {
		expires = exp.Time
	}
	if now.Before(expires) {
		j.mu.Lock()
		j.cache.put(&entry{key: key, id: id, ok: true, expires: expires})
		j.mu.Unlock()
	}
	return id, true, nil
}

// claimString returns claim name as a string: a string as it is, a number
// in its shortest decimal form. Anything else is "", as an absent claim.
func claimString(claims jwt.MapClaims, name string) string {
	switch v := claims[name].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case float64: // not produced with WithJSONNumber, but harmless to accept
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// jwksHealth is the outcome of the last JWKS fetch: nil after a success.
// jwkset reports failures to a handler but successes to no one, so the
// key storage's replace-all, which only a successful fetch calls, reports
// those.
type jwksHealth struct {
	mu  sync.Mutex
	err error
}

func (h *jwksHealth) set(err error) {
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
}

func (h *jwksHealth) get() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// watchedStorage is a key storage that records each successful fetch.
type watchedStorage struct {
	jwkset.Storage
	health *jwksHealth
}

// KeyReplaceAll replaces the keys with those of a fetched JWKS.
func (s watchedStorage) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	err := s.Storage.KeyReplaceAll(ctx, given)
	if err == nil {
		s.health.set(nil)
	}
	return err
}
