package client

import (
	"context"
	"net/url"

	"github.com/usaged/usaged/ccc/dto"
	"github.com/usaged/usaged/usage"
)

// The service-usage API answers JSON by default; its format suffixes
// (.json, .csv, .xml) are for other readers.

// CreatePartner creates a partner (admin).
func (c *Client) CreatePartner(ctx context.Context, name string) (dto.Partner, error) {
	var p dto.Partner
	err := c.do(ctx, "POST", "/api/partners", dto.NameRequest{Name: name}, &p)
	return p, err
}

// Partners lists every partner (admin).
func (c *Client) Partners(ctx context.Context) ([]dto.Partner, error) {
	var ps []dto.Partner
	err := c.do(ctx, "GET", "/api/partners", nil, &ps)
	return ps, err
}

// CreateReseller creates a reseller of partner.
func (c *Client) CreateReseller(ctx context.Context, partner usage.GUID, name string) (dto.Reseller, error) {
	var x dto.Reseller
	err := c.do(ctx, "POST", "/api/partners/"+partner.String()+"/resellers", dto.NameRequest{Name: name}, &x)
	return x, err
}

// Resellers lists the resellers of partner.
func (c *Client) Resellers(ctx context.Context, partner usage.GUID) ([]dto.Reseller, error) {
	var xs []dto.Reseller
	err := c.do(ctx, "GET", "/api/partners/"+partner.String()+"/resellers", nil, &xs)
	return xs, err
}

// CreateCollection creates a collection; the server assigns its GUID.
func (c *Client) CreateCollection(ctx context.Context, req dto.CreateCollectionRequest) (dto.Collection, error) {
	var out dto.Collection
	err := c.do(ctx, "POST", "/api/collections", req, &out)
	return out, err
}

// Collections lists the collections the caller sees.
func (c *Client) Collections(ctx context.Context) ([]dto.Collection, error) {
	var cs []dto.Collection
	err := c.do(ctx, "GET", "/api/collections", nil, &cs)
	return cs, err
}

// Collection returns one collection.
func (c *Client) Collection(ctx context.Context, guid usage.GUID) (dto.Collection, error) {
	var out dto.Collection
	err := c.do(ctx, "GET", "/api/collections/"+guid.String(), nil, &out)
	return out, err
}

// CreateService creates a service of a reseller.
func (c *Client) CreateService(ctx context.Context, req dto.CreateServiceRequest) (dto.Service, error) {
	var out dto.Service
	err := c.do(ctx, "POST", "/api/services", req, &out)
	return out, err
}

// Service returns a service; a missing one is an *Error of status 404.
func (c *Client) Service(ctx context.Context, guid usage.GUID) (dto.Service, error) {
	var out dto.Service
	err := c.do(ctx, "GET", "/api/services/"+guid.String(), nil, &out)
	return out, err
}

// SearchServices returns a page of the services the caller sees that
// match params (Domain, Name, Code, Page, PageSize).
func (c *Client) SearchServices(ctx context.Context, params url.Values) (dto.Paged[dto.Service], error) {
	var out dto.Paged[dto.Service]
	err := c.do(ctx, "GET", withQuery("/api/services", params), nil, &out)
	return out, err
}

// SetServiceStatus changes a service's status.
func (c *Client) SetServiceStatus(ctx context.Context, guid usage.GUID, status usage.ServiceStatus) (dto.Service, error) {
	var out dto.Service
	err := c.do(ctx, "PUT", "/api/services/"+guid.String()+"/status", dto.UpdateServiceStatusRequest{Status: status.String()}, &out)
	return out, err
}

// CreateAPIKey creates a key of scope (admin); the answer alone holds its
// secret.
func (c *Client) CreateAPIKey(ctx context.Context, name string, scope usage.Scope) (dto.APIKey, error) {
	var k dto.APIKey
	err := c.do(ctx, "POST", "/api/apikeys", dto.CreateAPIKeyRequest{Name: name, Scope: scope.Kind.String(), ScopeGuid: scope.GUID.String()}, &k)
	return k, err
}

// APIKeys lists every key, without secrets (admin).
func (c *Client) APIKeys(ctx context.Context) ([]dto.APIKey, error) {
	var ks []dto.APIKey
	err := c.do(ctx, "GET", "/api/apikeys", nil, &ks)
	return ks, err
}

// DeleteAPIKey revokes the key whose id (the hex of its digest) is id
// (admin).
func (c *Client) DeleteAPIKey(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", pathf("/api/apikeys/%s", id), nil, nil)
}

// The reports take the query parameters of their operation: Period and
// PeriodType, Page and PageSize, and the filters each documents.

// ServiceUsage returns a service's usage in a period.
func (c *Client) ServiceUsage(ctx context.Context, guid usage.GUID, params url.Values) (dto.ServiceUsage, error) {
	var out dto.ServiceUsage
	err := c.do(ctx, "GET", withQuery("/api/services/"+guid.String()+"/serviceusage", params), nil, &out)
	return out, err
}

// ServiceUsageHistory returns a service's usage period by period.
func (c *Client) ServiceUsageHistory(ctx context.Context, guid usage.GUID, params url.Values) ([]dto.ServiceUsage, error) {
	var out []dto.ServiceUsage
	err := c.do(ctx, "GET", withQuery("/api/services/"+guid.String()+"/serviceusage/history", params), nil, &out)
	return out, err
}

// ServicesUsage returns a page of the usage of the services the caller
// sees.
func (c *Client) ServicesUsage(ctx context.Context, params url.Values) (dto.Paged[dto.ServiceUsage], error) {
	var out dto.Paged[dto.ServiceUsage]
	err := c.do(ctx, "GET", withQuery("/api/services/usage", params), nil, &out)
	return out, err
}

// ResellerServiceUsage returns a page of the usage of a reseller's
// services (the deprecated serviceusagelist operation).
func (c *Client) ResellerServiceUsage(ctx context.Context, reseller usage.GUID, params url.Values) (dto.Paged[dto.ServiceUsage], error) {
	var out dto.Paged[dto.ServiceUsage]
	err := c.do(ctx, "GET", withQuery("/api/resellers/"+reseller.String()+"/serviceusagelist", params), nil, &out)
	return out, err
}

// ServiceUsersUsage returns a page of the per-user usage of a service.
func (c *Client) ServiceUsersUsage(ctx context.Context, guid usage.GUID, params url.Values) (dto.ServiceUsersUsage, error) {
	var out dto.ServiceUsersUsage
	err := c.do(ctx, "GET", withQuery("/api/services/"+guid.String()+"/users/usage", params), nil, &out)
	return out, err
}

// ServiceUserUsage returns one user's usage of a service.
func (c *Client) ServiceUserUsage(ctx context.Context, guid, user usage.GUID, params url.Values) (dto.ServiceUserUsage, error) {
	var out dto.ServiceUserUsage
	err := c.do(ctx, "GET", withQuery("/api/services/"+guid.String()+"/users/"+user.String()+"/usage", params), nil, &out)
	return out, err
}

func withQuery(path string, params url.Values) string {
	if len(params) == 0 {
		return path
	}
	return path + "?" + params.Encode()
}
