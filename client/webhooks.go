package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/usaged/usaged/genesys/wire"
)

const webhooksPath = "/api/v2/usage/webhooks"

// CreateWebhook creates a webhook of the token's organization; the answer
// alone holds its secret.
func (c *Client) CreateWebhook(ctx context.Context, req wire.WebhookRequest) (wire.Webhook, error) {
	var w wire.Webhook
	err := c.do(ctx, "POST", webhooksPath, req, &w)
	return w, err
}

// Webhooks lists the webhooks of the token's organization.
func (c *Client) Webhooks(ctx context.Context) ([]wire.Webhook, error) {
	var e wire.WebhookEntities
	err := c.do(ctx, "GET", webhooksPath, nil, &e)
	return e.Entities, err
}

// Webhook returns webhook id.
func (c *Client) Webhook(ctx context.Context, id string) (wire.Webhook, error) {
	var w wire.Webhook
	err := c.do(ctx, "GET", pathf(webhooksPath+"/%s", id), nil, &w)
	return w, err
}

// UpdateWebhook replaces the url, event types and enabled of webhook id.
func (c *Client) UpdateWebhook(ctx context.Context, id string, req wire.WebhookRequest) (wire.Webhook, error) {
	var w wire.Webhook
	err := c.do(ctx, "PUT", pathf(webhooksPath+"/%s", id), req, &w)
	return w, err
}

// DeleteWebhook deletes webhook id and its delivery log.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", pathf(webhooksPath+"/%s", id), nil, nil)
}

// WebhookDeliveries returns a page of webhook id's delivery log, newest
// first: pageSize 0 for the server's default, after "" for the first page
// or the cursor of the previous one. The page's Cursors, when present,
// carry the cursor of the next.
func (c *Client) WebhookDeliveries(ctx context.Context, id string, pageSize int, after string) (wire.WebhookDeliveryPage, error) {
	q := url.Values{}
	if pageSize > 0 {
		q.Set("pageSize", strconv.Itoa(pageSize))
	}
	if after != "" {
		q.Set("after", after)
	}
	path := pathf(webhooksPath+"/%s/deliveries", id)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p wire.WebhookDeliveryPage
	err := c.do(ctx, "GET", path, nil, &p)
	return p, err
}

// ReplayWebhookDelivery sends the notification of delivery deliveryID to
// webhook id again, now, and returns the new attempt.
func (c *Client) ReplayWebhookDelivery(ctx context.Context, id, deliveryID string) (wire.WebhookDelivery, error) {
	var d wire.WebhookDelivery
	err := c.do(ctx, "POST", pathf(webhooksPath+"/%s/deliveries/%s/replay", id, deliveryID), nil, &d)
	return d, err
}

// TestWebhook sends a webhook.test notification to webhook id now and
// returns the attempt.
func (c *Client) TestWebhook(ctx context.Context, id string) (wire.WebhookDelivery, error) {
	var d wire.WebhookDelivery
	err := c.do(ctx, "POST", pathf(webhooksPath+"/%s/test", id), nil, &d)
	return d, err
}
