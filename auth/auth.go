// Package auth keeps the organizations and OAuth clients of usaged, issues
// access tokens to clients by the client-credentials grant, and turns bearer
// tokens back into principals with permissions.
//
// Organizations and clients are cached in memory when the Service starts and
// kept in step with every change made through it, so that authenticating a
// request never touches the store. Access tokens are stateless and signed
// with HMAC-SHA256; deleting a client or rotating its secret ends its
// outstanding tokens at once, because every check reads the current record.
//
// Limiter counts requests per key, such as a bearer token, for rate limits.
package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// Limits on what callers may set, in characters, bytes or time.
const (
	MaxNameLen        = usage.MaxNameLen // organization and client names, in characters
	MaxDescriptionLen = 1024             // client descriptions

	DefaultTokenValidity = 86400 * time.Second
	MinTokenValidity     = 300 * time.Second    // Genesys' lower bound
	MaxTokenValidity     = 172800 * time.Second // Genesys' upper bound

	// MinSigningKeyLen is the shortest accepted token signing key: HMAC-SHA256
	// gains nothing from a longer one and loses strength with a shorter one.
	MinSigningKeyLen = 32
	// MinAdminTokenLen is the shortest accepted admin token, so that it cannot
	// be guessed.
	MinAdminTokenLen = 16
)

// secretLen is the number of random bytes in a client secret.
const secretLen = 32

// ErrInvalidClient is returned by IssueToken for an unknown client and for a
// wrong secret alike, so that callers cannot probe which client ids exist.
var ErrInvalidClient = &usage.Error{Kind: usage.KindUnauthorized, Message: "client id or secret is not valid"}

// Config configures a Service.
type Config struct {
	Registry store.Registry // where organizations and clients are kept; required
	// ReadThrough makes a lookup that misses the cache ask Registry: for
	// nodes that share one registry, where another node may have created
	// the organization or client. Off, the cache is the whole truth.
	ReadThrough bool
	// AdminToken is the bearer token of the operator, who may do anything in
	// every organization. Required, at least MinAdminTokenLen bytes.
	AdminToken string
	// SigningKey signs access tokens; at least MinSigningKeyLen bytes. Tokens
	// survive a restart only if the key does.
	SigningKey []byte
	Now        func() time.Time // default time.Now
	Logger     *slog.Logger     // default slog.Default()
	// BcryptCost is the cost of client secret hashes; 0 means
	// bcrypt.DefaultCost. Tests use bcrypt.MinCost.
	BcryptCost int

	// FailedLoginLimit is how many failed logins (a wrong secret, or an
	// unknown id) one client id may have per minute, from any address.
	// Beyond it, IssueToken refuses that id with a *LoginRefusedError until
	// the minute ends, unless the secret is one it remembers as good. 0
	// means DefaultFailedLoginLimit; negative, no limit.
	FailedLoginLimit int
	// FailedLoginAddressLimit is the same per remote address, as passed to
	// IssueTokenFrom. 0 means DefaultFailedLoginAddressLimit; negative, no
	// limit.
	FailedLoginAddressLimit int
	// SecretChecks bounds the bcrypt comparisons of IssueToken running at
	// once; 0 means half of GOMAXPROCS, at least 1, so that a flood of
	// logins leaves CPUs to every other request (and to logins that the
	// verified cache answers without bcrypt).
	SecretChecks int
	// SecretCheckWait is how long a login waits for a free comparison
	// before it is refused as busy; 0 means DefaultSecretCheckWait.
	SecretCheckWait time.Duration
	// VerifiedTTL is how long a client id and secret that passed a check
	// are remembered, so that logging in again needs no bcrypt; 0 means
	// DefaultVerifiedTTL, negative nothing is remembered. Rotating the
	// secret, updating or deleting the client forgets it at once.
	VerifiedTTL time.Duration
	// VerifiedMax bounds the remembered checks; 0 means DefaultVerifiedMax.
	VerifiedMax int
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Registry == nil {
		errs = append(errs, errors.New("auth: Registry is required"))
	}
	if len(c.AdminToken) < MinAdminTokenLen {
		errs = append(errs, fmt.Errorf("auth: AdminToken must be at least %d bytes, got %d", MinAdminTokenLen, len(c.AdminToken)))
	}
	if len(c.SigningKey) < MinSigningKeyLen {
		errs = append(errs, fmt.Errorf("auth: SigningKey must be at least %d bytes, got %d", MinSigningKeyLen, len(c.SigningKey)))
	}
	if c.BcryptCost != 0 && (c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost) {
		errs = append(errs, fmt.Errorf("auth: BcryptCost must be 0 or from %d to %d, got %d", bcrypt.MinCost, bcrypt.MaxCost, c.BcryptCost))
	}
	errs = append(errs, c.validateLogin()...)
	return errors.Join(errs...)
}

