package tenancy

import (
	"context"

	"github.com/usaged/usaged/usage"
)

// Caller is who asks the registry: the operator, or the holder of an API
// key scoped to a partner, a reseller or a service.
type Caller struct {
	Admin bool        // the operator, who may see and change everything
	Scope usage.Scope // the key's scope; unused for the operator
}

// ErrForbidden is what a caller is answered for an operation its key may
// never make, whatever it names: creating a partner with a partner's key,
// changing a service with a service's key.
var ErrForbidden = &usage.Error{Kind: usage.KindForbidden, Message: "this API key may not do that"}

// Covers reports whether the caller may see service s: the operator every
// service, a key those within its scope.
func (c Caller) Covers(s *usage.Service) bool { return c.Admin || c.Scope.Covers(s) }

// Scoped is the registry as one caller may see and change it. What lies
// outside the caller's scope is not found, with the answer a missing
// entity gets, so that keys cannot probe which GUIDs exist; what the
// caller's key may never do is ErrForbidden. Every face reads and changes
// the hierarchy on behalf of a caller through it.
//
// A face that checks its request in an order of its own may ask a May
// method, or read an entity, before it binds the rest of a request; the
// methods that change the registry check again.
type Scoped struct {
	r *Registry
	c Caller
}

// As returns the registry as caller c may see it.
func (r *Registry) As(c Caller) Scoped { return Scoped{r: r, c: c} }

// Caller returns the caller s is scoped to.
func (s Scoped) Caller() Caller { return s.c }

// serviceNotFound is the answer for a service that does not exist or that
// the caller may not see, which must not be told apart.
func serviceNotFound(g usage.GUID) error {
	return usage.Errorf(usage.KindNotFound, "ServiceGuid", "Service %s not found", g)
}

// Service returns the service with guid, if the caller may see it, and
// otherwise a usage.KindNotFound error naming ServiceGuid.
func (s Scoped) Service(guid usage.GUID) (usage.Service, error) {
	svc, ok := s.r.Service(guid)
	if !ok || !s.c.Covers(&svc) {
		return usage.Service{}, serviceNotFound(guid)
	}
	return svc, nil
}

// Services calls fn with every service the caller may see, in creation
// order (then GUID), until fn returns false. fn must not call back into the
// Registry.
func (s Scoped) Services(fn func(*usage.Service) bool) {
	s.r.Services(func(svc *usage.Service) bool { return !s.c.Covers(svc) || fn(svc) })
}

// MayChangeServices returns ErrForbidden for a service's key, which may
// read its service but neither create services nor change one.
func (s Scoped) MayChangeServices() error {
	if !s.c.Admin && s.c.Scope.Kind == usage.ScopeService {
		return ErrForbidden
	}
	return nil
}

// CreateService adds a service as Registry.CreateService does, if the
// caller may change services and see its reseller. A GUID that is taken by
// a service the caller may not see is not found, as a read of it would be:
// the one answer that neither creates a duplicate nor describes another
// partner's service.
func (s Scoped) CreateService(ctx context.Context, svc usage.Service) (usage.Service, error) {
	if err := s.MayChangeServices(); err != nil {
		return usage.Service{}, err
	}
	if !s.c.Admin {
		// The operator is answered by CreateService, which says whether
		// the reseller exists.
		if _, err := s.Reseller(svc.ResellerGUID); err != nil {
			return usage.Service{}, err
		}
	}
	created, err := s.r.CreateService(ctx, svc)
	if usage.KindOf(err) == usage.KindConflict {
		if other, ok := s.r.Service(svc.GUID); ok && !s.c.Covers(&other) {
			return usage.Service{}, serviceNotFound(svc.GUID)
		}
	}
	return created, err
}

// SetServiceStatus changes the status of a service the caller may see
// and change.
func (s Scoped) SetServiceStatus(ctx context.Context, guid usage.GUID, status usage.ServiceStatus) (usage.Service, error) {
	if _, err := s.Service(guid); err != nil {
		return usage.Service{}, err
	}
	if err := s.MayChangeServices(); err != nil {
		return usage.Service{}, err
	}
	return s.r.SetServiceStatus(ctx, guid, status)
}

// Reseller returns the reseller with guid if the caller may see it (the
// operator, its partner's key, its own key), and otherwise a
// usage.KindNotFound error naming ResellerGuid.
func (s Scoped) Reseller(guid usage.GUID) (usage.Reseller, error) {
	x, ok := s.r.Reseller(guid)
	if ok && !s.c.Admin {
		switch s.c.Scope.Kind {
		case usage.ScopePartner:
			ok = x.PartnerGUID == s.c.Scope.GUID
		case usage.ScopeReseller:
			ok = x.GUID == s.c.Scope.GUID
		default:
			ok = false
		}
	}
	if !ok {
		return usage.Reseller{}, usage.Errorf(usage.KindNotFound, "ResellerGuid", "Reseller %s not found", guid)
	}
	return x, nil
}

// collectionView is which collections a key sees: those of a partner, or
// only the collection of a service (possibly none).
type collectionView struct {
	partner, collection usage.GUID
	byCollection, none  bool
}

// collections returns which collections the caller sees: the operator all
// (nil); a partner's or reseller's key its partner's; a service's key only
// its service's. Resolved before the collections are read, so that no
// lookup runs under their lock.
func (s Scoped) collections() *collectionView {
	if s.c.Admin {
		return nil
	}
	switch s.c.Scope.Kind {
	case usage.ScopePartner:
		return &collectionView{partner: s.c.Scope.GUID}
	case usage.ScopeReseller:
		if x, ok := s.r.Reseller(s.c.Scope.GUID); ok {
			return &collectionView{partner: x.PartnerGUID}
		}
	case usage.ScopeService:
		if svc, ok := s.r.Service(s.c.Scope.GUID); ok {
			return &collectionView{collection: svc.CollectionGUID, byCollection: true}
		}
	}
	return &collectionView{none: true}
}

