package memory

import (
	"context"
	"slices"
	"strings"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

var (
	_ store.Webhooks = (*DB)(nil)
	_ store.Outbox   = (*DB)(nil)
)

// webhookState is what the store keeps of webhooks: endpoints by ID, each
// endpoint's deliveries (newest first) and the pending notifications.
type webhookState struct {
	endpoints  map[string]usage.WebhookEndpoint
	deliveries map[string][]usage.Delivery
	outbox     map[string]usage.Notification
}

func (d *DB) hooks() *webhookState {
	if d.webhooks.endpoints == nil {
		d.webhooks = webhookState{
			endpoints:  map[string]usage.WebhookEndpoint{},
			deliveries: map[string][]usage.Delivery{},
			outbox:     map[string]usage.Notification{},
		}
	}
	return &d.webhooks
}

func cloneEndpoint(e usage.WebhookEndpoint) usage.WebhookEndpoint {
	e.EventTypes = slices.Clone(e.EventTypes)
	return e
}

func cloneNotification(n usage.Notification) usage.Notification {
	n.Payload = slices.Clone(n.Payload)
	return n
}

func cloneDelivery(d usage.Delivery) usage.Delivery {
	d.Notification = cloneNotification(d.Notification)
	return d
}

// PutWebhook implements store.Webhooks.
func (d *DB) PutWebhook(ctx context.Context, e usage.WebhookEndpoint) error {
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	d.hooks().endpoints[e.ID] = cloneEndpoint(e)
	return nil
}

// Webhook implements store.Webhooks.
func (d *DB) Webhook(ctx context.Context, orgID, id string) (usage.WebhookEndpoint, error) {
	if err := d.lock(ctx); err != nil {
		return usage.WebhookEndpoint{}, err
	}
	defer d.mu.Unlock()
	e, ok := d.hooks().endpoints[id]
	if !ok || e.OrganizationID != orgID {
		return usage.WebhookEndpoint{}, usage.ErrNotFound
	}
	return cloneEndpoint(e), nil
}

// Webhooks implements store.Webhooks.
func (d *DB) Webhooks(ctx context.Context, orgID string) ([]usage.WebhookEndpoint, error) {
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	var out []usage.WebhookEndpoint
	for _, e := range d.hooks().endpoints {
		if e.OrganizationID == orgID {
			out = append(out, cloneEndpoint(e))
		}
	}
	slices.SortFunc(out, func(a, b usage.WebhookEndpoint) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// DeleteWebhook implements store.Webhooks.
func (d *DB) DeleteWebhook(ctx context.Context, orgID, id string) error {
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	h := d.hooks()
	if e, ok := h.endpoints[id]; !ok || e.OrganizationID != orgID {
		return usage.ErrNotFound
	}
	delete(h.endpoints, id)
	delete(h.deliveries, id)
	return nil
}

// AppendDelivery implements store.Webhooks.
func (d *DB) AppendDelivery(ctx context.Context, dl usage.Delivery) error {
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	h := d.hooks()
	if e, ok := h.endpoints[dl.EndpointID]; !ok || e.OrganizationID != dl.OrganizationID {
		return nil
	}
	ds := append(h.deliveries[dl.EndpointID], cloneDelivery(dl))
	slices.SortFunc(ds, func(a, b usage.Delivery) int { return store.CompareDeliveries(&a, &b) })
	if len(ds) > store.MaxDeliveriesPerEndpoint {
		ds = ds[:store.MaxDeliveriesPerEndpoint]
	}
	h.deliveries[dl.EndpointID] = ds
	return nil
}

// Deliveries implements store.Webhooks.
func (d *DB) Deliveries(ctx context.Context, orgID, endpointID, after string, limit int) ([]usage.Delivery, string, error) {
	var from usage.Delivery
	if after != "" {
		var err error
		if from, err = store.ParseDeliveryCursor(after); err != nil {
			return nil, "", err
		}
	}
	if err := d.lock(ctx); err != nil {
		return nil, "", err
	}
	defer d.mu.Unlock()
	h := d.hooks()
	if e, ok := h.endpoints[endpointID]; !ok || e.OrganizationID != orgID {
		return nil, "", nil
	}
	var out []usage.Delivery
	for _, dl := range h.deliveries[endpointID] {
		if after != "" && store.CompareDeliveries(&dl, &from) <= 0 {
			continue
		}
		if len(out) == limit {
			return out, store.DeliveryCursor(&out[len(out)-1]), nil
		}
		out = append(out, cloneDelivery(dl))
	}
	return out, "", nil
}

// Delivery implements store.Webhooks.
func (d *DB) Delivery(ctx context.Context, orgID, endpointID, id string) (usage.Delivery, error) {
	if err := d.lock(ctx); err != nil {
		return usage.Delivery{}, err
	}
	defer d.mu.Unlock()
	h := d.hooks()
	if e, ok := h.endpoints[endpointID]; ok && e.OrganizationID == orgID {
		for _, dl := range h.deliveries[endpointID] {
			if dl.ID == id {
				return cloneDelivery(dl), nil
			}
		}
	}
	return usage.Delivery{}, usage.ErrNotFound
}

// NotificationDeliveries implements store.Webhooks.
func (d *DB) NotificationDeliveries(ctx context.Context, endpointID, notificationID string) ([]usage.Delivery, error) {
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	var out []usage.Delivery
	for _, dl := range d.hooks().deliveries[endpointID] {
		if dl.Notification.ID == notificationID {
			out = append(out, cloneDelivery(dl))
		}
	}
	slices.Reverse(out)
	return out, nil
}

// AppendNotifications implements store.Outbox.
func (d *DB) AppendNotifications(ctx context.Context, ns []usage.Notification) error {
	if err := d.lock(ctx); err != nil {
		return err
	}
	h := d.hooks()
	for _, n := range ns {
		if _, ok := h.outbox[n.ID]; !ok {
			h.outbox[n.ID] = cloneNotification(n)
		}
	}
	fn := d.outboxed
	d.mu.Unlock()
	if fn != nil && len(ns) > 0 {
		fn()
	}
	return nil
}

// WatchOutbox implements store.OutboxWatcher.
func (d *DB) WatchOutbox(fn func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.outboxed = fn
}

// PendingNotifications implements store.Outbox.
func (d *DB) PendingNotifications(ctx context.Context, limit int) ([]usage.Notification, error) {
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	var out []usage.Notification
	for _, n := range d.hooks().outbox {
		out = append(out, cloneNotification(n))
	}
	slices.SortFunc(out, func(a, b usage.Notification) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// MarkNotificationsDone implements store.Outbox.
func (d *DB) MarkNotificationsDone(ctx context.Context, ids []string) error {
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	for _, id := range ids {
		delete(d.hooks().outbox, id)
	}
	return nil
}
