package ccc

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/usaged/usaged/ccc/dto"
	"github.com/usaged/usaged/servicestack"
	"github.com/usaged/usaged/tenancy"
	"github.com/usaged/usaged/usage"
)

// createServiceRequest is the body of POST /api/services.
type createServiceRequest = dto.CreateServiceRequest

// nameRule checks a required name, field in PascalCase, by usage.CheckName
// and words a failure as FluentValidation does: NotEmpty, MaximumLength, or
// Predicate for characters that are not printable text.
func nameRule(field, v string) (servicestack.FieldError, bool) {
	err := usage.CheckName(field, v)
	switch {
	case err == nil:
		return servicestack.FieldError{}, false
	case errors.Is(err, usage.ErrNameEmpty):
		return servicestack.NotEmpty(field), true
	case errors.Is(err, usage.ErrNameTooLong):
		return servicestack.MaxLength(field, v, usage.MaxNameLen)
	}
	return textRule(field, v, usage.MaxNameLen)
}

// textRule checks optional text of at most n characters by
// usage.CheckText: MaximumLength, or Predicate naming the character.
func textRule(field, v string, n int) (servicestack.FieldError, bool) {
	if e, bad := servicestack.MaxLength(field, v, n); bad {
		return e, true
	}
	// The domain's message starts with the name it is given: FluentValidation
	// starts with the quoted display name.
	if err := usage.CheckText("'"+servicestack.DisplayName(field)+"'", v); err != nil {
		var ue *usage.Error
		errors.As(err, &ue)
		return servicestack.FieldError{ErrorCode: "Predicate", FieldName: field, Message: ue.Message + "."}, true
	}
	return servicestack.FieldError{}, false
}

