package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

var _ store.Webhooks = (*Store)(nil)

// PutWebhook implements store.Webhooks.
func (s *Store) PutWebhook(ctx context.Context, e usage.WebhookEndpoint) error {
	return s.putRecord(ctx, `INSERT INTO webhooks (id, organization_id, record) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET organization_id = EXCLUDED.organization_id, record = EXCLUDED.record`, e, e.ID, e.OrganizationID)
}

// Webhook implements store.Webhooks.
func (s *Store) Webhook(ctx context.Context, orgID, id string) (usage.WebhookEndpoint, error) {
	return record[usage.WebhookEndpoint](ctx, s, `SELECT record FROM webhooks WHERE organization_id = $1 AND id = $2`, orgID, id)
}

// Webhooks implements store.Webhooks.
func (s *Store) Webhooks(ctx context.Context, orgID string) ([]usage.WebhookEndpoint, error) {
	return records[usage.WebhookEndpoint](ctx, s, `SELECT record FROM webhooks WHERE organization_id = $1 ORDER BY id`, orgID)
}

// DeleteWebhook implements store.Webhooks; its deliveries go with it (ON
// DELETE CASCADE).
func (s *Store) DeleteWebhook(ctx context.Context, orgID, id string) error {
	return s.deleteOne(ctx, `DELETE FROM webhooks WHERE organization_id = $1 AND id = $2`, orgID, id)
}

// AppendDelivery implements store.Webhooks. The endpoint's row is locked
// while its log is counted and trimmed, so that appends to one endpoint
// take turns.
func (s *Store) AppendDelivery(ctx context.Context, d usage.Delivery) error {
	b, err := json.Marshal(d)
	if err != nil {
		return usage.Errorf(usage.KindInvalid, "", "the delivery cannot be stored: %v", err)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var found string
		err := tx.QueryRow(ctx, `SELECT id FROM webhooks WHERE id = $1 AND organization_id = $2 FOR UPDATE`, d.EndpointID, d.OrganizationID).Scan(&found)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // the endpoint is gone: its log with it
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (endpoint_id, at, id, notification_id, record) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (endpoint_id, at, id) DO UPDATE SET notification_id = EXCLUDED.notification_id, record = EXCLUDED.record`,
			d.EndpointID, d.Time.UnixNano(), d.ID, d.Notification.ID, b); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE endpoint_id = $1 AND (at, id) <= (
			SELECT at, id FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY at DESC, id DESC OFFSET $2 LIMIT 1)`,
			d.EndpointID, store.MaxDeliveriesPerEndpoint)
		return err
	})
}

// Deliveries implements store.Webhooks.
func (s *Store) Deliveries(ctx context.Context, orgID, endpointID, after string, limit int) ([]usage.Delivery, string, error) {
	var from usage.Delivery
	if after != "" {
		var err error
		if from, err = store.ParseDeliveryCursor(after); err != nil {
			return nil, "", err
		}
	}
	ds, err := records[usage.Delivery](ctx, s, `SELECT d.record FROM webhook_deliveries d JOIN webhooks w ON w.id = d.endpoint_id
		WHERE w.organization_id = $1 AND d.endpoint_id = $2 AND (NOT $3 OR (d.at, d.id) < ($4, $5))
		ORDER BY d.at DESC, d.id DESC LIMIT $6`,
		orgID, endpointID, after != "", from.Time.UnixNano(), from.ID, limit+1)
	if err != nil || len(ds) <= limit {
		return ds, "", err
	}
	ds = ds[:limit]
	return ds, store.DeliveryCursor(&ds[limit-1]), nil
}

// Delivery implements store.Webhooks.
func (s *Store) Delivery(ctx context.Context, orgID, endpointID, id string) (usage.Delivery, error) {
	return record[usage.Delivery](ctx, s, `SELECT d.record FROM webhook_deliveries d JOIN webhooks w ON w.id = d.endpoint_id
		WHERE w.organization_id = $1 AND d.endpoint_id = $2 AND d.id = $3`, orgID, endpointID, id)
}

// NotificationDeliveries implements store.Webhooks.
func (s *Store) NotificationDeliveries(ctx context.Context, endpointID, notificationID string) ([]usage.Delivery, error) {
	return records[usage.Delivery](ctx, s, `SELECT record FROM webhook_deliveries
		WHERE endpoint_id = $1 AND notification_id = $2 ORDER BY at, id`, endpointID, notificationID)
}
