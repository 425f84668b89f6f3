package auth

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/usaged/usaged/usage"
)

// Defaults of the login protections of Config.
const (
	// DefaultFailedLoginLimit is how many failed logins one client id may
	// have per minute, from any address. Secrets are 256 random bits, so
	// this bounds the CPU an attacker spends, not the odds of a guess.
	DefaultFailedLoginLimit = 10
	// DefaultFailedLoginAddressLimit is how many failed logins one remote
	// address may have per minute, whatever client ids it tries.
	DefaultFailedLoginAddressLimit = 30
	// DefaultSecretCheckWait is how long a login waits for a free secret
	// check before it is refused as busy.
	DefaultSecretCheckWait = time.Second
	// DefaultVerifiedTTL is how long a successful check of a client id and
	// secret is remembered.
	DefaultVerifiedTTL = 5 * time.Minute
	// DefaultVerifiedMax bounds the remembered checks: about 1 MiB.
	DefaultVerifiedMax = 10_000
)

// failedLoginWindow is the window failed logins are counted in.
const failedLoginWindow = time.Minute

// failedLoginKeys bounds the client ids and addresses whose failures are
// counted separately in one window; beyond it they share counters (see
// LimiterConfig.MaxKeys), so that a flood of made-up ids is limited jointly.
const failedLoginKeys = 1 << 16

// LoginRefusedError is returned by IssueToken when it did not check the
// secret at all: too many failed logins of the client id or the address in
// the current minute, or every secret check busy for too long. Its kind is
// usage.KindUnavailable; faces that tell the two apart answer 429 and 503.
type LoginRefusedError struct {
	// Busy is set when every secret check stayed taken for the wait: the
	// server is overloaded. Otherwise the failed-login limit of Subject was
	// reached.
	Busy bool
	// Subject is what reached its failed-login limit: "client id" or
	// "address". Empty when Busy.
	Subject    string
	Limit      int           // the failed-login limit of Subject, per minute
	RetryAfter time.Duration // when trying again may succeed
	err        *usage.Error
}

func (e *LoginRefusedError) Error() string { return e.err.Error() }
func (e *LoginRefusedError) Unwrap() error { return e.err }

func tooManyFailures(subject string, d Decision) *LoginRefusedError {
	return &LoginRefusedError{Subject: subject, Limit: d.Limit, RetryAfter: d.Reset,
		err: usage.Errorf(usage.KindUnavailable, "", "too many failed logins for this %s: the limit is %d a minute; retry in %d seconds",
			subject, d.Limit, d.ResetSeconds())}
}

// errBusy is returned when no secret check was free within the wait.
var errBusy = &LoginRefusedError{Busy: true, RetryAfter: time.Second,
	err: usage.Errorf(usage.KindUnavailable, "", "too many logins are being checked at once; retry in 1 second")}

// loginGuard holds what protects IssueToken: the failed-login counters,
// the bound on concurrent bcrypt checks and the remembered good checks.
type loginGuard struct {
	failedByID   *Limiter // nil: not limited
	failedByAddr *Limiter // nil: not limited
	checks       chan struct{}
	checkWait    time.Duration
	verified     *verifiedCache // nil: nothing remembered
}

func newLoginGuard(cfg Config) (*loginGuard, error) {
	g := &loginGuard{checkWait: cfg.SecretCheckWait}
	if g.checkWait == 0 {
		g.checkWait = DefaultSecretCheckWait
	}
	n := cfg.SecretChecks
	if n == 0 {
		n = max(1, runtime.GOMAXPROCS(0)/2)
	}
	g.checks = make(chan struct{}, n)
	var err error
	if g.failedByID, err = failureLimiter(cfg.FailedLoginLimit, DefaultFailedLoginLimit, cfg.Now); err != nil {
		return nil, err
	}
	if g.failedByAddr, err = failureLimiter(cfg.FailedLoginAddressLimit, DefaultFailedLoginAddressLimit, cfg.Now); err != nil {
		return nil, err
	}
	if cfg.VerifiedTTL >= 0 {
		g.verified = newVerifiedCache(cmp.Or(cfg.VerifiedTTL, DefaultVerifiedTTL), cmp.Or(cfg.VerifiedMax, DefaultVerifiedMax), cfg.Now)
	}
	return g, nil
}

func failureLimiter(limit, def int, now func() time.Time) (*Limiter, error) {
	if limit < 0 {
		return nil, nil
	}
	return NewLimiter(LimiterConfig{Limit: cmp.Or(limit, def), Window: failedLoginWindow, MaxKeys: failedLoginKeys, Now: now})
}

// validateLogin reports the problems of cfg's login protection fields.
func (c Config) validateLogin() []error {
	var errs []error
	if c.FailedLoginLimit > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("auth: FailedLoginLimit must be at most %d, got %d", math.MaxInt32, c.FailedLoginLimit))
	}
	if c.FailedLoginAddressLimit > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("auth: FailedLoginAddressLimit must be at most %d, got %d", math.MaxInt32, c.FailedLoginAddressLimit))
	}
	if c.SecretChecks < 0 {
		errs = append(errs, fmt.Errorf("auth: SecretChecks must not be negative, got %d", c.SecretChecks))
	}
	if c.SecretCheckWait < 0 {
		errs = append(errs, fmt.Errorf("auth: SecretCheckWait must not be negative, got %s", c.SecretCheckWait))
	}
	if c.VerifiedMax < 0 {
		errs = append(errs, fmt.Errorf("auth: VerifiedMax must not be negative, got %d", c.VerifiedMax))
	}
	return errs
}