// toService binds and validates the request; every field problem is
// reported at once, as ServiceStack's validation feature does.
func toService(req *createServiceRequest, op string) (usage.Service, error) {
	var s usage.Service
	var err error
	guids := []struct {
		field string
		in    string
		out   *usage.GUID
	}{{"ServiceGuid", req.ServiceGuid, &s.GUID}, {"ResellerGuid", req.ResellerGuid, &s.ResellerGUID},
		{"CollectionGuid", req.CollectionGuid, &s.CollectionGUID}, {"ClientGuid", req.ClientGuid, &s.ClientGUID}}
	for _, g := range guids {
		if *g.out, err = servicestack.BindGUID(op, g.field, g.in); err != nil {
			return s, err
		}
	}
	s.Status = usage.StatusTrialActive
	if req.Status != "" {
		if s.Status, err = usage.ParseServiceStatus(req.Status); err != nil {
			return s, servicestack.BindError(op, "Status", req.Status)
		}
	}
	for _, d := range []struct {
		field, in string
		out       *servicestack.Time
	}{{"TrialEndDate", req.TrialEndDate, (*servicestack.Time)(&s.TrialEndDate)}, {"EffectiveDate", req.EffectiveDate, (*servicestack.Time)(&s.EffectiveDate)}} {
		if d.in == "" {
			continue
		}
		t, err := servicestack.ParseDate(d.in)
		if err != nil {
			return s, servicestack.BindError(op, d.field, d.in)
		}
		*d.out = servicestack.Time(t)
	}
	s.Name, s.ServiceCode, s.ReferenceID = strings.TrimSpace(req.Name), req.ServiceCode, req.ReferenceId
	s.PrimaryDomain = strings.ToLower(strings.TrimSpace(req.PrimaryDomain))
	s.InitialTerm = req.InitialTerm
	s.Contact, s.Company = usage.Contact(req.Contact), usage.Company(req.Company)

	var errs []servicestack.FieldError
	if e, bad := nameRule("Name", s.Name); bad {
		errs = append(errs, e)
	}
	if s.PrimaryDomain == "" {
		errs = append(errs, servicestack.NotEmpty("PrimaryDomain"))
	} else if !isDomain(s.PrimaryDomain) {
		errs = append(errs, servicestack.FieldError{ErrorCode: "Predicate", FieldName: "PrimaryDomain",
			Message: fmt.Sprintf("'Primary Domain' is not a domain name: %q.", servicestack.Truncate(s.PrimaryDomain, 64))})
	}
	if e, bad := textRule("ReferenceId", s.ReferenceID, usage.MaxReferenceIDLen); bad {
		errs = append(errs, e)
	}
	if e, bad := textRule("ServiceCode", s.ServiceCode, 64); bad {
		errs = append(errs, e)
	}
	if s.InitialTerm < 0 {
		errs = append(errs, servicestack.FieldError{ErrorCode: "GreaterThanOrEqual", FieldName: "InitialTerm",
			Message: fmt.Sprintf("'Initial Term' must be greater than or equal to '0'. You entered %d.", s.InitialTerm)})
	}
	for _, f := range []struct{ name, v string }{
		{"Contact.Name", s.Contact.Name}, {"Contact.Email", s.Contact.Email}, {"Contact.PhoneNumber", s.Contact.PhoneNumber},
		{"Company.Name", s.Company.Name}, {"Company.Address", s.Company.Address}, {"Company.City", s.Company.City},
		{"Company.StateProvince", s.Company.StateProvince}, {"Company.PostalCode", s.Company.PostalCode},
		{"Company.Country", s.Company.Country}, {"Company.Website", s.Company.Website},
	} {
		if e, bad := textRule(f.name, f.v, usage.MaxNameLen); bad {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return s, servicestack.ValidationError(errs...)
	}
	return s, nil
}

// isDomain accepts a DNS name: dot-separated labels of letters, digits and
// inner hyphens, at most 253 bytes.
func isDomain(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// as returns the registry as the caller may see and change it.
func (s *Server) as(c *caller) tenancy.Scoped {
	return s.reg.As(tenancy.Caller{Admin: c.admin, Scope: c.scope})
}

// createService answers POST /api/services.
func (s *Server) createService(r *http.Request, c *caller) (int, any, error) {
	const op = "CreateService"
	reg := s.as(c)
	if err := reg.MayChangeServices(); err != nil {
		return 0, nil, err
	}
	var req createServiceRequest
	if err := servicestack.DecodeJSON(r, op, &req); err != nil {
		return 0, nil, err
	}
	if c.scope.Kind == usage.ScopeReseller && req.ResellerGuid == "" {
		req.ResellerGuid = c.scope.GUID.String()
	}
	svc, err := toService(&req, op)
	if err != nil {
		return 0, nil, err
	}
	if svc.ResellerGUID.IsZero() {
		return 0, nil, servicestack.ValidationError(servicestack.NotEmpty("ResellerGuid"))
	}
	created, err := reg.CreateService(r.Context(), svc)
	if err != nil {
		return 0, nil, err
	}
	return 0, s.serviceDTO(&created), nil
}

func (s *Server) serviceDTO(svc *usage.Service) Service {
	return Service{ServiceHeader: header(svc, s.collectionName(svc.CollectionGUID)),
		PartnerGuid: servicestack.Guid(svc.PartnerGUID), ResellerGuid: servicestack.Guid(svc.ResellerGUID)}
}

// getService answers GET /api/services/{ServiceGuid}.
func (s *Server) getService(r *http.Request, c *caller) (int, any, error) {
	svc, err := s.service(servicestack.Bind(r, "GetService"), c)
	if err != nil {
		return 0, nil, err
	}
	return 0, s.serviceDTO(&svc), nil
}

// searchServices answers GET /api/services: the services the caller sees
// whose primary domain, name or code contains any of the given terms
// (ignoring case), or all of them without terms, in creation order.
func (s *Server) searchServices(r *http.Request, c *caller) (int, any, error) {
	p := servicestack.Bind(r, "SearchServices")
	domain, name, code := strings.ToLower(p.Value("Domain")), strings.ToLower(p.Value("Name")), strings.ToLower(p.Value("Code"))
	pg, size := page(p)
	if err := p.Err(); err != nil {
		return 0, nil, err
	}
	any := domain != "" || name != "" || code != ""
	match := func(v, term string) bool { return term != "" && strings.Contains(strings.ToLower(v), term) }
	var found []Service
	s.as(c).Services(func(svc *usage.Service) bool {
		if !any || match(svc.PrimaryDomain, domain) || match(svc.Name, name) || match(svc.ServiceCode, code) {
			found = append(found, Service{ServiceHeader: header(svc, ""), PartnerGuid: servicestack.Guid(svc.PartnerGUID), ResellerGuid: servicestack.Guid(svc.ResellerGUID)})
		}
		return true
	})
	out := paged(found, pg, size)
	for i := range out.Results {
		out.Results[i].CollectionName = s.collectionName(usage.GUID(out.Results[i].CollectionGuid))
	}
	return 0, out, nil
}

// updateServiceStatus answers PUT /api/services/{ServiceGuid}/status; the
// status comes from the body ({"status":"Blocked"}) or the query string.
func (s *Server) updateServiceStatus(r *http.Request, c *caller) (int, any, error) {
	const op = "UpdateServiceStatus"
	p := servicestack.Bind(r, op)
	svc, err := s.service(p, c)
	if err != nil {
		return 0, nil, err
	}
	reg := s.as(c)
	if err := reg.MayChangeServices(); err != nil {
		return 0, nil, err
	}
	var req dto.UpdateServiceStatusRequest
	if err := servicestack.DecodeJSON(r, op, &req); err != nil {
		return 0, nil, err
	}
	if req.Status == "" {
		req.Status = p.Value("Status")
	}
	if req.Status == "" {
		return 0, nil, servicestack.ValidationError(servicestack.NotEmpty("Status"))
	}
	st, err := usage.ParseServiceStatus(req.Status)
	if err != nil {
		return 0, nil, servicestack.BindError(op, "Status", req.Status)
	}
	svc, err = reg.SetServiceStatus(r.Context(), svc.GUID, st)
	if err != nil {
		return 0, nil, err
	}
	return 0, s.serviceDTO(&svc), nil
}

func collectionDTO(c *usage.Collection) Collection {
	return Collection{CollectionGuid: servicestack.Guid(c.GUID), Name: c.Name, SiteGuid: servicestack.Guid(c.SiteGUID), SiteName: c.SiteName,
		PartnerGuid: servicestack.Guid(c.PartnerGUID), CreatedOn: servicestack.Time(c.Created)}
}

// getCollections answers GET /api/collections with a bare array.
func (s *Server) getCollections(r *http.Request, c *caller) (int, any, error) {
	out := []Collection{}
	for _, col := range s.as(c).Collections() {
		out = append(out, collectionDTO(&col))
	}
	return 0, out, nil
}

// getCollection answers GET /api/collections/{CollectionGuid}.
func (s *Server) getCollection(r *http.Request, c *caller) (int, any, error) {
	p := servicestack.Bind(r, "GetCollection")
	g := p.GUID("CollectionGuid")
	if err := p.Err(); err != nil {
		return 0, nil, err
	}
	col, err := s.as(c).Collection(g)
	if err != nil {
		return 0, nil, err
	}
	return 0, collectionDTO(&col), nil
}

// createCollection answers POST /api/collections (usaged's extension): the
// operator names the partner, a partner's key creates in its own.
func (s *Server) createCollection(r *http.Request, c *caller) (int, any, error) {
	const op = "CreateCollection"
	var req dto.CreateCollectionRequest
	if err := servicestack.DecodeJSON(r, op, &req); err != nil {
		return 0, nil, err
	}
	reg := s.as(c)
	if err := reg.MayCreateCollections(); err != nil {
		return 0, nil, err
	}
	col := usage.Collection{Name: strings.TrimSpace(req.Name), SiteName: req.SiteName}
	var err error
	if col.SiteGUID, err = servicestack.BindGUID(op, "SiteGuid", req.SiteGuid); err != nil {
		return 0, nil, err
	}
	if col.PartnerGUID, err = servicestack.BindGUID(op, "PartnerGuid", req.PartnerGuid); err != nil {
		return 0, nil, err
	}
	if col.PartnerGUID, err = reg.CollectionPartner(col.PartnerGUID); err != nil {
		return 0, nil, err
	}
	var errs []servicestack.FieldError
	if e, bad := nameRule("Name", col.Name); bad {
		errs = append(errs, e)
	}
	if e, bad := textRule("SiteName", col.SiteName, usage.MaxNameLen); bad {
		errs = append(errs, e)
	}
	if col.PartnerGUID.IsZero() {
		errs = append(errs, servicestack.NotEmpty("PartnerGuid"))
	}
	if len(errs) > 0 {
		return 0, nil, servicestack.ValidationError(errs...)
	}
	col, err = reg.CreateCollection(r.Context(), col)
	if err != nil {
		return 0, nil, err
	}
	return 0, collectionDTO(&col), nil
}

// partnerParam binds PartnerGuid and checks the caller may manage that
// partner: the operator, or the partner's own key.
func (s *Server) partnerParam(p *servicestack.Params, c *caller) (usage.GUID, error) {
	g := p.GUID("PartnerGuid")
	if err := p.Err(); err != nil {
		return g, err
	}
	_, err := s.as(c).Partner(g)
	return g, err
}

func resellerDTO(x *usage.Reseller) Reseller {
	return Reseller{ResellerGuid: servicestack.Guid(x.GUID), PartnerGuid: servicestack.Guid(x.PartnerGUID), Name: x.Name, CreatedOn: servicestack.Time(x.Created)}
}

// getResellers answers GET /api/partners/{PartnerGuid}/resellers with a bare array.
func (s *Server) getResellers(r *http.Request, c *caller) (int, any, error) {
	g, err := s.partnerParam(servicestack.Bind(r, "GetResellers"), c)
	if err != nil {
		return 0, nil, err
	}
	resellers, err := s.as(c).Resellers(g)
	if err != nil {
		return 0, nil, err
	}
	out := []Reseller{}
	for _, x := range resellers {
		out = append(out, resellerDTO(&x))
	}
	return 0, out, nil
}

// createReseller answers POST /api/partners/{PartnerGuid}/resellers.
func (s *Server) createReseller(r *http.Request, c *caller) (int, any, error) {
	const op = "CreateReseller"
	g, err := s.partnerParam(servicestack.Bind(r, op), c)
	if err != nil {
		return 0, nil, err
	}
	var req dto.NameRequest
	if err := servicestack.DecodeJSON(r, op, &req); err != nil {
		return 0, nil, err
	}
	if err := checkName(req.Name); err != nil {
		return 0, nil, err
	}
	x, err := s.as(c).CreateReseller(r.Context(), g, strings.TrimSpace(req.Name))
	if err != nil {
		return 0, nil, err
	}
	return 0, resellerDTO(&x), nil
}

// checkName validates the Name of a partner, a reseller or an API key.
func checkName(name string) error {
	if e, bad := nameRule("Name", strings.TrimSpace(name)); bad {
		return servicestack.ValidationError(e)
	}
	return nil
}

// getPartners answers GET /api/partners (operator only) with a bare array.
func (s *Server) getPartners(r *http.Request, c *caller) (int, any, error) {
	if err := s.as(c).MayAdminister(); err != nil {
		return 0, nil, err
	}
	partners, err := s.as(c).Partners()
	if err != nil {
		return 0, nil, err
	}
	out := []Partner{}
	for _, p := range partners {
		out = append(out, Partner{PartnerGuid: servicestack.Guid(p.GUID), Name: p.Name, CreatedOn: servicestack.Time(p.Created)})
	}
	return 0, out, nil
}

// createPartner answers POST /api/partners (operator only).
func (s *Server) createPartner(r *http.Request, c *caller) (int, any, error) {
	if err := s.as(c).MayAdminister(); err != nil {
		return 0, nil, err
	}
	var req dto.NameRequest
	if err := servicestack.DecodeJSON(r, "CreatePartner", &req); err != nil {
		return 0, nil, err
	}
	if err := checkName(req.Name); err != nil {
		return 0, nil, err
	}
	p, err := s.as(c).CreatePartner(r.Context(), strings.TrimSpace(req.Name))
	if err != nil {
		return 0, nil, err
	}
	return 0, Partner{PartnerGuid: servicestack.Guid(p.GUID), Name: p.Name, CreatedOn: servicestack.Time(p.Created)}, nil
}

func keyDTO(k *usage.APIKey, secret string) APIKey {
	return APIKey{Id: hex.EncodeToString(k.Digest[:]), Key: secret, Name: k.Name, Scope: k.Scope.Kind.String(),
		ScopeGuid: servicestack.Guid(k.Scope.GUID), CreatedOn: servicestack.Time(k.Created)}
}

// getAPIKeys answers GET /api/apikeys (operator only).
func (s *Server) getAPIKeys(r *http.Request, c *caller) (int, any, error) {
	if err := s.as(c).MayAdminister(); err != nil {
		return 0, nil, err
	}
	keys, err := s.as(c).APIKeys()
	if err != nil {
		return 0, nil, err
	}
	out := []APIKey{}
	for _, k := range keys {
		out = append(out, keyDTO(&k, ""))
	}
	return 0, out, nil
}

// createAPIKey answers POST /api/apikeys (operator only):
// {"name","scope":"partner|reseller|service","scopeGuid"} → the key, shown
// only in this answer.
func (s *Server) createAPIKey(r *http.Request, c *caller) (int, any, error) {
	const op = "CreateApiKey"
	if err := s.as(c).MayAdminister(); err != nil {
		return 0, nil, err
	}
	var req dto.CreateAPIKeyRequest
	if err := servicestack.DecodeJSON(r, op, &req); err != nil {
		return 0, nil, err
	}
	if err := checkName(req.Name); err != nil {
		return 0, nil, err
	}
	var errs []servicestack.FieldError
	if req.Scope == "" {
		errs = append(errs, servicestack.NotEmpty("Scope"))
	}
	if req.ScopeGuid == "" {
		errs = append(errs, servicestack.NotEmpty("ScopeGuid"))
	}
	if len(errs) > 0 {
		return 0, nil, servicestack.ValidationError(errs...)
	}
	kind, err := usage.ParseScopeKind(req.Scope)
	if err != nil {
		return 0, nil, servicestack.BindError(op, "Scope", req.Scope)
	}
	g, err := servicestack.BindGUID(op, "ScopeGuid", req.ScopeGuid)
	if err != nil {
		return 0, nil, err
	}
	k, secret, err := s.as(c).CreateAPIKey(r.Context(), strings.TrimSpace(req.Name), usage.Scope{Kind: kind, GUID: g})
	if err != nil {
		return 0, nil, err
	}
	return 0, keyDTO(&k, secret), nil
}

// deleteAPIKey answers DELETE /api/apikeys/{Id} (operator only) with 204.
func (s *Server) deleteAPIKey(r *http.Request, c *caller) (int, any, error) {
	const op = "DeleteApiKey"
	if err := s.as(c).MayAdminister(); err != nil {
		return 0, nil, err
	}
	id := r.PathValue("Id")
	var digest [32]byte
	if b, err := hex.DecodeString(id); err != nil || len(b) != len(digest) {
		return 0, nil, servicestack.BindError(op, "Id", id)
	} else {
		copy(digest[:], b)
	}
	if err := s.as(c).DeleteAPIKey(r.Context(), digest); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