// sees reports whether collection col is in the view; nil sees all.
func (v *collectionView) sees(col *usage.Collection) bool {
	switch {
	case v == nil:
		return true
	case v.none:
		return false
	case v.byCollection:
		return col.GUID == v.collection
	}
	return col.PartnerGUID == v.partner
}

// Collections lists the collections the caller may see, by name.
func (s Scoped) Collections() []usage.Collection {
	v := s.collections()
	return s.r.Collections(v.sees)
}

// Collection returns the collection with guid if the caller may see it, and
// otherwise a usage.KindNotFound error naming CollectionGuid.
func (s Scoped) Collection(guid usage.GUID) (usage.Collection, error) {
	col, ok := s.r.Collection(guid)
	if !ok || !s.collections().sees(&col) {
		return usage.Collection{}, usage.Errorf(usage.KindNotFound, "CollectionGuid", "Collection %s not found", guid)
	}
	return col, nil
}

// MayCreateCollections returns ErrForbidden unless the caller is the
// operator or a partner's key.
func (s Scoped) MayCreateCollections() error {
	if !s.c.Admin && s.c.Scope.Kind != usage.ScopePartner {
		return ErrForbidden
	}
	return nil
}

// CollectionPartner returns the partner a collection the caller creates
// belongs to: for the operator the one named (zero when none is), for a
// partner's key its own, which it may name or leave zero; another is not
// found, as a usage.KindNotFound error naming PartnerGuid.
func (s Scoped) CollectionPartner(named usage.GUID) (usage.GUID, error) {
	if err := s.MayCreateCollections(); err != nil {
		return usage.GUID{}, err
	}
	if s.c.Admin {
		return named, nil
	}
	if !named.IsZero() && named != s.c.Scope.GUID {
		return usage.GUID{}, partnerNotFound(named)
	}
	return s.c.Scope.GUID, nil
}

// CreateCollection adds a collection as Registry.CreateCollection does, in
// the partner CollectionPartner allows.
func (s Scoped) CreateCollection(ctx context.Context, col usage.Collection) (usage.Collection, error) {
	var err error
	if col.PartnerGUID, err = s.CollectionPartner(col.PartnerGUID); err != nil {
		return usage.Collection{}, err
	}
	return s.r.CreateCollection(ctx, col)
}

func partnerNotFound(g usage.GUID) error {
	return usage.Errorf(usage.KindNotFound, "PartnerGuid", "Partner %s not found", g)
}

// Partner returns the partner with guid if the caller may manage it: the
// operator any, a partner's key its own. Other keys are ErrForbidden;
// another partner is a usage.KindNotFound error naming PartnerGuid.
func (s Scoped) Partner(guid usage.GUID) (usage.Partner, error) {
	if !s.c.Admin && s.c.Scope.Kind != usage.ScopePartner {
		return usage.Partner{}, ErrForbidden
	}
	p, ok := s.r.Partner(guid)
	if !ok || !s.c.Admin && s.c.Scope.GUID != guid {
		return usage.Partner{}, partnerNotFound(guid)
	}
	return p, nil
}

// Resellers lists the resellers of a partner the caller may manage, by
// name.
func (s Scoped) Resellers(partner usage.GUID) ([]usage.Reseller, error) {
	if _, err := s.Partner(partner); err != nil {
		return nil, err
	}
	return s.r.Resellers(partner), nil
}

// CreateReseller adds a reseller to a partner the caller may manage.
func (s Scoped) CreateReseller(ctx context.Context, partner usage.GUID, name string) (usage.Reseller, error) {
	if _, err := s.Partner(partner); err != nil {
		return usage.Reseller{}, err
	}
	return s.r.CreateReseller(ctx, partner, name)
}

// MayAdminister returns ErrForbidden unless the caller is the operator, who
// alone lists and creates partners and API keys.
func (s Scoped) MayAdminister() error {
	if !s.c.Admin {
		return ErrForbidden
	}
	return nil
}

// Partners lists every partner by name, for the operator.
func (s Scoped) Partners() ([]usage.Partner, error) {
	if err := s.MayAdminister(); err != nil {
		return nil, err
	}
	return s.r.Partners(), nil
}

// CreatePartner adds a partner, for the operator.
func (s Scoped) CreatePartner(ctx context.Context, name string) (usage.Partner, error) {
	if err := s.MayAdminister(); err != nil {
		return usage.Partner{}, err
	}
	return s.r.CreatePartner(ctx, name)
}

// APIKeys lists every key by creation time, for the operator.
func (s Scoped) APIKeys() ([]usage.APIKey, error) {
	if err := s.MayAdminister(); err != nil {
		return nil, err
	}
	return s.r.APIKeys(), nil
}

// CreateAPIKey makes a key, for the operator.
func (s Scoped) CreateAPIKey(ctx context.Context, name string, scope usage.Scope) (usage.APIKey, string, error) {
	if err := s.MayAdminister(); err != nil {
		return usage.APIKey{}, "", err
	}
	return s.r.CreateAPIKey(ctx, name, scope)
}

// DeleteAPIKey revokes a key, for the operator.
func (s Scoped) DeleteAPIKey(ctx context.Context, digest [32]byte) error {
	if err := s.MayAdminister(); err != nil {
		return err
	}
	return s.r.DeleteAPIKey(ctx, digest)
}
