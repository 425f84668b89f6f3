package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

var (
	_ store.Webhooks = (*DB)(nil)
	_ store.Outbox   = (*DB)(nil)
)

// Webhook endpoints and deliveries are JSON records like the registry's.
// A delivery's key orders the endpoint's log by time, then id: the log
// reads newest first by iterating backwards. Pending notifications are
// kept twice in one batch: by (time, id) for the worker, which takes the
// oldest first, and by id, so that appending one again and marking one
// done find it without a scan.

func webhookKey(id string) []byte { return append([]byte{famWebhook}, id...) }

// deliveriesPrefix is the start of the deliveries of endpoint: its id ends
// at the 0x00 after it, so that the range never takes in another id's.
func deliveriesPrefix(endpoint string) []byte {
	return append(append([]byte{famDelivery}, endpoint...), 0)
}

func deliveriesEnd(endpoint string) []byte {
	return append(append([]byte{famDelivery}, endpoint...), 1)
}

func deliveryKey(endpoint string, d *usage.Delivery) []byte {
	k := binary.BigEndian.AppendUint64(deliveriesPrefix(endpoint), uint64(d.Time.UnixNano()))
	return append(k, d.ID...)
}

func outboxKey(n *usage.Notification) []byte {
	k := binary.BigEndian.AppendUint64([]byte{famOutbox}, uint64(n.Time.UnixNano()))
	return append(k, n.ID...)
}

func pendingKey(id string) []byte { return append([]byte{famPending}, id...) }

// A notification delivered is remembered for keepDone under its 'p' key,
// whose value is then doneMark and the big-endian Unix nanoseconds it was
// done at (a pending one's is its 'q' key): appended again, it stays done,
// so that a crossing found again (the limits' evaluator loading the
// windows at a start) is not sent again. keepDone outlasts the longest
// window, a month: a crossing is found again only while its window lasts.
const (
	doneMark = 0x00
	keepDone = 40 * 24 * time.Hour
	// sweepDoneEvery spaces the deletions of what was done longer than
	// keepDone ago.
	sweepDoneEvery = time.Hour
)

// checkHookID refuses ids the key layout cannot hold.
func checkHookID(field, id string) error {
	if id == "" || strings.IndexByte(id, 0) >= 0 {
		return usage.Errorf(usage.KindInvalid, field, "%s %q must not be empty nor hold a 0x00 byte", field, id)
	}
	return nil
}

// PutWebhook implements store.Webhooks.
func (d *DB) PutWebhook(_ context.Context, e usage.WebhookEndpoint) error {
	if err := checkHookID("id", e.ID); err != nil {
		return err
	}
	return d.put(webhookKey(e.ID), e)
}

// Webhook implements store.Webhooks.
func (d *DB) Webhook(_ context.Context, orgID, id string) (usage.WebhookEndpoint, error) {
	var e usage.WebhookEndpoint
	if err := d.get(webhookKey(id), &e); err != nil {
		return e, err
	}
	if e.OrganizationID != orgID {
		return usage.WebhookEndpoint{}, usage.ErrNotFound
	}
	return e, nil
}

// Webhooks implements store.Webhooks.
func (d *DB) Webhooks(_ context.Context, orgID string) ([]usage.WebhookEndpoint, error) {
	return scan(d, famWebhook, func(e *usage.WebhookEndpoint) bool { return e.OrganizationID == orgID })
}

// DeleteWebhook implements store.Webhooks: the endpoint and its log go in
// one batch.
func (d *DB) DeleteWebhook(ctx context.Context, orgID, id string) error {
	if _, err := d.Webhook(ctx, orgID, id); err != nil {
		return err
	}
	if err := d.health.err(); err != nil {
		return err
	}
	d.hookMu.Lock()
	defer d.hookMu.Unlock()
	return d.live(func() error {
		b := d.db.NewBatch()
		defer b.Close()
		if err := b.Delete(webhookKey(id), nil); err != nil {
			return err
		}
		if err := b.DeleteRange(deliveriesPrefix(id), deliveriesEnd(id), nil); err != nil {
			return err
		}
		return b.Commit(pebbledb.Sync)
	})
}

