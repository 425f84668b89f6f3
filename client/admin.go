package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/usaged/usaged/genesys/wire"
)

// CreateOrganization creates an organization (admin).
func (c *Client) CreateOrganization(ctx context.Context, name string) (wire.Organization, error) {
	var o wire.Organization
	err := c.do(ctx, "POST", "/api/v2/admin/organizations", wire.CreateOrganizationRequest{Name: name}, &o)
	return o, err
}

// Organizations lists every organization (admin).
func (c *Client) Organizations(ctx context.Context) ([]wire.Organization, error) {
	var e wire.Entities[wire.Organization]
	err := c.do(ctx, "GET", "/api/v2/admin/organizations", nil, &e)
	return e.Entities, err
}

// Organization returns the organization id (admin).
func (c *Client) Organization(ctx context.Context, id string) (wire.Organization, error) {
	var o wire.Organization
	err := c.do(ctx, "GET", pathf("/api/v2/admin/organizations/%s", id), nil, &o)
	return o, err
}

// OrganizationNamed returns the organization called name, creating it if
// there is none, and whether it was created (admin).
func (c *Client) OrganizationNamed(ctx context.Context, name string) (wire.Organization, bool, error) {
	orgs, err := c.Organizations(ctx)
	if err != nil {
		return wire.Organization{}, false, err
	}
	for _, o := range orgs {
		if o.Name == name {
			return o, false, nil
		}
	}
	o, err := c.CreateOrganization(ctx, name)
	return o, err == nil, err
}

// CreateClient creates an OAuth client of organization org (admin); the
// answer alone holds its secret.
func (c *Client) CreateClient(ctx context.Context, org string, spec wire.CreateClientRequest) (wire.Client, error) {
	var cl wire.Client
	err := c.do(ctx, "POST", pathf("/api/v2/admin/organizations/%s/clients", org), spec, &cl)
	return cl, err
}

// Clients lists the OAuth clients of organization org (admin).
func (c *Client) Clients(ctx context.Context, org string) ([]wire.Client, error) {
	var e wire.Entities[wire.Client]
	err := c.do(ctx, "GET", pathf("/api/v2/admin/organizations/%s/clients", org), nil, &e)
	return e.Entities, err
}

// DeleteClient deletes client id of organization org (admin); its tokens
// stop working.
func (c *Client) DeleteClient(ctx context.Context, org, id string) error {
	return c.do(ctx, "DELETE", pathf("/api/v2/admin/organizations/%s/clients/%s", org, id), nil, nil)
}

// AccessToken exchanges client credentials for an access token (POST
// /oauth/token, grant client_credentials).
func (c *Client) AccessToken(ctx context.Context, id, secret string) (wire.TokenResponse, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return wire.TokenResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	var tok wire.TokenResponse
	if err := c.send(req, &tok); err != nil {
		return wire.TokenResponse{}, fmt.Errorf("getting an access token for client %s: %w", id, err)
	}
	return tok, nil
}

// TokenMe returns what the client's token stands for (GET
// /api/v2/tokens/me). A token that is not valid is an *Error of status 401.
func (c *Client) TokenMe(ctx context.Context) (wire.TokenInfo, error) {
	var ti wire.TokenInfo
	err := c.do(ctx, "GET", "/api/v2/tokens/me", nil, &ti)
	return ti, err
}
