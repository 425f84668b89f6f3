package usage

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// GUID identifies the partners, resellers, sites, collections, services and
// service users of the service-usage reports.
type GUID [16]byte

// NewGUID returns a random (version 4) GUID.
func NewGUID() GUID {
	var g GUID
	rand.Read(g[:])
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

// String returns the canonical form: 32 lowercase hex digits, no dashes.
func (g GUID) String() string { return hex.EncodeToString(g[:]) }

// MarshalText writes the canonical form, so that stored records stay legible.
func (g GUID) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

// UnmarshalText reads any form ParseGUID accepts.
func (g *GUID) UnmarshalText(b []byte) error {
	v, err := ParseGUID(string(b))
	*g = v
	return err
}

// IsZero reports whether g is the zero GUID, which stands for "none".
func (g GUID) IsZero() bool { return g == GUID{} }

// ParseGUID accepts a GUID in any of its usual forms, in either case: 32 hex
// digits, the dashed 8-4-4-4-12 form, and either wrapped in braces or
// parentheses.
func ParseGUID(s string) (GUID, error) {
	var g GUID
	t := s
	if len(t) >= 2 && (t[0] == '{' && t[len(t)-1] == '}' || t[0] == '(' && t[len(t)-1] == ')') {
		t = t[1 : len(t)-1]
	}
	if len(t) == 36 {
		if t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-' {
			return g, notGUID(s)
		}
		t = t[:8] + t[9:13] + t[14:18] + t[19:23] + t[24:]
	}
	if len(t) != 32 {
		return g, notGUID(s)
	}
	if _, err := hex.Decode(g[:], []byte(t)); err != nil {
		return GUID{}, notGUID(s)
	}
	return g, nil
}

func notGUID(s string) error {
	return Errorf(KindInvalid, "", "%q is not a GUID", s)
}

// ServiceStatus is the lifecycle state of a service.
type ServiceStatus int

// The service statuses, as the CCC API names them. The zero value is not a
// status, so that a missing one is detectable.
const (
	StatusBlocked ServiceStatus = iota + 1
	StatusAccountCancelled
	StatusAccountSuspended
	StatusProvisioning
	StatusTrialExpired
	StatusTrialActive
	StatusDemoAccount
	StatusCertifiedSecure
)

var serviceStatuses = enum[ServiceStatus]{what: "a service status", field: "status", first: StatusBlocked,
	names: []string{"Blocked", "AccountCancelled", "AccountSuspended", "Provisioning", "TrialExpired", "TrialActive", "DemoAccount", "CertifiedSecure"}}

// ServiceStatuses lists every status, in declaration order.
var ServiceStatuses = []ServiceStatus{StatusBlocked, StatusAccountCancelled, StatusAccountSuspended, StatusProvisioning, StatusTrialExpired, StatusTrialActive, StatusDemoAccount, StatusCertifiedSecure}

func (s ServiceStatus) String() string { return serviceStatuses.name(s) }

// ParseServiceStatus parses a status name, ignoring case.
func ParseServiceStatus(s string) (ServiceStatus, error) { return serviceStatuses.parse(s) }

// Reportable reports whether usage reports may be produced for a service in
// this status: Blocked and Provisioning services have none.
func (s ServiceStatus) Reportable() bool { return s != StatusBlocked && s != StatusProvisioning }

// Partner sells the platform through resellers.
type Partner struct {
	GUID    GUID
	Name    string
	Created time.Time
}

// Reseller sells services to customers on behalf of a partner.
type Reseller struct {
	GUID        GUID
	PartnerGUID GUID
	Name        string
	Created     time.Time
}

// Collection groups services within a site, for a partner.
type Collection struct {
	GUID        GUID
	Name        string
	SiteGUID    GUID
	SiteName    string
	PartnerGUID GUID
	Created     time.Time
}

// Contact is the person responsible for a service.
type Contact struct {
	Name, Email, PhoneNumber string
}

// Company is the customer a service belongs to.
type Company struct {
	Name, Address, City, StateProvince, PostalCode, Country, Website string
}

// MaxReferenceIDLen is the longest service reference id, in characters.
const MaxReferenceIDLen = 250

// Service is one customer's tenant on the secure-messaging platform: the unit
// whose usage is reported and billed. It belongs to a reseller (and through it
// to a partner) and to a collection.
type Service struct {
	GUID           GUID
	Name           string
	Status         ServiceStatus
	ServiceCode    string
	ReferenceID    string
	PrimaryDomain  string
	CreatedOn      time.Time
	TrialEndDate   time.Time // zero when none
	EffectiveDate  time.Time // zero when none
	InitialTerm    int       // months
	CollectionGUID GUID      // zero when in no collection
	ClientGUID     GUID      // the customer's own id, zero when none
	PartnerGUID    GUID
	ResellerGUID   GUID
	Contact        Contact
	Company        Company
}

// ScopeKind is what an API key is scoped to.
type ScopeKind int

const (
	ScopePartner  ScopeKind = iota + 1 // every service of the partner's resellers
	ScopeReseller                      // every service of the reseller
	ScopeService                       // one service
)

var scopeKinds = enum[ScopeKind]{what: "a scope", field: "scope", first: ScopePartner, names: []string{"partner", "reseller", "service"}}

func (k ScopeKind) String() string { return scopeKinds.name(k) }

// ParseScopeKind parses partner, reseller or service, ignoring case.
func ParseScopeKind(s string) (ScopeKind, error) { return scopeKinds.parse(s) }

// Scope is the part of the service hierarchy an API key may see.
type Scope struct {
	Kind ScopeKind
	GUID GUID // of the partner, reseller or service
}

// Covers reports whether service s is within the scope.
func (sc Scope) Covers(s *Service) bool {
	switch sc.Kind {
	case ScopePartner:
		return s.PartnerGUID == sc.GUID
	case ScopeReseller:
		return s.ResellerGUID == sc.GUID
	case ScopeService:
		return s.GUID == sc.GUID
	}
	return false
}

// APIKey is a bearer key for the service-usage API. The key itself is shown
// once at creation; only its SHA-256 digest is kept. Keys are long random
// strings, so a fast digest is as strong as a slow one and keeps every
// request's lookup cheap.
type APIKey struct {
	Digest  [32]byte
	Name    string
	Scope   Scope
	Created time.Time
}