// AppendDelivery implements store.Webhooks. It counts the endpoint's log
// and deletes what is beyond store.MaxDeliveriesPerEndpoint in the same
// batch; hookMu keeps two appends from counting the same log.
func (d *DB) AppendDelivery(ctx context.Context, dl usage.Delivery) error {
	if _, err := d.Webhook(ctx, dl.OrganizationID, dl.EndpointID); err != nil {
		if usage.KindOf(err) == usage.KindNotFound {
			return nil
		}
		return err
	}
	if err := checkHookID("id", dl.ID); err != nil {
		return err
	}
	rec, err := json.Marshal(dl)
	if err != nil {
		return err
	}
	key := deliveryKey(dl.EndpointID, &dl)
	if err := d.writable(int64(len(key) + len(rec))); err != nil {
		return err
	}
	d.hookMu.Lock()
	defer d.hookMu.Unlock()
	return d.live(func() error {
		b := d.db.NewIndexedBatch()
		defer b.Close()
		if err := b.Set(key, rec, nil); err != nil {
			return err
		}
		// The log as it will be, newest first: what is past the bound goes.
		it, err := b.NewIter(&pebbledb.IterOptions{LowerBound: deliveriesPrefix(dl.EndpointID), UpperBound: deliveriesEnd(dl.EndpointID)})
		if err != nil {
			return err
		}
		var cut []byte
		n := 0
		for it.Last(); it.Valid(); it.Prev() {
			if n++; n > store.MaxDeliveriesPerEndpoint {
				cut = append(bytes.Clone(it.Key()), 0)
				break
			}
		}
		if err := it.Close(); err != nil {
			return err
		}
		if cut != nil {
			if err := b.DeleteRange(deliveriesPrefix(dl.EndpointID), cut, nil); err != nil {
				return err
			}
		}
		return b.Commit(pebbledb.Sync)
	})
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
	if _, err := d.Webhook(ctx, orgID, endpointID); err != nil {
		if usage.KindOf(err) == usage.KindNotFound {
			return nil, "", nil
		}
		return nil, "", err
	}
	var out []usage.Delivery
	next := ""
	err := d.live(func() error {
		upper := deliveriesEnd(endpointID)
		if after != "" {
			upper = deliveryKey(endpointID, &from)
		}
		it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: deliveriesPrefix(endpointID), UpperBound: upper})
		if err != nil {
			return err
		}
		for it.Last(); it.Valid(); it.Prev() {
			if len(out) == limit {
				next = store.DeliveryCursor(&out[len(out)-1])
				break
			}
			var dl usage.Delivery
			if err := json.Unmarshal(it.Value(), &dl); err != nil {
				it.Close()
				return err
			}
			out = append(out, dl)
		}
		return it.Close()
	})
	return out, next, err
}

// Delivery implements store.Webhooks. The log of one endpoint is bounded,
// so finding one by id is a scan of it.
func (d *DB) Delivery(ctx context.Context, orgID, endpointID, id string) (usage.Delivery, error) {
	ds, err := d.endpointDeliveries(ctx, orgID, endpointID, func(dl *usage.Delivery) bool { return dl.ID == id })
	if err != nil {
		return usage.Delivery{}, err
	}
	if len(ds) == 0 {
		return usage.Delivery{}, usage.ErrNotFound
	}
	return ds[0], nil
}

// NotificationDeliveries implements store.Webhooks.
func (d *DB) NotificationDeliveries(ctx context.Context, endpointID, notificationID string) ([]usage.Delivery, error) {
	return d.endpointDeliveries(ctx, "", endpointID, func(dl *usage.Delivery) bool { return dl.Notification.ID == notificationID })
}

// endpointDeliveries returns the deliveries of endpoint that keep accepts,
// oldest first; orgID, unless empty, must be the endpoint's organization.
func (d *DB) endpointDeliveries(ctx context.Context, orgID, endpoint string, keep func(*usage.Delivery) bool) ([]usage.Delivery, error) {
	if orgID != "" {
		if _, err := d.Webhook(ctx, orgID, endpoint); err != nil {
			return nil, err
		}
	}
	var out []usage.Delivery
	err := d.live(func() error {
		it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: deliveriesPrefix(endpoint), UpperBound: deliveriesEnd(endpoint)})
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			var dl usage.Delivery
			if err := json.Unmarshal(it.Value(), &dl); err != nil {
				it.Close()
				return err
			}
			if keep(&dl) {
				out = append(out, dl)
			}
		}
		return it.Close()
	})
	return out, err
}

