package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

var _ store.Outbox = (*Store)(nil)

// The outbox is the metadata store's rather than the cluster usage store's:
// every node of a cluster shares this database, which has what an outbox
// needs and ClickHouse lacks: a row written once by its id whoever writes it
// (INSERT … ON CONFLICT DO NOTHING), and rows a node can lease for delivery
// without another node reading them meanwhile (FOR UPDATE SKIP LOCKED).
//
// Pending notifications are leased to the store that read them, for
// outboxLease: a node's delivery worker reads its own leased ones again
// (and renews the lease) on every pass, while another node's skips them
// until the lease ends, which is when a node that died while delivering
// hands its notifications on. A delivered notification is kept, done, for
// keepDone: appending it again leaves it done, so that a crossing found
// again (the cluster's counters rebuilt after Redis lost them) is not sent
// again; it is deleted after that, longer than any limit's window.
const (
	outboxLease = 2 * time.Minute
	keepDone    = 40 * 24 * time.Hour
)

// AppendNotifications implements store.Outbox. A notification whose id the
// outbox holds, pending or done, is left as it is.
func (s *Store) AppendNotifications(ctx context.Context, ns []usage.Notification) error {
	if len(ns) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, n := range ns {
		b.Queue(`INSERT INTO outbox (id, organization_id, type, at, payload) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
			n.ID, n.OrganizationID, n.Type, n.Time.UnixNano(), n.Payload)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
}

// PendingNotifications implements store.Outbox: the oldest pending
// notifications that no other node has leased, leased to this store.
func (s *Store) PendingNotifications(ctx context.Context, limit int) ([]usage.Notification, error) {
	var out []usage.Notification
	err := s.query(ctx, func(r pgx.Rows) error {
		var n usage.Notification
		var at int64
		if err := r.Scan(&n.ID, &n.OrganizationID, &n.Type, &at, &n.Payload); err != nil {
			return err
		}
		n.Time = time.Unix(0, at).UTC()
		out = append(out, n)
		return nil
	}, `WITH leased AS (
			SELECT id FROM outbox
			WHERE done_at IS NULL AND (leased_by IS NULL OR leased_by = $1 OR leased_until < now())
			ORDER BY at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
		UPDATE outbox o SET leased_by = $1, leased_until = now() + $3::interval
		FROM leased WHERE o.id = leased.id
		RETURNING o.id, o.organization_id, o.type, o.at, o.payload`,
		s.node, limit, outboxLease.String())
	if err != nil {
		return nil, err
	}
	sortNotifications(out)
	return out, nil
}

// MarkNotificationsDone implements store.Outbox, and deletes what was done
// longer than keepDone ago.
func (s *Store) MarkNotificationsDone(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE outbox SET done_at = now(), leased_by = NULL, leased_until = NULL WHERE id = ANY($1) AND done_at IS NULL`, ids); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM outbox WHERE done_at < now() - $1::interval`, keepDone.String())
		return err
	})
}

// sortNotifications orders ns by time, then id, as UPDATE … RETURNING
// does not.
func sortNotifications(ns []usage.Notification) {
	slices.SortFunc(ns, func(a, b usage.Notification) int { return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID)) })
}

// nodeID names a Store among the nodes sharing a database: the holder of
// the outbox leases it takes.
func nodeID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
