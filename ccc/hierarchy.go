package ccc

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/usaged/usaged/ccc/dto"
	"github.com/usaged/usaged/usage"
)

// maxJSONBody bounds the small JSON bodies of the registry operations.
const maxJSONBody = 1 << 20

// decodeBody decodes a JSON request body into v. Unknown properties are
// ignored and names match case-insensitively, as ServiceStack binds them; a
// body that is not JSON, or a value of the wrong type, cannot be bound.
func decodeBody(r *http.Request, op string, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" && mt != "text/json" {
			return usage.Errorf(usage.KindUnsupported, "Content-Type", "Content-Type %q is not supported: send application/json", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxJSONBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return usage.Errorf(usage.KindTooLarge, "", "request body is larger than %d bytes", maxJSONBody)
		}
		return usage.Errorf(usage.KindInvalid, "", "request body could not be read: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return bindError(op, pascal(te.Field), rawValue(body, te.Field, te.Value))
		}
		return bindError(op, "", truncate(string(body), 64))
	}
	return nil
}

// rawValue returns the value the client sent at a dotted JSON path, as
// ServiceStack quotes it in binding errors ('twelve', not 'string'); def
// when it cannot be found. Keys match ignoring case, as decoding does.
func rawValue(body []byte, path, def string) string {
	raw := json.RawMessage(body)
	for _, key := range strings.Split(path, ".") {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return def
		}
		found := false
		for k, v := range obj {
			if strings.EqualFold(k, key) {
				raw, found = v, true
				break
			}
		}
		if !found {
			return def
		}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return truncate(s, 64)
	}
	return truncate(string(raw), 64)
}

