// Package tenancy keeps the hierarchy behind the service-usage reports —
// partners, their resellers, collections and the customer services — and the
// API keys scoped to a part of it.
//
// The whole registry is loaded into memory when the Registry starts and kept
// in step with every change made through it: reports list and filter
// thousands of services per request, and authenticating a key must not touch
// the store. Changes are written to the store before they become visible.
//
// What a caller may see and change is decided here too: Registry.As returns
// the registry as one caller (the operator, or a key's scope) sees it, and
// every face answers its callers through that view. The Registry's own
// methods are unchecked, for the operator's tools and for loading.
package tenancy

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// KeyPrefix starts every API key, so that a leaked key is recognisable.
const KeyPrefix = "usk_"

// Config configures a Registry.
type Config struct {
	Store  store.ServiceRegistry
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default slog.Default()
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("tenancy: Store is required")
	}
	return nil
}

// Registry is the in-memory, write-through registry. It is safe for
// concurrent use.
type Registry struct {
	cfg Config

	mu          sync.RWMutex
	writes      uint64 // writes made; a reload that saw them change loads again
	partners    map[usage.GUID]usage.Partner
	resellers   map[usage.GUID]usage.Reseller
	collections map[usage.GUID]usage.Collection
	services    map[usage.GUID]*usage.Service
	ordered     []*usage.Service // by CreatedOn, then GUID: the order of every listing
	keys        map[[32]byte]usage.APIKey
}

// New loads the registry from cfg.Store.
func New(ctx context.Context, cfg Config) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Registry{cfg: cfg}
	if err := r.Reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload replaces the in-memory registry with what the store holds. Nodes
// that share one store (a cluster's metadata store) reload it
// periodically, so that what another node changed shows here too.
func (r *Registry) Reload(ctx context.Context) error {
	// A write that lands while the store is read may be missing from what
	// was read: replacing the registry with it would drop the write until
	// the next reload. So the load is done again until no write fell in it.
	for range 10 {
		r.mu.RLock()
		before := r.writes
		r.mu.RUnlock()
		swap, err := r.load(ctx)
		if err != nil {
			return err
		}
		r.mu.Lock()
		if r.writes == before {
			swap()
			r.mu.Unlock()
			return nil
		}
		r.mu.Unlock()
	}
	return errors.New("tenancy: reload: the registry kept changing while it was read; the next reload tries again")
}

// load reads the registry from the store and returns the function that
// puts it in place, to be called holding mu.
func (r *Registry) load(ctx context.Context) (func(), error) {
	st := r.cfg.Store
	partners, resellers := map[usage.GUID]usage.Partner{}, map[usage.GUID]usage.Reseller{}
	collections, services := map[usage.GUID]usage.Collection{}, map[usage.GUID]*usage.Service{}
	keys := map[[32]byte]usage.APIKey{}
	var ordered []*usage.Service
	ps, err := st.Partners(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenancy: load partners: %w", err)
	}
	for _, p := range ps {
		partners[p.GUID] = p
	}
	rs, err := st.Resellers(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenancy: load resellers: %w", err)
	}
	for _, x := range rs {
		resellers[x.GUID] = x
	}
	cs, err := st.Collections(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenancy: load collections: %w", err)
	}
	for _, c := range cs {
		collections[c.GUID] = c
	}
	ss, err := st.Services(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenancy: load services: %w", err)
	}
	for i := range ss {
		services[ss[i].GUID] = &ss[i]
		ordered = append(ordered, &ss[i])
	}
	slices.SortFunc(ordered, compareServices)
	ks, err := st.APIKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenancy: load API keys: %w", err)
	}
	for _, k := range ks {
		keys[k.Digest] = k
	}
	return func() {
		r.partners, r.resellers, r.collections, r.services, r.ordered, r.keys = partners, resellers, collections, services, ordered, keys
	}, nil
}

func compareServices(a, b *usage.Service) int {
	return cmp.Or(a.CreatedOn.Compare(b.CreatedOn), slices.Compare(a.GUID[:], b.GUID[:]))
}

// byName orders listings by name, then GUID, so that equal names list stably.
func byName(a, b string, ga, gb usage.GUID) int {
	return cmp.Or(strings.Compare(a, b), slices.Compare(ga[:], gb[:]))
}

func (r *Registry) now() time.Time { return r.cfg.Now().UTC().Truncate(time.Second) }

