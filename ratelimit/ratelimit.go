// Package ratelimit applies per-minute request budgets to the HTTP faces of
// usaged. Each face chooses the key a request counts against (the principal
// behind a valid credential, else the remote address) and how a refusal
// reads in its own error shape; Budget does the counting, the Retry-After
// header and the choice between going on and refusing, the same way for
// every face.
package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/usaged/usaged/auth"
)

// Window is the length of a budget's counting window: limits are per minute.
const Window = time.Minute

// MaxLimit is the largest limit a Budget takes.
const MaxLimit = math.MaxInt32

// Config configures a Budget.
type Config struct {
	// Limit is how many requests one key may make per Window. 0 means
	// Default; negative means unlimited, and New returns a nil Budget.
	Limit   int
	Default int              // the limit when Limit is 0; positive
	Now     func() time.Time // the clock of the windows; default time.Now
	// Headers, when set, adds the face's rate limit headers to every
	// response counted, allowed or refused.
	Headers func(h http.Header, d auth.Decision)
	// Refuse writes the face's answer to a refused request: a 429 in its
	// error shape. Retry-After is already set. Required.
	Refuse func(w http.ResponseWriter, r *http.Request, d auth.Decision)
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Limit > MaxLimit {
		errs = append(errs, fmt.Errorf("ratelimit: Limit must be at most %d, got %d", MaxLimit, c.Limit))
	}
	if c.Limit == 0 && (c.Default <= 0 || c.Default > MaxLimit) {
		errs = append(errs, fmt.Errorf("ratelimit: Default must be from 1 to %d, got %d", MaxLimit, c.Default))
	}
	if c.Refuse == nil {
		errs = append(errs, errors.New("ratelimit: Refuse is required"))
	}
	return errors.Join(errs...)
}

// Budget limits the requests of each key to a number per minute. A nil
// *Budget is unlimited. It is safe for concurrent use.
type Budget struct {
	limiter *auth.Limiter
	headers func(http.Header, auth.Decision)
	refuse  func(http.ResponseWriter, *http.Request, auth.Decision)
}

// New returns a Budget for cfg, or nil if cfg.Limit is negative.
func New(cfg Config) (*Budget, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Limit < 0 {
		return nil, nil
	}
	limit := cfg.Limit
	if limit == 0 {
		limit = cfg.Default
	}
	l, err := auth.NewLimiter(auth.LimiterConfig{Limit: limit, Window: Window, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	return &Budget{limiter: l, headers: cfg.Headers, refuse: cfg.Refuse}, nil
}

// Allow counts r against key and reports whether it may proceed. If not, it
// has set Retry-After and answered through the face's Refuse.
func (b *Budget) Allow(w http.ResponseWriter, r *http.Request, key Key) bool {
	if b == nil {
		return true
	}
	d := b.limiter.Take(string(key))
	if b.headers != nil {
		b.headers(w.Header(), d)
	}
	if d.Allowed {
		return true
	}
	w.Header().Set("Retry-After", strconv.Itoa(d.ResetSeconds()))
	b.refuse(w, r, d)
	return false
}

// Key is what a request counts against. Each kind of key starts with a NUL
// byte and its kind's name, so that keys of different kinds never collide
// (no header value holds a NUL byte).
type Key string

// AdminKey is the key of requests with the admin token: one budget of its
// own, whatever spelling of the token they use.
const AdminKey Key = "\x00admin"

// AddressKey is the key of requests from r's remote address: those without
// a valid credential, and those to a login endpoint.
func AddressKey(r *http.Request) Key { return "\x00ip " + Key(RemoteIP(r)) }

// ClientKey is the key of requests with a token of OAuth client id. Every
// token of the client counts against it, so minting new tokens gains no
// budget.
func ClientKey(id string) Key { return "\x00client " + Key(id) }

// DigestKey is the key of requests with a credential known by its SHA-256
// digest, such as an API key: the budget never holds the secret itself.
func DigestKey(kind string, digest [sha256.Size]byte) Key {
	return "\x00" + Key(kind) + " " + Key(hex.EncodeToString(digest[:]))
}

// RemoteIP is the address of the connection's peer. Forwarding headers are
// not trusted: any client could set them to spread its requests over many
// budgets.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