// pascal turns a camelCase JSON path (contact.phoneNumber) into ServiceStack's
// PascalCase field name (Contact.PhoneNumber).
func pascal(field string) string {
	parts := strings.Split(field, ".")
	for i, p := range parts {
		parts[i] = upperFirst(p)
	}
	return strings.Join(parts, ".")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// bodyGUID binds a GUID sent in a body field; empty is zero.
func bodyGUID(op, field, s string) (usage.GUID, error) {
	if s == "" {
		return usage.GUID{}, nil
	}
	g, err := usage.ParseGUID(s)
	if err != nil {
		return usage.GUID{}, bindError(op, field, s)
	}
	return g, nil
}

// createServiceRequest is the body of POST /api/services.
type createServiceRequest = dto.CreateServiceRequest

// nameRule checks a required name, field in PascalCase, by usage.CheckName
// and words a failure as FluentValidation does: NotEmpty, MaximumLength, or
// Predicate for characters that are not printable text.
func nameRule(field, v string) (FieldError, bool) {
	err := usage.CheckName(field, v)
	switch {
	case err == nil:
		return FieldError{}, false
	case errors.Is(err, usage.ErrNameEmpty):
		return notEmpty(field), true
	case errors.Is(err, usage.ErrNameTooLong):
		return maxLength(field, v, usage.MaxNameLen)
	}
	return textRule(field, v, usage.MaxNameLen)
}

// textRule checks optional text of at most n characters by
// usage.CheckText: MaximumLength, or Predicate naming the character.
func textRule(field, v string, n int) (FieldError, bool) {
	if e, bad := maxLength(field, v, n); bad {
		return e, true
	}
	// The domain's message starts with the name it is given: FluentValidation
	// starts with the quoted display name.
	if err := usage.CheckText("'"+displayName(field)+"'", v); err != nil {
		var ue *usage.Error
		errors.As(err, &ue)
		return FieldError{ErrorCode: "Predicate", FieldName: field, Message: ue.Message + "."}, true
	}
	return FieldError{}, false
}

// maxLength is FluentValidation's MaximumLength rule.
func maxLength(field, v string, n int) (FieldError, bool) {
	if l := utf8.RuneCountInString(v); l > n {
		return FieldError{ErrorCode: "MaximumLength", FieldName: field,
			Message: fmt.Sprintf("'%s' must be %d characters or fewer. You entered %d characters.", displayName(field), n, l)}, true
	}
	return FieldError{}, false
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
		if *g.out, err = bodyGUID(op, g.field, g.in); err != nil {
			return s, err
		}
	}
	s.Status = usage.StatusTrialActive
	if req.Status != "" {
		if s.Status, err = usage.ParseServiceStatus(req.Status); err != nil {
			return s, bindError(op, "Status", req.Status)
		}
	}
	for _, d := range []struct {
		field, in string
		out       *Time
	}{{"TrialEndDate", req.TrialEndDate, (*Time)(&s.TrialEndDate)}, {"EffectiveDate", req.EffectiveDate, (*Time)(&s.EffectiveDate)}} {
		if d.in == "" {
			continue
		}
		t, err := parseDate(d.in)
		if err != nil {
			return s, bindError(op, d.field, d.in)
		}
		*d.out = Time(t)
	}
	s.Name, s.ServiceCode, s.ReferenceID = strings.TrimSpace(req.Name), req.ServiceCode, req.ReferenceId
	s.PrimaryDomain = strings.ToLower(strings.TrimSpace(req.PrimaryDomain))
	s.InitialTerm = req.InitialTerm
	s.Contact, s.Company = usage.Contact(req.Contact), usage.Company(req.Company)

	var errs []FieldError
	if e, bad := nameRule("Name", s.Name); bad {
		errs = append(errs, e)
	}
	if s.PrimaryDomain == "" {
		errs = append(errs, notEmpty("PrimaryDomain"))
	} else if !isDomain(s.PrimaryDomain) {
		errs = append(errs, FieldError{ErrorCode: "Predicate", FieldName: "PrimaryDomain",
			Message: fmt.Sprintf("'Primary Domain' is not a domain name: %q.", truncate(s.PrimaryDomain, 64))})
	}
	if e, bad := textRule("ReferenceId", s.ReferenceID, usage.MaxReferenceIDLen); bad {
		errs = append(errs, e)
	}
	if e, bad := textRule("ServiceCode", s.ServiceCode, 64); bad {
		errs = append(errs, e)
	}
	if s.InitialTerm < 0 {
		errs = append(errs, FieldError{ErrorCode: "GreaterThanOrEqual", FieldName: "InitialTerm",
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
		return s, validationError(errs...)
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

var errForbidden = &usage.Error{Kind: usage.KindForbidden, Message: "this API key may not do that"}

// createService answers POST /api/services.
func (s *Server) createService(r *http.Request, c *caller) (int, any, error) {
	const op = "CreateService"
	if !c.admin && c.scope.Kind == usage.ScopeService {
		return 0, nil, errForbidden
	}
	var req createServiceRequest
	if err := decodeBody(r, op, &req); err != nil {
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
		return 0, nil, validationError(notEmpty("ResellerGuid"))
	}
	if !c.admin {
		x, ok := s.reg.Reseller(svc.ResellerGUID)
		if !ok || !s.seesReseller(c, &x) {
			return 0, nil, usage.Errorf(usage.KindNotFound, "ResellerGuid", "Reseller %s not found", svc.ResellerGUID)
		}
	}
	created, err := s.reg.CreateService(r.Context(), svc)
	if usage.KindOf(err) == usage.KindConflict {
		// The Guid is taken. A caller who may see that service learns it
		// exists (409); any other gets what a read of it answers, 404, and
		// nothing of it. Guids are global, so the 404 still tells a caller
		// who already knows this Guid that it cannot have it, but not whose
		// it is: the one answer that neither creates a duplicate nor
		// describes another partner's service.
		if other, ok := s.reg.Service(svc.GUID); ok && !c.covers(&other) {
			return 0, nil, serviceNotFound(svc.GUID)
		}
	}
	if err != nil {
		return 0, nil, err
	}
	return 0, s.serviceDTO(&created), nil
}

func (s *Server) serviceDTO(svc *usage.Service) Service {
	return Service{ServiceHeader: header(svc, s.collectionName(svc.CollectionGUID)),
		PartnerGuid: Guid(svc.PartnerGUID), ResellerGuid: Guid(svc.ResellerGUID)}
}

// getService answers GET /api/services/{ServiceGuid}.
func (s *Server) getService(r *http.Request, c *caller) (int, any, error) {
	svc, err := s.service(bindParams(r, "GetService"), c)
	if err != nil {
		return 0, nil, err
	}
	return 0, s.serviceDTO(&svc), nil
}

// searchServices answers GET /api/services: the services the caller sees
// whose primary domain, name or code contains any of the given terms
// (ignoring case), or all of them without terms, in creation order.
func (s *Server) searchServices(r *http.Request, c *caller) (int, any, error) {
	p := bindParams(r, "SearchServices")
	domain, name, code := strings.ToLower(p.str("Domain")), strings.ToLower(p.str("Name")), strings.ToLower(p.str("Code"))
	pg, size := page(p)
	if err := p.err(); err != nil {
		return 0, nil, err
	}
	any := domain != "" || name != "" || code != ""
	match := func(v, term string) bool { return term != "" && strings.Contains(strings.ToLower(v), term) }
	var found []Service
	s.reg.Services(func(svc *usage.Service) bool {
		if c.covers(svc) && (!any || match(svc.PrimaryDomain, domain) || match(svc.Name, name) || match(svc.ServiceCode, code)) {
			found = append(found, Service{ServiceHeader: header(svc, ""), PartnerGuid: Guid(svc.PartnerGUID), ResellerGuid: Guid(svc.ResellerGUID)})
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
	p := bindParams(r, op)
	svc, err := s.service(p, c)
	if err != nil {
		return 0, nil, err
	}
	if !c.admin && c.scope.Kind == usage.ScopeService {
		return 0, nil, errForbidden
	}
	var req dto.UpdateServiceStatusRequest
	if err := decodeBody(r, op, &req); err != nil {
		return 0, nil, err
	}
	if req.Status == "" {
		req.Status = p.str("Status")
	}
	if req.Status == "" {
		return 0, nil, validationError(notEmpty("Status"))
	}
	st, err := usage.ParseServiceStatus(req.Status)
	if err != nil {
		return 0, nil, bindError(op, "Status", req.Status)
	}
	svc, err = s.reg.SetServiceStatus(r.Context(), svc.GUID, st)
	if err != nil {
		return 0, nil, err
	}
	return 0, s.serviceDTO(&svc), nil
}

func collectionDTO(c *usage.Collection) Collection {
	return Collection{CollectionGuid: Guid(c.GUID), Name: c.Name, SiteGuid: Guid(c.SiteGUID), SiteName: c.SiteName,
		PartnerGuid: Guid(c.PartnerGUID), CreatedOn: Time(c.Created)}
}

// seesCollection: the operator sees all; a partner's or reseller's key its
// partner's collections; a service key only its service's collection.
func (s *Server) seesCollection(c *caller, col *usage.Collection) bool {
	if c.admin {
		return true
	}
	if c.scope.Kind == usage.ScopeService {
		svc, ok := s.reg.Service(c.scope.GUID)
		return ok && svc.CollectionGUID == col.GUID
	}
	partner, ok := s.partnerOf(c)
	return ok && col.PartnerGUID == partner
}

// getCollections answers GET /api/collections with a bare array.
func (s *Server) getCollections(r *http.Request, c *caller) (int, any, error) {
	out := []Collection{}
	for _, col := range s.reg.Collections(func(col *usage.Collection) bool { return s.seesCollection(c, col) }) {
		out = append(out, collectionDTO(&col))
	}
	return 0, out, nil
}

// getCollection answers GET /api/collections/{CollectionGuid}.
func (s *Server) getCollection(r *http.Request, c *caller) (int, any, error) {
	p := bindParams(r, "GetCollection")
	g := p.guid("CollectionGuid")
	if err := p.err(); err != nil {
		return 0, nil, err
	}
	col, ok := s.reg.Collection(g)
	if !ok || !s.seesCollection(c, &col) {
		return 0, nil, usage.Errorf(usage.KindNotFound, "CollectionGuid", "Collection %s not found", g)
	}
	return 0, collectionDTO(&col), nil
}

// createCollection answers POST /api/collections (usaged's extension): the
// operator names the partner, a partner's key creates in its own.
func (s *Server) createCollection(r *http.Request, c *caller) (int, any, error) {
	const op = "CreateCollection"
	var req dto.CreateCollectionRequest
	if err := decodeBody(r, op, &req); err != nil {
		return 0, nil, err
	}
	if !c.admin && c.scope.Kind != usage.ScopePartner {
		return 0, nil, errForbidden
	}
	col := usage.Collection{Name: strings.TrimSpace(req.Name), SiteName: req.SiteName}
	var err error
	if col.SiteGUID, err = bodyGUID(op, "SiteGuid", req.SiteGuid); err != nil {
		return 0, nil, err
	}
	if col.PartnerGUID, err = bodyGUID(op, "PartnerGuid", req.PartnerGuid); err != nil {
		return 0, nil, err
	}
	if !c.admin {
		if !col.PartnerGUID.IsZero() && col.PartnerGUID != c.scope.GUID {
			return 0, nil, usage.Errorf(usage.KindNotFound, "PartnerGuid", "Partner %s not found", col.PartnerGUID)
		}
		col.PartnerGUID = c.scope.GUID
	}
	var errs []FieldError
	if e, bad := nameRule("Name", col.Name); bad {
		errs = append(errs, e)
	}
	if e, bad := textRule("SiteName", col.SiteName, usage.MaxNameLen); bad {
		errs = append(errs, e)
	}
	if col.PartnerGUID.IsZero() {
		errs = append(errs, notEmpty("PartnerGuid"))
	}
	if len(errs) > 0 {
		return 0, nil, validationError(errs...)
	}
	col, err = s.reg.CreateCollection(r.Context(), col)
	if err != nil {
		return 0, nil, err
	}
	return 0, collectionDTO(&col), nil
}

// partnerParam binds PartnerGuid and checks the caller may manage that
// partner: the operator, or the partner's own key.
func (s *Server) partnerParam(p *params, c *caller) (usage.GUID, error) {
	g := p.guid("PartnerGuid")
	if err := p.err(); err != nil {
		return g, err
	}
	if !c.admin && c.scope.Kind != usage.ScopePartner {
		return g, errForbidden
	}
	if _, ok := s.reg.Partner(g); !ok || !c.admin && c.scope.GUID != g {
		return g, usage.Errorf(usage.KindNotFound, "PartnerGuid", "Partner %s not found", g)
	}
	return g, nil
}

func resellerDTO(x *usage.Reseller) Reseller {
	return Reseller{ResellerGuid: Guid(x.GUID), PartnerGuid: Guid(x.PartnerGUID), Name: x.Name, CreatedOn: Time(x.Created)}
}

// getResellers answers GET /api/partners/{PartnerGuid}/resellers with a bare array.
func (s *Server) getResellers(r *http.Request, c *caller) (int, any, error) {
	g, err := s.partnerParam(bindParams(r, "GetResellers"), c)
	if err != nil {
		return 0, nil, err
	}
	out := []Reseller{}
	for _, x := range s.reg.Resellers(g) {
		out = append(out, resellerDTO(&x))
	}
	return 0, out, nil
}

// createReseller answers POST /api/partners/{PartnerGuid}/resellers.
func (s *Server) createReseller(r *http.Request, c *caller) (int, any, error) {
	const op = "CreateReseller"
	g, err := s.partnerParam(bindParams(r, op), c)
	if err != nil {
		return 0, nil, err
	}
	var req dto.NameRequest
	if err := decodeBody(r, op, &req); err != nil {
		return 0, nil, err
	}
	if err := checkName(req.Name); err != nil {
		return 0, nil, err
	}
	x, err := s.reg.CreateReseller(r.Context(), g, strings.TrimSpace(req.Name))
	if err != nil {
		return 0, nil, err
	}
	return 0, resellerDTO(&x), nil
}

// checkName validates the Name of a partner, a reseller or an API key.
func checkName(name string) error {
	if e, bad := nameRule("Name", strings.TrimSpace(name)); bad {
		return validationError(e)
	}
	return nil
}

func adminOnly(c *caller) error {
	if !c.admin {
		return errForbidden
	}
	return nil
}

// getPartners answers GET /api/partners (operator only) with a bare array.
func (s *Server) getPartners(r *http.Request, c *caller) (int, any, error) {
	if err := adminOnly(c); err != nil {
		return 0, nil, err
	}
	out := []Partner{}
	for _, p := range s.reg.Partners() {
		out = append(out, Partner{PartnerGuid: Guid(p.GUID), Name: p.Name, CreatedOn: Time(p.Created)})
	}
	return 0, out, nil
}

// createPartner answers POST /api/partners (operator only).
func (s *Server) createPartner(r *http.Request, c *caller) (int, any, error) {
	if err := adminOnly(c); err != nil {
		return 0, nil, err
	}
	var req dto.NameRequest
	if err := decodeBody(r, "CreatePartner", &req); err != nil {
		return 0, nil, err
	}
	if err := checkName(req.Name); err != nil {
		return 0, nil, err
	}
	p, err := s.reg.CreatePartner(r.Context(), strings.TrimSpace(req.Name))
	if err != nil {
		return 0, nil, err
	}
	return 0, Partner{PartnerGuid: Guid(p.GUID), Name: p.Name, CreatedOn: Time(p.Created)}, nil
}

func keyDTO(k *usage.APIKey, secret string) APIKey {
	return APIKey{Id: hex.EncodeToString(k.Digest[:]), Key: secret, Name: k.Name, Scope: k.Scope.Kind.String(),
		ScopeGuid: Guid(k.Scope.GUID), CreatedOn: Time(k.Created)}
}

// getAPIKeys answers GET /api/apikeys (operator only).
func (s *Server) getAPIKeys(r *http.Request, c *caller) (int, any, error) {
	if err := adminOnly(c); err != nil {
		return 0, nil, err
	}
	out := []APIKey{}
	for _, k := range s.reg.APIKeys() {
		out = append(out, keyDTO(&k, ""))
	}
	return 0, out, nil
}

// createAPIKey answers POST /api/apikeys (operator only):
// {"name","scope":"partner|reseller|service","scopeGuid"} → the key, shown
// only in this answer.
func (s *Server) createAPIKey(r *http.Request, c *caller) (int, any, error) {
	const op = "CreateApiKey"
	if err := adminOnly(c); err != nil {
		return 0, nil, err
	}
	var req dto.CreateAPIKeyRequest
	if err := decodeBody(r, op, &req); err != nil {
		return 0, nil, err
	}
	if err := checkName(req.Name); err != nil {
		return 0, nil, err
	}
	var errs []FieldError
	if req.Scope == "" {
		errs = append(errs, notEmpty("Scope"))
	}
	if req.ScopeGuid == "" {
		errs = append(errs, notEmpty("ScopeGuid"))
	}
	if len(errs) > 0 {
		return 0, nil, validationError(errs...)
	}
	kind, err := usage.ParseScopeKind(req.Scope)
	if err != nil {
		return 0, nil, bindError(op, "Scope", req.Scope)
	}
	g, err := bodyGUID(op, "ScopeGuid", req.ScopeGuid)
	if err != nil {
		return 0, nil, err
	}
	k, secret, err := s.reg.CreateAPIKey(r.Context(), strings.TrimSpace(req.Name), usage.Scope{Kind: kind, GUID: g})
	if err != nil {
		return 0, nil, err
	}
	return 0, keyDTO(&k, secret), nil
}

// deleteAPIKey answers DELETE /api/apikeys/{Id} (operator only) with 204.
func (s *Server) deleteAPIKey(r *http.Request, c *caller) (int, any, error) {
	const op = "DeleteApiKey"
	if err := adminOnly(c); err != nil {
		return 0, nil, err
	}
	id := r.PathValue("Id")
	var digest [32]byte
	if b, err := hex.DecodeString(id); err != nil || len(b) != len(digest) {
		return 0, nil, bindError(op, "Id", id)
	} else {
		copy(digest[:], b)
	}
	if err := s.reg.DeleteAPIKey(r.Context(), digest); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