// Service manages organizations and clients and authenticates requests. It
// is safe for concurrent use.
type Service struct {
	cfg Config
	// dummyHash is compared against when a client id is unknown, so that an
	// unknown id takes as long to refuse as a wrong secret.
	dummyHash []byte
	login     *loginGuard

	// mu guards the cache. Writers hold it across the store call too, so the
	// cache and the store change in the same order.
	mu      sync.RWMutex
	writes  uint64 // writes made; a reload that saw them change loads again
	orgs    map[string]usage.Organization
	clients map[string]usage.Client // by client id; ids are unique across organizations
}

// New loads every organization and client from cfg.Registry and returns a
// Service serving from that cache.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	cfg.SigningKey = slices.Clone(cfg.SigningKey)
	s := &Service{cfg: cfg}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	var err error
	s.dummyHash, err = bcrypt.GenerateFromPassword([]byte("no client has this secret"), cfg.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if s.login, err = newLoginGuard(cfg); err != nil {
		return nil, err
	}
	cfg.Logger.Debug("auth loaded", "organizations", len(s.orgs), "clients", len(s.clients))
	return s, nil
}

// Reload replaces the cache with every organization and client in the
// registry. Nodes that share one registry (a cluster's metadata store)
// reload it periodically, so that a change made through another node —
// a deleted client, a rotated secret — takes effect on this one too; what
// another node creates is found at once by the lookups that miss the cache
// (see lookupClient and KnownOrganization).
func (s *Service) Reload(ctx context.Context) error {
	// A write that lands while the registry is read may be missing from
	// what was read (a client deleted: still usable; an organization
	// created: unknown): putting that in place would undo the write until
	// the next reload. So the load is done again until no write fell in it.
	for range 10 {
		s.mu.RLock()
		before := s.writes
		s.mu.RUnlock()
		om, cm, err := s.load(ctx)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if s.writes == before {
			s.orgs, s.clients = om, cm
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
	}
	return errors.New("auth: reload: the registry kept changing while it was read; the next reload tries again")
}

// load reads every organization and client from the registry.
func (s *Service) load(ctx context.Context) (map[string]usage.Organization, map[string]usage.Client, error) {
	orgs, err := s.cfg.Registry.Organizations(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: loading organizations: %w", err)
	}
	om := make(map[string]usage.Organization, len(orgs))
	cm := make(map[string]usage.Client)
	for _, o := range orgs {
		om[o.ID] = o
		cs, err := s.cfg.Registry.Clients(ctx, o.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("auth: loading clients of organization %s: %w", o.ID, err)
		}
		for _, c := range cs {
			cm[c.ID] = c
		}
	}
	return om, cm, nil
}

// lookupClient returns the client with id from the cache, or else from the
// registry (a client another node created), caching what it finds.
func (s *Service) lookupClient(ctx context.Context, id string) (usage.Client, bool) {
	s.mu.RLock()
	c, ok := s.clients[id]
	s.mu.RUnlock()
	if ok || !s.cfg.ReadThrough {
		return c, ok
	}
	c, err := s.cfg.Registry.Client(ctx, id)
	if err != nil {
		return usage.Client{}, false
	}
	s.mu.Lock()
	if _, known := s.orgs[c.OrganizationID]; known {
		s.clients[c.ID] = c
	}
	s.mu.Unlock()
	return c, true
}

// CreateOrganization creates an organization with a new id.
func (s *Service) CreateOrganization(ctx context.Context, name string) (usage.Organization, error) {
	if err := usage.CheckName("name", name); err != nil {
		return usage.Organization{}, err
	}
	o := usage.Organization{ID: uuid.NewString(), Name: name, CreatedAt: s.cfg.Now().UTC().Truncate(time.Second)}
	s.mu.Lock()
	s.writes++
	defer s.mu.Unlock()
	if err := s.cfg.Registry.PutOrganization(ctx, o); err != nil {
		return usage.Organization{}, fmt.Errorf("auth: storing organization: %w", err)
	}
	s.orgs[o.ID] = o
	return o, nil
}

// Organizations lists every organization ordered by id.
func (s *Service) Organizations(context.Context) ([]usage.Organization, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := slices.Collect(maps.Values(s.orgs))
	slices.SortFunc(out, func(a, b usage.Organization) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Organization returns the organization with id, or an error of kind
// usage.KindNotFound.
func (s *Service) Organization(_ context.Context, id string) (usage.Organization, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.orgs[id]
	if !ok {
		return usage.Organization{}, orgNotFound(id)
	}
	return o, nil
}

// KnownOrganization reports whether an organization with id exists. It
// reads the cache, so it suits per-event checks; with Config.ReadThrough a
// miss asks the registry once (an organization another node created) and
// caches what it finds.
func (s *Service) KnownOrganization(id string) bool {
	s.mu.RLock()
	_, ok := s.orgs[id]
	s.mu.RUnlock()
	if ok || !s.cfg.ReadThrough {
		return ok
	}
	o, err := s.cfg.Registry.Organization(context.Background(), id)
	if err != nil {
		return false
	}
	s.mu.Lock()
	s.orgs[o.ID] = o
	s.mu.Unlock()
	return true
}

func orgNotFound(id string) error {
	return usage.Errorf(usage.KindNotFound, "organizationId", "organization %q was not found", id)
}

func clientNotFound(id string) error {
	return usage.Errorf(usage.KindNotFound, "clientId", "client %q was not found", id)
}

// ClientSpec is what a caller chooses about a new client.
type ClientSpec struct {
	Name        string // required, at most MaxNameLen characters, printable (usage.CheckName)
	Description string // optional, at most MaxDescriptionLen bytes
	// Permissions must each be one of usage.Permissions; repeats are dropped.
	Permissions []string
	// AccessTokenValidity is the lifetime of the client's tokens, from
	// MinTokenValidity to MaxTokenValidity; 0 means DefaultTokenValidity.
	AccessTokenValidity time.Duration
	// RoleIDs, RoleDivisions and Scope are Genesys' and stored as given,
	// repeats dropped: at most MaxRoles of each, each id a name
	// (usage.CheckName). They grant nothing.
	RoleIDs       []string
	RoleDivisions []usage.RoleDivision
	Scope         []string
}

// MaxRoles bounds each of a client's role ids, role divisions and scopes,
// which are stored but grant nothing.
const MaxRoles = 100

// checkIDs checks and deduplicates a list of Genesys ids of field.
func checkIDs(field string, ids []string) ([]string, error) {
	if len(ids) > MaxRoles {
		return nil, usage.Errorf(usage.KindInvalid, field, "%s has %d entries; the limit is %d", field, len(ids), MaxRoles)
	}
	var out []string
	for _, id := range ids {
		if err := usage.CheckName(field, id); err != nil {
			return nil, err
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

func (spec *ClientSpec) check() error {
	if err := usage.CheckName("name", spec.Name); err != nil {
		return err
	}
	if len(spec.Description) > MaxDescriptionLen {
		return usage.Errorf(usage.KindInvalid, "description", "description is %d bytes long; the limit is %d", len(spec.Description), MaxDescriptionLen)
	}
	if !utf8.ValidString(spec.Description) {
		return usage.Errorf(usage.KindInvalid, "description", "description is not valid UTF-8")
	}
	var perms []string
	for _, p := range spec.Permissions {
		if !usage.KnownPermission(p) {
			return usage.Errorf(usage.KindInvalid, "permissions", "permission %q is not one of %s", p, strings.Join(usage.Permissions, ", "))
		}
		if !slices.Contains(perms, p) {
			perms = append(perms, p)
		}
	}
	if perms == nil {
		perms = []string{}
	}
	spec.Permissions = perms
	var err error
	if spec.RoleIDs, err = checkIDs("roleIds", spec.RoleIDs); err != nil {
		return err
	}
	if spec.Scope, err = checkIDs("scope", spec.Scope); err != nil {
		return err
	}
	if len(spec.RoleDivisions) > MaxRoles {
		return usage.Errorf(usage.KindInvalid, "roleDivisions", "roleDivisions has %d entries; the limit is %d", len(spec.RoleDivisions), MaxRoles)
	}
	var rds []usage.RoleDivision
	for _, rd := range spec.RoleDivisions {
		if err := usage.CheckName("roleDivisions.roleId", rd.RoleID); err != nil {
			return err
		}
		if err := usage.CheckName("roleDivisions.divisionId", rd.DivisionID); err != nil {
			return err
		}
		if !slices.Contains(rds, rd) {
			rds = append(rds, rd)
		}
	}
	spec.RoleDivisions = rds
	if spec.AccessTokenValidity == 0 {
		spec.AccessTokenValidity = DefaultTokenValidity
	}
	if v := spec.AccessTokenValidity; v < MinTokenValidity || v > MaxTokenValidity || v%time.Second != 0 {
		return usage.Errorf(usage.KindInvalid, "accessTokenValiditySeconds",
			"accessTokenValiditySeconds %v must be whole seconds from %d to %d", v.Seconds(), int(MinTokenValidity.Seconds()), int(MaxTokenValidity.Seconds()))
	}
	return nil
}

// newSecret returns a random client secret and its bcrypt hash.
func (s *Service) newSecret() (string, []byte, error) {
	b := make([]byte, secretLen)
	rand.Read(b) // never fails; see crypto/rand
	secret := base64.RawURLEncoding.EncodeToString(b)
	hash, err := bcrypt.GenerateFromPassword([]byte(secret), s.cfg.BcryptCost)
	if err != nil {
		return "", nil, fmt.Errorf("auth: hashing secret: %w", err)
	}
	return secret, hash, nil
}

// CreateClient creates a client of organization orgID and returns it with its
// secret. The secret is kept only as a hash: this is the one time it is known.
func (s *Service) CreateClient(ctx context.Context, orgID string, spec ClientSpec) (usage.Client, string, error) {
	if err := spec.check(); err != nil {
		return usage.Client{}, "", err
	}
	if !s.KnownOrganization(orgID) {
		return usage.Client{}, "", orgNotFound(orgID)
	}
	// Hash before taking the lock: bcrypt is slow on purpose.
	secret, hash, err := s.newSecret()
	if err != nil {
		return usage.Client{}, "", err
	}
	c := usage.Client{
		ID:                  uuid.NewString(),
		OrganizationID:      orgID,
		Name:                spec.Name,
		Description:         spec.Description,
		SecretHash:          hash,
		Permissions:         spec.Permissions,
		AccessTokenValidity: spec.AccessTokenValidity,
		CreatedAt:           s.cfg.Now().UTC().Truncate(time.Second),
		RoleIDs:             spec.RoleIDs,
		RoleDivisions:       spec.RoleDivisions,
		Scope:               spec.Scope,
	}
	s.mu.Lock()
	s.writes++
	defer s.mu.Unlock()
	if _, ok := s.orgs[orgID]; !ok {
		return usage.Client{}, "", orgNotFound(orgID)
	}
	if err := s.cfg.Registry.PutClient(ctx, c); err != nil {
		return usage.Client{}, "", fmt.Errorf("auth: storing client: %w", err)
	}
	s.clients[c.ID] = c
	return public(c), secret, nil
}

// public returns a copy of c safe to hand out: without the secret hash and
// sharing no slice with the cache.
func public(c usage.Client) usage.Client {
	c.SecretHash = nil
	c.Permissions = slices.Clone(c.Permissions)
	c.RoleIDs = slices.Clone(c.RoleIDs)
	c.RoleDivisions = slices.Clone(c.RoleDivisions)
	c.Scope = slices.Clone(c.Scope)
	return c
}

// Clients lists the clients of organization orgID ordered by id, without
// their secret hashes. A missing organization is an error of kind
// usage.KindNotFound.
func (s *Service) Clients(_ context.Context, orgID string) ([]usage.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.orgs[orgID]; !ok {
		return nil, orgNotFound(orgID)
	}
	out := []usage.Client{}
	for _, c := range s.clients {
		if c.OrganizationID == orgID {
			out = append(out, public(c))
		}
	}
	slices.SortFunc(out, func(a, b usage.Client) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Client returns client id of organization orgID without its secret hash. A
// client of another organization is reported as missing, with kind
// usage.KindNotFound, like one that does not exist.
func (s *Service) Client(_ context.Context, orgID, id string) (usage.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[id]
	if !ok || c.OrganizationID != orgID {
		return usage.Client{}, clientNotFound(id)
	}
	return public(c), nil
}

// UpdateClient replaces the name, description, permissions, access token
// validity, roles and scope of client id of organization orgID with those of spec, checked as
// CreateClient checks them, and returns the client. Its id, secret and
// creation time stay. Tokens already issued keep their expiry; the new
// permissions apply to them at once, since every request reads the current
// record. A missing client, or one of another organization, is an error of
// kind usage.KindNotFound.
//
// It acts as the operator; UpdateClientAs acts on behalf of a principal.
func (s *Service) UpdateClient(ctx context.Context, orgID, id string, spec ClientSpec) (usage.Client, error) {
	return s.updateClient(ctx, operator, orgID, id, spec)
}

func (s *Service) updateClient(ctx context.Context, by *Principal, orgID, id string, spec ClientSpec) (usage.Client, error) {
	if err := spec.check(); err != nil {
		return usage.Client{}, err
	}
	s.mu.Lock()
	s.writes++
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.OrganizationID != orgID {
		return usage.Client{}, clientNotFound(id)
	}
	// Checked under the lock, against the permissions the client holds at
	// the moment it changes.
	if err := mayManage(by, c); err != nil {
		return usage.Client{}, err
	}
	if err := mayGrant(by, spec.Permissions); err != nil {
		return usage.Client{}, err
	}
	c.Name = spec.Name
	c.Description = spec.Description
	c.Permissions = spec.Permissions
	c.AccessTokenValidity = spec.AccessTokenValidity
	c.RoleIDs, c.RoleDivisions, c.Scope = spec.RoleIDs, spec.RoleDivisions, spec.Scope
	if err := s.cfg.Registry.PutClient(ctx, c); err != nil {
		return usage.Client{}, fmt.Errorf("auth: storing client: %w", err)
	}
	s.clients[id] = c
	s.forgetClient(id)
	return public(c), nil
}

// DeleteClient deletes client id of organization orgID. Its tokens stop
// working at once. A missing client is an error of kind usage.KindNotFound.
// It acts as the operator; DeleteClientAs acts on behalf of a principal.
func (s *Service) DeleteClient(ctx context.Context, orgID, id string) error {
	return s.deleteClient(ctx, operator, orgID, id)
}

func (s *Service) deleteClient(ctx context.Context, by *Principal, orgID, id string) error {
	s.mu.Lock()
	s.writes++
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.OrganizationID != orgID {
		return clientNotFound(id)
	}
	if err := mayManage(by, c); err != nil {
		return err
	}
	if err := s.cfg.Registry.DeleteClient(ctx, orgID, id); err != nil && usage.KindOf(err) != usage.KindNotFound {
		return fmt.Errorf("auth: deleting client: %w", err)
	}
	delete(s.clients, id)
	s.forgetClient(id)
	return nil
}

// RotateSecret gives client id of organization orgID a new secret and returns
// it. The old secret and every token issued with it stop working at once.
// It acts as the operator; RotateSecretAs acts on behalf of a principal.
func (s *Service) RotateSecret(ctx context.Context, orgID, id string) (string, error) {
	return s.rotateSecret(ctx, operator, orgID, id)
}

func (s *Service) rotateSecret(ctx context.Context, by *Principal, orgID, id string) (string, error) {
	// Checked before hashing, so that a refusal costs no bcrypt, and again
	// under the lock, in case the client changed in between.
	c, err := s.Client(ctx, orgID, id)
	if err != nil {
		return "", err
	}
	if err := mayManage(by, c); err != nil {
		return "", err
	}
	secret, hash, err := s.newSecret()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.writes++
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.OrganizationID != orgID {
		return "", clientNotFound(id) // deleted while the hash was computed
	}
	if err := mayManage(by, c); err != nil {
		return "", err
	}
	c.SecretHash = hash
	if err := s.cfg.Registry.PutClient(ctx, c); err != nil {
		return "", fmt.Errorf("auth: storing client: %w", err)
	}
	s.clients[id] = c
	s.forgetClient(id)
	return secret, nil
}