// CreatePartner adds a partner.
func (r *Registry) CreatePartner(ctx context.Context, name string) (usage.Partner, error) {
	if err := usage.CheckName("name", name); err != nil {
		return usage.Partner{}, err
	}
	p := usage.Partner{GUID: usage.NewGUID(), Name: name, Created: r.now()}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	if err := r.cfg.Store.PutPartner(ctx, p); err != nil {
		return usage.Partner{}, err
	}
	r.partners[p.GUID] = p
	return p, nil
}

// Partner returns the partner with guid.
func (r *Registry) Partner(guid usage.GUID) (usage.Partner, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.partners[guid]
	return p, ok
}

// Partners lists every partner by name.
func (r *Registry) Partners() []usage.Partner {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]usage.Partner, 0, len(r.partners))
	for _, p := range r.partners {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b usage.Partner) int { return byName(a.Name, b.Name, a.GUID, b.GUID) })
	return out
}

// CreateReseller adds a reseller to an existing partner.
func (r *Registry) CreateReseller(ctx context.Context, partner usage.GUID, name string) (usage.Reseller, error) {
	if err := usage.CheckName("name", name); err != nil {
		return usage.Reseller{}, err
	}
	x := usage.Reseller{GUID: usage.NewGUID(), PartnerGUID: partner, Name: name, Created: r.now()}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	if _, ok := r.partners[partner]; !ok {
		return usage.Reseller{}, usage.Errorf(usage.KindNotFound, "PartnerGuid", "partner %s does not exist", partner)
	}
	if err := r.cfg.Store.PutReseller(ctx, x); err != nil {
		return usage.Reseller{}, err
	}
	r.resellers[x.GUID] = x
	return x, nil
}

// Reseller returns the reseller with guid.
func (r *Registry) Reseller(guid usage.GUID) (usage.Reseller, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	x, ok := r.resellers[guid]
	return x, ok
}

// Resellers lists the resellers of a partner by name.
func (r *Registry) Resellers(partner usage.GUID) []usage.Reseller {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []usage.Reseller
	for _, x := range r.resellers {
		if x.PartnerGUID == partner {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b usage.Reseller) int { return byName(a.Name, b.Name, a.GUID, b.GUID) })
	return out
}

// CreateCollection adds a collection of an existing partner. A zero GUID is
// assigned; a zero SiteGUID gets one too (a collection is always in a site).
func (r *Registry) CreateCollection(ctx context.Context, c usage.Collection) (usage.Collection, error) {
	if err := usage.CheckName("name", c.Name); err != nil {
		return usage.Collection{}, err
	}
	if err := usage.CheckText("siteName", c.SiteName); err != nil {
		return usage.Collection{}, err
	}
	if c.GUID.IsZero() {
		c.GUID = usage.NewGUID()
	}
	if c.SiteGUID.IsZero() {
		c.SiteGUID = usage.NewGUID()
	}
	c.Created = r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	if _, ok := r.partners[c.PartnerGUID]; !ok {
		return usage.Collection{}, usage.Errorf(usage.KindNotFound, "PartnerGuid", "partner %s does not exist", c.PartnerGUID)
	}
	if _, ok := r.collections[c.GUID]; ok {
		return usage.Collection{}, usage.Errorf(usage.KindConflict, "CollectionGuid", "collection %s already exists", c.GUID)
	}
	if err := r.cfg.Store.PutCollection(ctx, c); err != nil {
		return usage.Collection{}, err
	}
	r.collections[c.GUID] = c
	return c, nil
}

// Collection returns the collection with guid.
func (r *Registry) Collection(guid usage.GUID) (usage.Collection, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.collections[guid]
	return c, ok
}

// Collections lists the collections for which keep returns true, by name.
func (r *Registry) Collections(keep func(*usage.Collection) bool) []usage.Collection {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []usage.Collection
	for _, c := range r.collections {
		if keep(&c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b usage.Collection) int { return byName(a.Name, b.Name, a.GUID, b.GUID) })
	return out
}

