package postgres

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"

	"github.com/usaged/usaged/usage"
)

// The registries: one table per kind, the record as JSON beside its key.

// putRecord runs sql, an upsert, with args followed by v as JSON.
func (s *Store) putRecord(ctx context.Context, sql string, v any, args ...any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return usage.Errorf(usage.KindInvalid, "", "the record cannot be stored: %v", err)
	}
	_, err = s.exec(ctx, sql, append(args, b)...)
	return err
}

// records returns the JSON records that sql selects, decoded.
func records[T any](ctx context.Context, s *Store, sql string, args ...any) ([]T, error) {
	var out []T
	err := s.query(ctx, func(rows pgx.Rows) error {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return err
		}
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	}, sql, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// record returns the one record sql selects, or usage.ErrNotFound.
func record[T any](ctx context.Context, s *Store, sql string, args ...any) (T, error) {
	got, err := records[T](ctx, s, sql, args...)
	var v T
	switch {
	case err != nil:
		return v, err
	case len(got) == 0:
		return v, usage.ErrNotFound
	}
	return got[0], nil
}

// PutOrganization implements store.Registry.
func (s *Store) PutOrganization(ctx context.Context, o usage.Organization) error {
	return s.putRecord(ctx, `INSERT INTO organizations (id, record) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record`, o, o.ID)
}

// Organization implements store.Registry.
func (s *Store) Organization(ctx context.Context, id string) (usage.Organization, error) {
	return record[usage.Organization](ctx, s, `SELECT record FROM organizations WHERE id = $1`, id)
}

// Organizations implements store.Registry.
func (s *Store) Organizations(ctx context.Context) ([]usage.Organization, error) {
	return records[usage.Organization](ctx, s, `SELECT record FROM organizations ORDER BY id`)
}

// PutClient implements store.Registry.
func (s *Store) PutClient(ctx context.Context, c usage.Client) error {
	return s.putRecord(ctx, `INSERT INTO clients (id, organization_id, record) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET organization_id = EXCLUDED.organization_id, record = EXCLUDED.record`, c, c.ID, c.OrganizationID)
}

// Client implements store.Registry.
func (s *Store) Client(ctx context.Context, id string) (usage.Client, error) {
	return record[usage.Client](ctx, s, `SELECT record FROM clients WHERE id = $1`, id)
}

// Clients implements store.Registry.
func (s *Store) Clients(ctx context.Context, orgID string) ([]usage.Client, error) {
	return records[usage.Client](ctx, s, `SELECT record FROM clients WHERE organization_id = $1 ORDER BY id`, orgID)
}

// DeleteClient implements store.Registry.
func (s *Store) DeleteClient(ctx context.Context, orgID, id string) error {
	return s.deleteOne(ctx, `DELETE FROM clients WHERE organization_id = $1 AND id = $2`, orgID, id)
}

// deleteOne runs sql, a DELETE, and reports usage.ErrNotFound when it
// deleted nothing.
func (s *Store) deleteOne(ctx context.Context, sql string, args ...any) error {
	tag, err := s.exec(ctx, sql, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return usage.ErrNotFound
	}
	return nil
}

// PutPartner implements store.ServiceRegistry.
func (s *Store) PutPartner(ctx context.Context, p usage.Partner) error {
	return s.putRecord(ctx, `INSERT INTO partners (guid, record) VALUES ($1, $2)
		ON CONFLICT (guid) DO UPDATE SET record = EXCLUDED.record`, p, p.GUID[:])
}

// Partners implements store.ServiceRegistry.
func (s *Store) Partners(ctx context.Context) ([]usage.Partner, error) {
	return records[usage.Partner](ctx, s, `SELECT record FROM partners`)
}

// PutReseller implements store.ServiceRegistry.
func (s *Store) PutReseller(ctx context.Context, r usage.Reseller) error {
	return s.putRecord(ctx, `INSERT INTO resellers (guid, record) VALUES ($1, $2)
		ON CONFLICT (guid) DO UPDATE SET record = EXCLUDED.record`, r, r.GUID[:])
}

// Resellers implements store.ServiceRegistry.
func (s *Store) Resellers(ctx context.Context) ([]usage.Reseller, error) {
	return records[usage.Reseller](ctx, s, `SELECT record FROM resellers`)
}

// PutCollection implements store.ServiceRegistry.
func (s *Store) PutCollection(ctx context.Context, c usage.Collection) error {
	return s.putRecord(ctx, `INSERT INTO collections (guid, record) VALUES ($1, $2)
		ON CONFLICT (guid) DO UPDATE SET record = EXCLUDED.record`, c, c.GUID[:])
}

// Collections implements store.ServiceRegistry.
func (s *Store) Collections(ctx context.Context) ([]usage.Collection, error) {
	return records[usage.Collection](ctx, s, `SELECT record FROM collections`)
}

// PutService implements store.ServiceRegistry.
func (s *Store) PutService(ctx context.Context, sv usage.Service) error {
	return s.putRecord(ctx, `INSERT INTO services (guid, record) VALUES ($1, $2)
		ON CONFLICT (guid) DO UPDATE SET record = EXCLUDED.record`, sv, sv.GUID[:])
}

// Services implements store.ServiceRegistry.
func (s *Store) Services(ctx context.Context) ([]usage.Service, error) {
	return records[usage.Service](ctx, s, `SELECT record FROM services`)
}

// PutAPIKey implements store.ServiceRegistry.
func (s *Store) PutAPIKey(ctx context.Context, k usage.APIKey) error {
	return s.putRecord(ctx, `INSERT INTO api_keys (digest, record) VALUES ($1, $2)
		ON CONFLICT (digest) DO UPDATE SET record = EXCLUDED.record`, k, k.Digest[:])
}

// APIKeys implements store.ServiceRegistry.
func (s *Store) APIKeys(ctx context.Context) ([]usage.APIKey, error) {
	return records[usage.APIKey](ctx, s, `SELECT record FROM api_keys`)
}

// DeleteAPIKey implements store.ServiceRegistry.
func (s *Store) DeleteAPIKey(ctx context.Context, digest [32]byte) error {
	return s.deleteOne(ctx, `DELETE FROM api_keys WHERE digest = $1`, digest[:])
}

// PutLimit implements store.Limits.
func (s *Store) PutLimit(ctx context.Context, l usage.Limit) error {
	return s.putRecord(ctx, `INSERT INTO limits (organization_id, id, record) VALUES ($1, $2, $3)
		ON CONFLICT (organization_id, id) DO UPDATE SET record = EXCLUDED.record`, l, l.OrganizationID, l.ID)
}

// UpdateLimit implements store.Limits: one UPDATE whose WHERE checks the
// version, so that the row's lock makes concurrent updates take turns and
// each sees the version the one before wrote.
func (s *Store) UpdateLimit(ctx context.Context, l usage.Limit, version int64) error {
	b, err := json.Marshal(l)
	if err != nil {
		return usage.Errorf(usage.KindInvalid, "", "the record cannot be stored: %v", err)
	}
	tag, err := s.exec(ctx, `UPDATE limits SET record = $4
		WHERE organization_id = $1 AND id = $2 AND (record->>'Version')::bigint = $3`, l.OrganizationID, l.ID, version, b)
	if err != nil || tag.RowsAffected() == 1 {
		return err
	}
	// Nothing updated: say why, from what is stored now.
	stored, err := s.Limit(ctx, l.OrganizationID, l.ID)
	if err != nil {
		return err
	}
	return usage.Errorf(usage.KindConflict, "version", "limit %s is at version %d, not %d: it changed since it was read", l.ID, stored.Version, version)
}

// Limit implements store.Limits.
func (s *Store) Limit(ctx context.Context, orgID, id string) (usage.Limit, error) {
	return record[usage.Limit](ctx, s, `SELECT record FROM limits WHERE organization_id = $1 AND id = $2`, orgID, id)
}

// Limits implements store.Limits.
// AllLimits returns every organization's limits, ordered by organization
// and id, in one query: what each node of a cluster reloads to evaluate
// them (see store/clickhouse, EvaluateLimits).
func (s *Store) AllLimits(ctx context.Context) ([]usage.Limit, error) {
	return records[usage.Limit](ctx, s, `SELECT record FROM limits ORDER BY organization_id, id`)
}

func (s *Store) Limits(ctx context.Context, orgID string) ([]usage.Limit, error) {
	ls, err := records[usage.Limit](ctx, s, `SELECT record FROM limits WHERE organization_id = $1 ORDER BY id`, orgID)
	if ls == nil && err == nil {
		ls = []usage.Limit{}
	}
	return ls, err
}

// DeleteLimit implements store.Limits.
func (s *Store) DeleteLimit(ctx context.Context, orgID, id string) error {
	return s.deleteOne(ctx, `DELETE FROM limits WHERE organization_id = $1 AND id = $2`, orgID, id)
}
