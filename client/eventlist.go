package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/usaged/usaged/genesys/wire"
)

// EventsQuery selects a page of GET /api/v2/usage/events. Empty lists do
// not filter; a list of several values allows any of them.
type EventsQuery struct {
	Interval     string // ISO-8601, at most 31 days; required
	ClientIDs    []string
	UserIDs      []string
	TemplateURIs []string
	HTTPMethods  []string
	PageSize     int    // 1–1000; 0 for the server's default of 100
	Cursor       string // the Cursor of the previous page; "" for the first
}

// params is q as the route's query parameters.
func (q *EventsQuery) params() url.Values {
	v := url.Values{"interval": {q.Interval}}
	add := func(name string, values []string) {
		if len(values) > 0 {
			v[name] = values
		}
	}
	add("clientId", q.ClientIDs)
	add("userId", q.UserIDs)
	add("templateUri", q.TemplateURIs)
	add("httpMethod", q.HTTPMethods)
	if q.PageSize != 0 {
		v.Set("pageSize", strconv.Itoa(q.PageSize))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	return v
}

// Events lists a page of the accepted events of the token's organization
// (GET /api/v2/usage/events), in order of time, client and event id. The
// page's Cursor, when not empty, is the next page's q.Cursor. A server
// whose store keeps only counts answers 501, an error of kind
// usage.KindUnsupported.
func (c *Client) Events(ctx context.Context, q EventsQuery) (wire.EventPage, error) {
	var out wire.EventPage
	err := c.do(ctx, "GET", withQuery(EventsPath, q.params()), nil, &out)
	return out, err
}