// CreateService adds a service to an existing reseller, whose partner it
// takes; its collection, if set, must exist and belong to that partner. A
// zero GUID is assigned, a zero CreatedOn is now. The caller has validated
// the other fields; the name is checked here as every name is.
func (r *Registry) CreateService(ctx context.Context, s usage.Service) (usage.Service, error) {
	if err := usage.CheckName("name", s.Name); err != nil {
		return usage.Service{}, err
	}
	if s.GUID.IsZero() {
		s.GUID = usage.NewGUID()
	}
	if s.CreatedOn.IsZero() {
		s.CreatedOn = r.now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	x, ok := r.resellers[s.ResellerGUID]
	if !ok {
		return usage.Service{}, usage.Errorf(usage.KindNotFound, "ResellerGuid", "reseller %s does not exist", s.ResellerGUID)
	}
	s.PartnerGUID = x.PartnerGUID
	if !s.CollectionGUID.IsZero() {
		c, ok := r.collections[s.CollectionGUID]
		if !ok || c.PartnerGUID != s.PartnerGUID {
			return usage.Service{}, usage.Errorf(usage.KindNotFound, "CollectionGuid", "collection %s does not exist", s.CollectionGUID)
		}
	}
	if _, ok := r.services[s.GUID]; ok {
		return usage.Service{}, usage.Errorf(usage.KindConflict, "ServiceGuid", "service %s already exists", s.GUID)
	}
	if err := r.cfg.Store.PutService(ctx, s); err != nil {
		return usage.Service{}, err
	}
	p := &s
	r.services[s.GUID] = p
	i, _ := slices.BinarySearchFunc(r.ordered, p, compareServices)
	r.ordered = slices.Insert(r.ordered, i, p)
	return s, nil
}

// SetServiceStatus changes a service's status.
func (r *Registry) SetServiceStatus(ctx context.Context, guid usage.GUID, status usage.ServiceStatus) (usage.Service, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	p, ok := r.services[guid]
	if !ok {
		return usage.Service{}, usage.ErrNotFound
	}
	s := *p
	s.Status = status
	if err := r.cfg.Store.PutService(ctx, s); err != nil {
		return usage.Service{}, err
	}
	*p = s
	return s, nil
}

// Service returns the service with guid.
func (r *Registry) Service(guid usage.GUID) (usage.Service, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.services[guid]
	if !ok {
		return usage.Service{}, false
	}
	return *p, true
}

// Services calls fn with every service in creation order (then GUID) until
// fn returns false. fn must not call back into the Registry.
func (r *Registry) Services(fn func(*usage.Service) bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, s := range r.ordered {
		if !fn(s) {
			return
		}
	}
}

// CreateAPIKey makes a key for scope, whose partner, reseller or service
// must exist. The key is returned only here.
func (r *Registry) CreateAPIKey(ctx context.Context, name string, scope usage.Scope) (usage.APIKey, string, error) {
	if err := usage.CheckName("name", name); err != nil {
		return usage.APIKey{}, "", err
	}
	var raw [32]byte
	rand.Read(raw[:])
	secret := KeyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	k := usage.APIKey{Digest: sha256.Sum256([]byte(secret)), Name: name, Scope: scope, Created: r.now()}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	var exists bool
	switch scope.Kind {
	case usage.ScopePartner:
		_, exists = r.partners[scope.GUID]
	case usage.ScopeReseller:
		_, exists = r.resellers[scope.GUID]
	case usage.ScopeService:
		_, exists = r.services[scope.GUID]
	default:
		return usage.APIKey{}, "", usage.Errorf(usage.KindInvalid, "scope", "scope must be partner, reseller or service")
	}
	if !exists {
		return usage.APIKey{}, "", usage.Errorf(usage.KindNotFound, "scope", "%s %s does not exist", scope.Kind, scope.GUID)
	}
	if err := r.cfg.Store.PutAPIKey(ctx, k); err != nil {
		return usage.APIKey{}, "", err
	}
	r.keys[k.Digest] = k
	return k, secret, nil
}

// Authenticate returns the key that secret is, if it is one. It hashes
// before it looks up, so its timing tells nothing about stored keys.
func (r *Registry) Authenticate(secret string) (usage.APIKey, bool) {
	if !strings.HasPrefix(secret, KeyPrefix) {
		return usage.APIKey{}, false
	}
	d := sha256.Sum256([]byte(secret))
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.keys[d]
	return k, ok
}

// APIKeys lists every key (digests only) by creation time.
func (r *Registry) APIKeys() []usage.APIKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]usage.APIKey, 0, len(r.keys))
	for _, k := range r.keys {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b usage.APIKey) int {
		return cmp.Or(a.Created.Compare(b.Created), slices.Compare(a.Digest[:], b.Digest[:]))
	})
	return out
}

// DeleteAPIKey revokes a key at once.
func (r *Registry) DeleteAPIKey(ctx context.Context, digest [32]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	if _, ok := r.keys[digest]; !ok {
		return usage.ErrNotFound
	}
	if err := r.cfg.Store.DeleteAPIKey(ctx, digest); err != nil {
		return err
	}
	delete(r.keys, digest)
	return nil
}

// MaxNameLen is the longest partner, reseller, collection, service or key
// name, in characters.
const MaxNameLen = usage.MaxNameLen
