package genesys

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/usage"
)

// registerClients adds Genesys' OAuth client management routes. They act on
// the clients of the caller's organization; a client of another one is
// missing, as one that does not exist. The admin token, which belongs to no
// organization, is refused with 403 not.authorized and pointed at the
// /api/v2/admin routes.
func (s *Server) registerClients(r *router) {
	r.api("GET /api/v2/oauth/clients", ownClients(usage.PermOAuthClientView, s.listOAuthClients))
	r.api("POST /api/v2/oauth/clients", ownClients(usage.PermOAuthClientAdd, s.createOAuthClient))
	r.api("GET /api/v2/oauth/clients/{clientId}", ownClients(usage.PermOAuthClientView, s.getOAuthClient))
	r.api("PUT /api/v2/oauth/clients/{clientId}", ownClients(usage.PermOAuthClientEdit, s.updateOAuthClient))
	r.api("DELETE /api/v2/oauth/clients/{clientId}", ownClients(usage.PermOAuthClientDel, s.deleteOAuthClient))
	r.api("POST /api/v2/oauth/clients/{clientId}/secret", ownClients(usage.PermOAuthClientEdit, s.regenerateOAuthClientSecret))
}

// clientsPath is where the clients of the caller's organization are.
const clientsPath = "/api/v2/oauth/clients"

// grantClientCredentials is the one grant type of usaged's clients.
const grantClientCredentials = "CLIENT-CREDENTIALS"

// ownClients runs h for principals holding perm and belonging to an
// organization.
func ownClients(perm string, h handlerFunc) handlerFunc {
	return func(r *http.Request, p *auth.Principal) (response, error) {
		if err := requireAny(p, perm); err != nil {
			return response{}, err
		}
		if p.OrganizationID == "" {
			return response{}, withCode(usage.Errorf(usage.KindForbidden, "",
				"The admin token belongs to no organization; manage clients at /api/v2/admin/organizations/{orgId}/clients, or use a token of one of the organization's OAuth clients."),
				codeNotAuthorized)
		}
		return h(r, p)
	}
}

// oauthClientBody is Genesys' OAuthClient, and its OAuthClientListing in
// lists, as far as it applies to usaged's clients: they all use the
// client-credentials grant, are active until deleted, and hold usaged
// permissions directly. Genesys assigns permissions through roles, whose
// ids usaged cannot resolve: it keeps roleIds, roleDivisions and scope as
// given and answers them back, but they grant nothing. Genesys' createdBy,
// modifiedBy and dateModified are not kept.
type oauthClientBody struct {
	ID                         string `json:"id"`
	Name                       string `json:"name"`
	Description                string `json:"description"`
	AccessTokenValiditySeconds int64  `json:"accessTokenValiditySeconds"`
	// Secret is shown only by the create and regenerate-secret operations:
	// usaged keeps no more than a hash of it.
	Secret              string `json:"secret,omitempty"`
	AuthorizedGrantType string `json:"authorizedGrantType"`
	State               string `json:"state"`
	DateCreated         string `json:"dateCreated"`
	// Permissions is usaged's extension: what the client's tokens may do.
	Permissions   []string       `json:"permissions"`
	RoleIDs       []string       `json:"roleIds,omitempty"`
	RoleDivisions []roleDivision `json:"roleDivisions,omitempty"`
	Scope         []string       `json:"scope,omitempty"`
	SelfURI       string         `json:"selfUri"`
}

// roleDivision is Genesys' RoleDivision, which requires both ids (auth
// checks them).
type roleDivision struct {
	RoleID     string `json:"roleId"`
	DivisionID string `json:"divisionId"`
}

func oauthClientOf(c usage.Client) oauthClientBody {
	perms := c.Permissions
	if perms == nil {
		perms = []string{}
	}
	var rds []roleDivision
	for _, rd := range c.RoleDivisions {
		rds = append(rds, roleDivision(rd))
	}
	return oauthClientBody{
		ID:                         c.ID,
		Name:                       c.Name,
		Description:                c.Description,
		AccessTokenValiditySeconds: int64(c.AccessTokenValidity / time.Second),
		AuthorizedGrantType:        grantClientCredentials,
		State:                      "active",
		DateCreated:                formatTime(c.CreatedAt),
		Permissions:                perms,
		RoleIDs:                    c.RoleIDs,
		RoleDivisions:              rds,
		Scope:                      c.Scope,
		SelfURI:                    clientsPath + "/" + url.PathEscape(c.ID),
	}
}

