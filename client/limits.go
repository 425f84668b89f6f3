package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/usaged/usaged/genesys/wire"
)

// LimitsPath is where the usage limits are.
const LimitsPath = "/api/v2/usage/limits"

// LimitOptions are the query parameters of the limits routes. All are
// optional.
type LimitOptions struct {
	// OrganizationID names the organization whose limits the admin token
	// acts on; a client's token acts on its own.
	OrganizationID string
	// Status asks for each limit's status with it (expand=status).
	Status bool
	// PageSize and PageNumber page the list; 0 takes the server's default.
	PageSize, PageNumber int
}

func (o LimitOptions) query() string {
	v := url.Values{}
	if o.OrganizationID != "" {
		v.Set("organizationId", o.OrganizationID)
	}
	if o.Status {
		v.Set("expand", "status")
	}
	if o.PageSize > 0 {
		v.Set("pageSize", strconv.Itoa(o.PageSize))
	}
	if o.PageNumber > 0 {
		v.Set("pageNumber", strconv.Itoa(o.PageNumber))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// CreateLimit creates a usage limit; the answer holds its id.
func (c *Client) CreateLimit(ctx context.Context, req wire.LimitRequest, o LimitOptions) (wire.Limit, error) {
	var l wire.Limit
	err := c.do(ctx, "POST", LimitsPath+o.query(), req, &l)
	return l, err
}

// Limits returns one page of the organization's usage limits, ordered by
// id.
func (c *Client) Limits(ctx context.Context, o LimitOptions) (wire.LimitEntityListing, error) {
	var page wire.LimitEntityListing
	err := c.do(ctx, "GET", LimitsPath+o.query(), nil, &page)
	return page, err
}

// AllLimits returns every usage limit of the organization, reading the
// pages in turn.
func (c *Client) AllLimits(ctx context.Context, o LimitOptions) ([]wire.Limit, error) {
	var all []wire.Limit
	for o.PageNumber = 1; ; o.PageNumber++ {
		page, err := c.Limits(ctx, o)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Entities...)
		if page.PageNumber >= page.PageCount {
			return all, nil
		}
	}
}

// Limit returns the usage limit id.
func (c *Client) Limit(ctx context.Context, id string, o LimitOptions) (wire.Limit, error) {
	var l wire.Limit
	err := c.do(ctx, "GET", pathf(LimitsPath+"/%s", id)+o.query(), nil, &l)
	return l, err
}

// UpdateLimit replaces the usage limit id with req.
func (c *Client) UpdateLimit(ctx context.Context, id string, req wire.LimitRequest, o LimitOptions) (wire.Limit, error) {
	var l wire.Limit
	err := c.do(ctx, "PUT", pathf(LimitsPath+"/%s", id)+o.query(), req, &l)
	return l, err
}

// DeleteLimit deletes the usage limit id.
func (c *Client) DeleteLimit(ctx context.Context, id string, o LimitOptions) error {
	return c.do(ctx, "DELETE", pathf(LimitsPath+"/%s", id)+o.query(), nil, nil)
}

// LimitStatus returns where the usage limit id stands in its current
// window.
func (c *Client) LimitStatus(ctx context.Context, id string, o LimitOptions) (wire.LimitStatus, error) {
	var st wire.LimitStatus
	err := c.do(ctx, "GET", pathf(LimitsPath+"/%s/status", id)+o.query(), nil, &st)
	return st, err
}