// addNotifications adds to b the notifications of ns that are not pending
// in r (the DB, or a batch's view of it) nor earlier in ns, so that a
// usage commit can write the notifications its counts cause in its own
// batch. The caller serializes calls that may add the same ids.
func addNotifications(r pebbledb.Reader, b *pebbledb.Batch, ns []usage.Notification) error {
	seen := make(map[string]bool, len(ns))
	for i := range ns {
		n := &ns[i]
		if err := checkHookID("id", n.ID); err != nil {
			return err
		}
		if seen[n.ID] {
			continue
		}
		seen[n.ID] = true
		_, closer, err := r.Get(pendingKey(n.ID))
		if err == nil {
			closer.Close()
			continue
		}
		if !errors.Is(err, pebbledb.ErrNotFound) {
			return err
		}
		rec, err := json.Marshal(n)
		if err != nil {
			return err
		}
		ok := outboxKey(n)
		if err := b.Set(ok, rec, nil); err != nil {
			return err
		}
		if err := b.Set(pendingKey(n.ID), ok, nil); err != nil {
			return err
		}
	}
	return nil
}

// AppendNotifications implements store.Outbox: the notifications on their
// own, in one batch, under the append lock that usage commits hold.
func (d *DB) AppendNotifications(ctx context.Context, ns []usage.Notification) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.writable(int64(len(ns)) * 256); err != nil {
		return err
	}
	err := d.live(func() error {
		d.lock()
		defer d.mu.Unlock()
		if err := d.usable(); err != nil {
			return err
		}
		b := d.db.NewBatch()
		defer b.Close()
		if err := addNotifications(d.db, b, ns); err != nil {
			return err
		}
		return b.Commit(pebbledb.Sync)
	})
	if err == nil && len(ns) > 0 {
		d.tellOutboxed()
	}
	return err
}

// PendingNotifications implements store.Outbox.
func (d *DB) PendingNotifications(ctx context.Context, limit int) ([]usage.Notification, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []usage.Notification
	err := d.live(func() error {
		it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{famOutbox}, UpperBound: []byte{famOutbox + 1}})
		if err != nil {
			return err
		}
		for it.First(); it.Valid() && len(out) < limit; it.Next() {
			var n usage.Notification
			if err := json.Unmarshal(it.Value(), &n); err != nil {
				it.Close()
				return err
			}
			out = append(out, n)
		}
		return it.Close()
	})
	return out, err
}

// MarkNotificationsDone implements store.Outbox.
func (d *DB) MarkNotificationsDone(ctx context.Context, ids []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.health.err(); err != nil {
		return err
	}
	return d.live(func() error {
		d.lock()
		defer d.mu.Unlock()
		b := d.db.NewBatch()
		defer b.Close()
		now := time.Now()
		done := binary.BigEndian.AppendUint64([]byte{doneMark}, uint64(now.UnixNano()))
		for _, id := range ids {
			ok, closer, err := d.db.Get(pendingKey(id))
			if errors.Is(err, pebbledb.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if len(ok) == 0 || ok[0] != famOutbox {
				closer.Close()
				continue // done already
			}
			err = b.Delete(ok, nil)
			closer.Close()
			if err != nil {
				return err
			}
			if err := b.Set(pendingKey(id), done, nil); err != nil {
				return err
			}
		}
		if now.Sub(d.doneSweep) >= sweepDoneEvery {
			d.doneSweep = now
			if err := d.sweepDone(b, now.Add(-keepDone)); err != nil {
				return err
			}
		}
		return b.Commit(pebbledb.Sync)
	})
}

// sweepDone adds to b the deletion of every notification done before
// cutoff.
func (d *DB) sweepDone(b *pebbledb.Batch, cutoff time.Time) error {
	it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{famPending}, UpperBound: []byte{famPending + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v := it.Value()
		if len(v) == 9 && v[0] == doneMark && int64(binary.BigEndian.Uint64(v[1:])) < cutoff.UnixNano() {
			if err := b.Delete(it.Key(), nil); err != nil {
				it.Close()
				return err
			}
		}
	}
	return it.Close()
}