// oauthClientRequest is Genesys' OAuthClientRequest. roleIds,
// roleDivisions and scope, which Genesys' admin scripts send, are stored
// and answered back but grant nothing (see oauthClientBody). Fields that
// do not apply to client-credentials clients (registeredRedirectUri,
// dateToDelete) are accepted so that requests written for Genesys decode,
// but only when empty; otherwise they are an error naming the field,
// rather than silently ignored.
type oauthClientRequest struct {
	Name                       string  `json:"name"`
	Description                string  `json:"description"`
	AccessTokenValiditySeconds *int64  `json:"accessTokenValiditySeconds"` // absent: the default, 86400
	AuthorizedGrantType        *string `json:"authorizedGrantType"`        // absent: CLIENT-CREDENTIALS
	State                      *string `json:"state"`                      // absent or "active"
	// Permissions is usaged's extension, each one of usage.Permissions.
	Permissions []string `json:"permissions"`

	RoleIDs       []string       `json:"roleIds"`
	RoleDivisions []roleDivision `json:"roleDivisions"`
	Scope         []string       `json:"scope"`

	RegisteredRedirectURI []string `json:"registeredRedirectUri"`
	DateToDelete          *string  `json:"dateToDelete"`
}

// allowedGrantTypes are the values of authorizedGrantType usaged accepts: of
// Genesys' CODE, TOKEN, SAML2-BEARER, PASSWORD and CLIENT-CREDENTIALS, only
// the one its token endpoint serves.
var allowedGrantTypes = []string{grantClientCredentials}

// spec validates the request and returns what it asks for. Permissions and
// the validity range are checked here, though auth checks them too, to
// answer in Genesys' shapes; the name and description are left to auth.
func (req *oauthClientRequest) spec() (auth.ClientSpec, error) {
	if g := req.AuthorizedGrantType; g != nil && *g != grantClientCredentials {
		return auth.ClientSpec{}, invalidValue("authorizedGrantType", *g, allowedGrantTypes)
	}
	if st := req.State; st != nil && *st != "active" {
		return auth.ClientSpec{}, invalidValue("state", *st, []string{"active"})
	}
	for _, f := range []struct {
		name  string
		empty bool
		why   string
	}{
		{"registeredRedirectUri", len(req.RegisteredRedirectURI) == 0, "redirects apply only to grants usaged does not support"},
		{"dateToDelete", req.DateToDelete == nil || *req.DateToDelete == "", "usaged deletes a client only when asked to"},
	} {
		if !f.empty {
			return auth.ClientSpec{}, usage.Errorf(usage.KindInvalid, f.name, "%s must be empty or absent: %s", f.name, f.why)
		}
	}
	for _, p := range req.Permissions {
		if !usage.KnownPermission(p) {
			return auth.ClientSpec{}, invalidValue("permissions", p, usage.Permissions)
		}
	}
	var validity time.Duration
	if v := req.AccessTokenValiditySeconds; v != nil {
		lo, hi := int64(auth.MinTokenValidity/time.Second), int64(auth.MaxTokenValidity/time.Second)
		if *v < lo || *v > hi {
			return auth.ClientSpec{}, &apiError{
				err: usage.Errorf(usage.KindInvalid, "accessTokenValiditySeconds",
					"accessTokenValiditySeconds must be from %d to %d, not %d", lo, hi, *v),
				code: codeConstraintValidation,
			}
		}
		validity = time.Duration(*v) * time.Second
	}
	var rds []usage.RoleDivision
	for _, rd := range req.RoleDivisions {
		rds = append(rds, usage.RoleDivision(rd))
	}
	return auth.ClientSpec{
		Name:                req.Name,
		Description:         req.Description,
		Permissions:         req.Permissions,
		AccessTokenValidity: validity,
		RoleIDs:             req.RoleIDs,
		RoleDivisions:       rds,
		Scope:               req.Scope,
	}, nil
}