// admit fails if the client id or the address has used up its failed
// logins in this window.
func (g *loginGuard) admit(clientID, addr string) error {
	if g.failedByID != nil {
		if d := g.failedByID.Peek(clientID); !d.Allowed {
			return tooManyFailures("client id", d)
		}
	}
	if g.failedByAddr != nil && addr != "" {
		if d := g.failedByAddr.Peek(addr); !d.Allowed {
			return tooManyFailures("address", d)
		}
	}
	return nil
}

// failed counts one failed login of the client id and the address.
func (g *loginGuard) failed(clientID, addr string) {
	if g.failedByID != nil {
		g.failedByID.Take(clientID)
	}
	if g.failedByAddr != nil && addr != "" {
		g.failedByAddr.Take(addr)
	}
}

// compare runs one bcrypt comparison once a check is free. bcrypt costs
// tens of milliseconds of CPU on purpose; unbounded, a flood of logins
// would starve every other request of the CPU.
func (g *loginGuard) compare(ctx context.Context, hash []byte, secret string) (bool, error) {
	select {
	case g.checks <- struct{}{}:
	default:
		t := time.NewTimer(g.checkWait)
		defer t.Stop()
		select {
		case g.checks <- struct{}{}:
		case <-t.C:
			return false, errBusy
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	defer func() { <-g.checks }()
	// bcrypt compares in constant time.
	return bcrypt.CompareHashAndPassword(hash, []byte(secret)) == nil, nil
}

// verifiedCache remembers the client ids and secrets that passed a check
// recently, so that a client logging in again costs a hash, not bcrypt.
// Entries are keyed by an HMAC of the id and secret under a key made at
// start, so that the cache holds nothing a secret could be recovered from.
// An entry is good only while the client still has the secret hash it was
// checked against, so a rotated secret is never accepted from the cache
// even before forget runs.
type verifiedCache struct {
	key []byte
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]verifiedEntry
}

type verifiedEntry struct {
	clientID string
	tag      string // secretTag of the hash the secret was checked against
	expires  time.Time
}

func newVerifiedCache(ttl time.Duration, maxEntries int, now func() time.Time) *verifiedCache {
	key := make([]byte, 32)
	rand.Read(key) // never fails; see crypto/rand
	return &verifiedCache{key: key, ttl: ttl, max: maxEntries, now: now, entries: make(map[[sha256.Size]byte]verifiedEntry)}
}

func (v *verifiedCache) sum(clientID, secret string) [sha256.Size]byte {
	m := hmac.New(sha256.New, v.key)
	// The id's length first, so that no other id and secret run together
	// into the same bytes.
	m.Write(binary.AppendUvarint(nil, uint64(len(clientID))))
	m.Write([]byte(clientID))
	m.Write([]byte(secret))
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// lookup reports whether clientID and secret passed a check against the
// secret hash tagged tag less than the TTL ago.
func (v *verifiedCache) lookup(clientID, secret, tag string) bool {
	k := v.sum(clientID, secret)
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.entries[k]
	if !ok {
		return false
	}
	if !v.now().Before(e.expires) || e.clientID != clientID || e.tag != tag {
		delete(v.entries, k)
		return false
	}
	return true
}

// remember records that clientID and secret passed a check against the
// secret hash tagged tag.
func (v *verifiedCache) remember(clientID, secret, tag string) {
	k := v.sum(clientID, secret)
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.entries[k]; !ok && len(v.entries) >= v.max {
		for ek, e := range v.entries {
			if !now.Before(e.expires) {
				delete(v.entries, ek)
			}
		}
		// Still full of live entries: drop one at random (map order). The
		// dropped client pays one bcrypt on its next login, no more.
		for ek := range v.entries {
			if len(v.entries) < v.max {
				break
			}
			delete(v.entries, ek)
		}
	}
	v.entries[k] = verifiedEntry{clientID: clientID, tag: tag, expires: now.Add(v.ttl)}
}

// forget drops every entry of clientID: its secret, permissions or
// existence changed.
func (v *verifiedCache) forget(clientID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, e := range v.entries {
		if e.clientID == clientID {
			delete(v.entries, k)
		}
	}
}

// forgetClient drops what the guard remembers of clientID.
func (s *Service) forgetClient(clientID string) {
	if s.login.verified != nil {
		s.login.verified.forget(clientID)
	}
}

// checkSecret returns the client clientID if secret is its secret. It
// consults, in order: the remembered good checks (a hit skips the failed-
// login limits too, since it proves the secret without bcrypt); the failed-
// login limits of the id and of addr (empty: none); and bcrypt, bounded in
// concurrency. A wrong secret or an unknown id is ErrInvalidClient and
// counts as a failed login of both.
func (s *Service) checkSecret(ctx context.Context, addr, clientID, secret string) (usage.Client, error) {
	c, ok := s.lookupClient(ctx, clientID)
	g := s.login
	var tag string
	if ok {
		tag = secretTag(c.SecretHash)
		if g.verified != nil && g.verified.lookup(clientID, secret, tag) {
			return c, nil
		}
	}
	if err := g.admit(clientID, addr); err != nil {
		return usage.Client{}, err
	}
	hash := c.SecretHash
	if !ok {
		// An unknown id takes as long to refuse as a wrong secret.
		hash = s.dummyHash
	}
	match, err := g.compare(ctx, hash, secret)
	if err != nil {
		return usage.Client{}, err
	}
	if !match || !ok {
		g.failed(clientID, addr)
		return usage.Client{}, ErrInvalidClient
	}
	if g.verified != nil {
		g.verified.remember(clientID, secret, tag)
	}
	return c, nil
}
