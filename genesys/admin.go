package genesys

import (
	"net/http"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/usage"
)

// The admin routes manage organizations and their OAuth clients. They are
// usaged's own and take the admin token only.
func (s *Server) registerAdmin(r *router) {
	r.api("POST /api/v2/admin/organizations", s.admin(s.createOrganization))
	r.api("GET /api/v2/admin/organizations", s.admin(s.listOrganizations))
	r.api("GET /api/v2/admin/organizations/{orgId}", s.admin(s.getOrganization))
	r.api("POST /api/v2/admin/organizations/{orgId}/clients", s.admin(s.createClient))
	r.api("GET /api/v2/admin/organizations/{orgId}/clients", s.admin(s.listClients))
	r.api("GET /api/v2/admin/organizations/{orgId}/clients/{clientId}", s.admin(s.getClient))
	r.api("DELETE /api/v2/admin/organizations/{orgId}/clients/{clientId}", s.admin(s.deleteClient))
}

// admin refuses every principal but the admin.
func (s *Server) admin(h handlerFunc) handlerFunc {
	return func(r *http.Request, p *auth.Principal) (response, error) {
		if !p.Admin {
			return response{}, errAdminOnly
		}
		return h(r, p)
	}
}

// entities is the Genesys list envelope.
type entities[T any] = wire.Entities[T]

type organizationBody = wire.Organization

func organizationOf(o usage.Organization) organizationBody {
	return organizationBody{ID: o.ID, Name: o.Name, DateCreated: formatTime(o.CreatedAt)}
}

type createOrganizationRequest = wire.CreateOrganizationRequest

func (s *Server) createOrganization(r *http.Request, _ *auth.Principal) (response, error) {
	var req createOrganizationRequest
	if err := decodeJSON(r, &req); err != nil {
		return response{}, err
	}
	o, err := s.cfg.Auth.CreateOrganization(r.Context(), req.Name)
	if err != nil {
		return response{}, err
	}
	return created(organizationOf(o)), nil
}

func (s *Server) listOrganizations(r *http.Request, _ *auth.Principal) (response, error) {
	orgs, err := s.cfg.Auth.Organizations(r.Context())
	if err != nil {
		return response{}, err
	}
	out := entities[organizationBody]{Entities: make([]organizationBody, 0, len(orgs))}
	for _, o := range orgs {
		out.Entities = append(out.Entities, organizationOf(o))
	}
	return ok(out), nil
}

func (s *Server) getOrganization(r *http.Request, _ *auth.Principal) (response, error) {
	o, err := s.cfg.Auth.Organization(r.Context(), r.PathValue("orgId"))
	if err != nil {
		return response{}, err
	}
	return ok(organizationOf(o)), nil
}

type clientBody = wire.Client

func clientOf(c usage.Client) clientBody {
	perms := c.Permissions
	if perms == nil {
		perms = []string{}
	}
	return clientBody{
		ID:                         c.ID,
		Name:                       c.Name,
		Description:                c.Description,
		Permissions:                perms,
		AccessTokenValiditySeconds: int64(c.AccessTokenValidity / time.Second),
		OrganizationID:             c.OrganizationID,
		DateCreated:                formatTime(c.CreatedAt),
	}
}

type createClientRequest = wire.CreateClientRequest

func (s *Server) createClient(r *http.Request, _ *auth.Principal) (response, error) {
	var req createClientRequest
	if err := decodeJSON(r, &req); err != nil {
		return response{}, err
	}
	v := req.AccessTokenValiditySeconds
	if v < 0 || v > int64(auth.MaxTokenValidity/time.Second) {
		// Checked here too because a huge number would overflow a Duration.
		return response{}, usage.Errorf(usage.KindInvalid, "accessTokenValiditySeconds",
			"accessTokenValiditySeconds %d must be from %d to %d", v, int64(auth.MinTokenValidity/time.Second), int64(auth.MaxTokenValidity/time.Second))
	}
	c, secret, err := s.cfg.Auth.CreateClient(r.Context(), r.PathValue("orgId"), auth.ClientSpec{
		Name:                req.Name,
		Description:         req.Description,
		Permissions:         req.Permissions,
		AccessTokenValidity: time.Duration(v) * time.Second,
	})
	if err != nil {
		return response{}, err
	}
	body := clientOf(c)
	body.Secret = secret
	return created(body), nil
}

func (s *Server) listClients(r *http.Request, _ *auth.Principal) (response, error) {
	cs, err := s.cfg.Auth.Clients(r.Context(), r.PathValue("orgId"))
	if err != nil {
		return response{}, err
	}
	out := entities[clientBody]{Entities: make([]clientBody, 0, len(cs))}
	for _, c := range cs {
		out.Entities = append(out.Entities, clientOf(c))
	}
	return ok(out), nil
}

func (s *Server) getClient(r *http.Request, _ *auth.Principal) (response, error) {
	c, err := s.cfg.Auth.Client(r.Context(), r.PathValue("orgId"), r.PathValue("clientId"))
	if err != nil {
		return response{}, err
	}
	return ok(clientOf(c)), nil
}

func (s *Server) deleteClient(r *http.Request, _ *auth.Principal) (response, error) {
	if err := s.cfg.Auth.DeleteClient(r.Context(), r.PathValue("orgId"), r.PathValue("clientId")); err != nil {
		return response{}, err
	}
	return noContent, nil
}