// decodeClientRequest decodes and validates an OAuthClientRequest, and
// checks that p may grant the permissions it asks for.
func decodeClientRequest(r *http.Request, p *auth.Principal) (auth.ClientSpec, error) {
	var req oauthClientRequest
	if err := decodeJSON(r, &req); err != nil {
		return auth.ClientSpec{}, err
	}
	spec, err := req.spec()
	if err != nil {
		return auth.ClientSpec{}, err
	}
	// As in Genesys, where one can assign only roles one has: a client
	// cannot make another more powerful than itself.
	var missing []string
	for _, perm := range spec.Permissions {
		if !p.Has(perm) && !slices.Contains(missing, perm) {
			missing = append(missing, perm)
		}
	}
	if len(missing) > 0 {
		return auth.ClientSpec{}, paramError(usage.KindForbidden, "permissions", "missing.permissions",
			forbiddenPrefix+"A client can grant only permissions it holds itself. You must have all of the following permissions assigned: {permissions}",
			map[string]string{"permissions": strings.Join(missing, ", ")})
	}
	return spec, nil
}

// oauthClientListing is Genesys' OauthClientEntityListing.
type oauthClientListing struct {
	Entities    []oauthClientBody `json:"entities"`
	PageSize    int               `json:"pageSize"`
	PageNumber  int               `json:"pageNumber"`
	Total       int               `json:"total"`
	PageCount   int               `json:"pageCount"`
	FirstURI    string            `json:"firstUri"`
	SelfURI     string            `json:"selfUri"`
	LastURI     string            `json:"lastUri"`
	NextURI     string            `json:"nextUri,omitempty"`
	PreviousURI string            `json:"previousUri,omitempty"`
}

// maxClientsPageSize bounds pageSize of the client list.
const maxClientsPageSize = 1000

// listOAuthClients answers the organization's clients ordered by name, then
// id. Genesys defines no parameters for this operation and its SDK sends
// none, so by default every client is on the one page; usaged also takes
// Genesys' usual pageSize (1–1000) and pageNumber (from 1).
func (s *Server) listOAuthClients(r *http.Request, p *auth.Principal) (response, error) {
	q := r.URL.Query()
	size, err := clientsPageParam(q, "pageSize", 0, maxClientsPageSize)
	if err != nil {
		return response{}, err
	}
	number, err := clientsPageParam(q, "pageNumber", 1, 0)
	if err != nil {
		return response{}, err
	}
	cs, err := s.cfg.Auth.Clients(r.Context(), p.OrganizationID)
	if err != nil {
		return response{}, err
	}
	slices.SortFunc(cs, func(a, b usage.Client) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})

	out := oauthClientListing{Entities: []oauthClientBody{}, PageNumber: number, Total: len(cs)}
	uri := func(n int) string {
		v := url.Values{"pageNumber": {strconv.Itoa(n)}}
		if size > 0 {
			v.Set("pageSize", strconv.Itoa(size))
		}
		return clientsPath + "?" + v.Encode()
	}
	page := cs
	if size > 0 {
		out.PageSize = size
		out.PageCount = (len(cs) + size - 1) / size
		first := min((number-1)*size, len(cs)) // number is bounded: no overflow
		page = cs[first:min(first+size, len(cs))]
	} else {
		out.PageSize = len(cs)
		out.PageCount = min(len(cs), 1)
		if number > 1 {
			page = nil
		}
	}
	for _, c := range page {
		out.Entities = append(out.Entities, oauthClientOf(c))
	}
	out.SelfURI = uri(number)
	out.FirstURI = uri(1)
	out.LastURI = uri(max(out.PageCount, 1))
	if number < out.PageCount {
		out.NextURI = uri(number + 1)
	}
	if number > 1 && number <= out.PageCount {
		out.PreviousURI = uri(number - 1)
	}
	return ok(out), nil
}

// maxClientsPageNumber bounds pageNumber, so that page arithmetic cannot overflow.
const maxClientsPageNumber = 1_000_000

// clientsPageParam parses an optional query parameter from 1 to maxValue
// (maxClientsPageNumber if 0); absent, it is def.
func clientsPageParam(q url.Values, name string, def, maxValue int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	if maxValue == 0 {
		maxValue = maxClientsPageNumber
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxValue {
		return 0, withCode(usage.Errorf(usage.KindInvalid, name,
			"%s must be a whole number from 1 to %d, not %q", name, maxValue, v), codeInvalidQueryParam)
	}
	return n, nil
}

// createOAuthClient creates a client and answers it with its secret, the
// only time the secret is shown. Genesys answers 200, not 201.
func (s *Server) createOAuthClient(r *http.Request, p *auth.Principal) (response, error) {
	spec, err := decodeClientRequest(r, p)
	if err != nil {
		return response{}, err
	}
	c, secret, err := s.cfg.Auth.CreateClient(r.Context(), p.OrganizationID, spec)
	if err != nil {
		return response{}, err
	}
	body := oauthClientOf(c)
	body.Secret = secret
	return ok(body), nil
}

func (s *Server) getOAuthClient(r *http.Request, p *auth.Principal) (response, error) {
	c, err := s.cfg.Auth.Client(r.Context(), p.OrganizationID, r.PathValue("clientId"))
	if err != nil {
		return response{}, err
	}
	return ok(oauthClientOf(c)), nil
}

// permissionsError reports an *auth.PermissionsError as Genesys reports
// missing permissions of a role assignment: missing.permissions, with the
// list in messageParams. Other errors pass unchanged.
func permissionsError(err error) error {
	pe, ok := errors.AsType[*auth.PermissionsError](err)
	if !ok {
		return err
	}
	// auth's message ends with the list of missing permissions.
	list := strings.Join(pe.Missing, ", ")
	msg := err.Error()
	if ue, ok := errors.AsType[*usage.Error](err); ok {
		msg = ue.Message
	}
	return &apiError{
		err:      err,
		code:     "missing.permissions",
		params:   map[string]string{"permissions": list},
		template: forbiddenPrefix + strings.TrimSuffix(msg, list) + "{permissions}",
	}
}

// updateOAuthClient replaces the client's name, description, token
// validity and permissions; absent ones take their defaults, as on create.
// The caller must hold every permission the client holds now (see
// auth.Service.UpdateClientAs), as well as every one it is given.
func (s *Server) updateOAuthClient(r *http.Request, p *auth.Principal) (response, error) {
	id := r.PathValue("clientId")
	// A missing client is 404 before the body is looked at.
	if _, err := s.cfg.Auth.Client(r.Context(), p.OrganizationID, id); err != nil {
		return response{}, err
	}
	spec, err := decodeClientRequest(r, p)
	if err != nil {
		return response{}, err
	}
	c, err := s.cfg.Auth.UpdateClientAs(r.Context(), p, p.OrganizationID, id, spec)
	if err != nil {
		return response{}, permissionsError(err)
	}
	return ok(oauthClientOf(c)), nil
}

// deleteOAuthClient deletes the client; its tokens stop working at once.
// The caller must hold every permission the client holds.
func (s *Server) deleteOAuthClient(r *http.Request, p *auth.Principal) (response, error) {
	if err := s.cfg.Auth.DeleteClientAs(r.Context(), p, p.OrganizationID, r.PathValue("clientId")); err != nil {
		return response{}, permissionsError(err)
	}
	return noContent, nil
}

// regenerateOAuthClientSecret gives the client a new secret and answers it.
// The old secret and every token issued with it stop working at once. The
// caller must hold every permission the client holds: the new secret is
// worth all of them.
func (s *Server) regenerateOAuthClientSecret(r *http.Request, p *auth.Principal) (response, error) {
	id := r.PathValue("clientId")
	secret, err := s.cfg.Auth.RotateSecretAs(r.Context(), p, p.OrganizationID, id)
	if err != nil {
		return response{}, permissionsError(err)
	}
	c, err := s.cfg.Auth.Client(r.Context(), p.OrganizationID, id)
	if err != nil {
		return response{}, err // deleted just now
	}
	body := oauthClientOf(c)
	body.Secret = secret
	return ok(body), nil
}
