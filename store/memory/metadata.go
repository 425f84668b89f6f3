package memory

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/usaged/usaged/usage"
)

// Registry record kinds.
const (
	regPartner byte = iota + 1
	regReseller
	regCollection
	regService
	regAPIKey
)

func guidKey(kind byte, g usage.GUID) regKey {
	k := regKey{kind: kind}
	copy(k.id[:], g[:])
	return k
}

func ofKind(kind byte) func(regKey) bool { return func(k regKey) bool { return k.kind == kind } }

// PutOrganization implements store.Registry.
func (d *DB) PutOrganization(ctx context.Context, o usage.Organization) error {
	return put(ctx, d, d.orgs, o.ID, o)
}

// Organization implements store.Registry.
func (d *DB) Organization(ctx context.Context, id string) (usage.Organization, error) {
	return get[string, usage.Organization](ctx, d, d.orgs, id)
}

// Organizations implements store.Registry.
func (d *DB) Organizations(ctx context.Context) ([]usage.Organization, error) {
	orgs, err := list[string, usage.Organization](ctx, d, d.orgs, func(string) bool { return true })
	slices.SortFunc(orgs, func(a, b usage.Organization) int { return strings.Compare(a.ID, b.ID) })
	return orgs, err
}

// PutClient implements store.Registry.
func (d *DB) PutClient(ctx context.Context, c usage.Client) error {
	return put(ctx, d, d.clients, c.ID, c)
}

// Client implements store.Registry.
func (d *DB) Client(ctx context.Context, id string) (usage.Client, error) {
	return get[string, usage.Client](ctx, d, d.clients, id)
}

// Clients implements store.Registry.
func (d *DB) Clients(ctx context.Context, orgID string) ([]usage.Client, error) {
	all, err := list[string, usage.Client](ctx, d, d.clients, func(string) bool { return true })
	all = slices.DeleteFunc(all, func(c usage.Client) bool { return c.OrganizationID != orgID })
	slices.SortFunc(all, func(a, b usage.Client) int { return strings.Compare(a.ID, b.ID) })
	return all, err
}

// DeleteClient implements store.Registry.
func (d *DB) DeleteClient(ctx context.Context, orgID, id string) error {
	c, err := d.Client(ctx, id)
	if err != nil {
		return err
	}
	if c.OrganizationID != orgID {
		return usage.ErrNotFound
	}
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	delete(d.clients, id)
	return nil
}

// PutPartner implements store.ServiceRegistry.
func (d *DB) PutPartner(ctx context.Context, p usage.Partner) error {
	return put(ctx, d, d.registry, guidKey(regPartner, p.GUID), p)
}

// Partners implements store.ServiceRegistry.
func (d *DB) Partners(ctx context.Context) ([]usage.Partner, error) {
	return list[regKey, usage.Partner](ctx, d, d.registry, ofKind(regPartner))
}

// PutReseller implements store.ServiceRegistry.
func (d *DB) PutReseller(ctx context.Context, r usage.Reseller) error {
	return put(ctx, d, d.registry, guidKey(regReseller, r.GUID), r)
}

// Resellers implements store.ServiceRegistry.
func (d *DB) Resellers(ctx context.Context) ([]usage.Reseller, error) {
	return list[regKey, usage.Reseller](ctx, d, d.registry, ofKind(regReseller))
}

// PutCollection implements store.ServiceRegistry.
func (d *DB) PutCollection(ctx context.Context, c usage.Collection) error {
	return put(ctx, d, d.registry, guidKey(regCollection, c.GUID), c)
}

// Collections implements store.ServiceRegistry.
func (d *DB) Collections(ctx context.Context) ([]usage.Collection, error) {
	return list[regKey, usage.Collection](ctx, d, d.registry, ofKind(regCollection))
}

// PutService implements store.ServiceRegistry.
func (d *DB) PutService(ctx context.Context, s usage.Service) error {
	return put(ctx, d, d.registry, guidKey(regService, s.GUID), s)
}

// Services implements store.ServiceRegistry.
func (d *DB) Services(ctx context.Context) ([]usage.Service, error) {
	return list[regKey, usage.Service](ctx, d, d.registry, ofKind(regService))
}

// PutAPIKey implements store.ServiceRegistry.
func (d *DB) PutAPIKey(ctx context.Context, k usage.APIKey) error {
	return put(ctx, d, d.registry, regKey{regAPIKey, k.Digest}, k)
}

// APIKeys implements store.ServiceRegistry.
func (d *DB) APIKeys(ctx context.Context) ([]usage.APIKey, error) {
	return list[regKey, usage.APIKey](ctx, d, d.registry, ofKind(regAPIKey))
}

// DeleteAPIKey implements store.ServiceRegistry.
func (d *DB) DeleteAPIKey(ctx context.Context, digest [32]byte) error {
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	k := regKey{regAPIKey, digest}
	if _, ok := d.registry[k]; !ok {
		return usage.ErrNotFound
	}
	delete(d.registry, k)
	return nil
}

// cloneExecution returns e as the store keeps it: sharing nothing with the
// caller, times in UTC, without Error.Err.
func cloneExecution(e usage.Execution) usage.Execution {
	if e.Error != nil {
		ee := *e.Error
		ee.Err = nil
		e.Error = &ee
	}
	q := &e.Query
	q.GroupBy, q.Metrics = slices.Clone(q.GroupBy), slices.Clone(q.Metrics)
	f := &q.Filter
	for _, s := range []*[]string{&f.ClientIDs, &f.ClientNames, &f.UserIDs, &f.TemplateURIs, &f.HTTPMethods, &f.Platforms} {
		*s = slices.Clone(*s)
	}
	e.Sort = slices.Clone(e.Sort)
	for _, t := range []*time.Time{&e.Created, &e.Finished, &e.Expires, &q.Interval.Start, &q.Interval.End} {
		*t = t.UTC()
	}
	return e
}

// PutExecution implements store.Executions.
func (d *DB) PutExecution(ctx context.Context, e usage.Execution) error {
	e = cloneExecution(e)
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	d.execs[e.ID] = e
	return nil
}

// FinishExecution implements store.Executions.
func (d *DB) FinishExecution(ctx context.Context, e usage.Execution, rows []usage.Row) error {
	if e.RowCount != len(rows) {
		return usage.Errorf(usage.KindInvalid, "rowCount", "execution %s has RowCount %d but %d rows", e.ID, e.RowCount, len(rows))
	}
	e = cloneExecution(e)
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	d.execs[e.ID] = e
	d.rows[e.ID] = slices.Clone(rows)
	return nil
}

// Execution implements store.Executions.
func (d *DB) Execution(ctx context.Context, id string) (usage.Execution, error) {
	if err := d.lock(ctx); err != nil {
		return usage.Execution{}, err
	}
	defer d.mu.Unlock()
	e, ok := d.execs[id]
	if !ok {
		return usage.Execution{}, usage.ErrNotFound
	}
	return cloneExecution(e), nil
}

// ExecutionRows implements store.Executions.
func (d *DB) ExecutionRows(ctx context.Context, id string, offset, limit int) ([]usage.Row, error) {
	if offset < 0 || limit < 0 {
		return nil, usage.Errorf(usage.KindInvalid, "", "offset and limit must not be negative: got %d and %d", offset, limit)
	}
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	if _, ok := d.execs[id]; !ok {
		return nil, usage.ErrNotFound
	}
	rows := d.rows[id]
	offset = min(offset, len(rows))
	return slices.Clone(rows[offset : offset+min(limit, len(rows)-offset)]), nil
}

// ExecutionsBy implements store.Executions. fn runs without the store's
// lock, so it may call the store.
func (d *DB) ExecutionsBy(ctx context.Context, fn func(usage.Execution) bool) error {
	if err := d.lock(ctx); err != nil {
		return err
	}
	all := make([]usage.Execution, 0, len(d.execs))
	for _, e := range d.execs {
		all = append(all, cloneExecution(e))
	}
	d.mu.Unlock()
	for _, e := range all {
		if !fn(e) {
			break
		}
	}
	return nil
}

// DeleteExecution implements store.Executions.
func (d *DB) DeleteExecution(ctx context.Context, id string) error {
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	delete(d.execs, id)
	delete(d.rows, id)
	return nil
}

// PutLimit implements store.Limits.
func (d *DB) PutLimit(ctx context.Context, l usage.Limit) error {
	return put(ctx, d, d.limits, orgKey{l.OrganizationID, l.ID}, l)
}

// UpdateLimit implements store.Limits: checked and replaced under mu.
func (d *DB) UpdateLimit(ctx context.Context, l usage.Limit, version int64) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	k := orgKey{l.OrganizationID, l.ID}
	old, ok := d.limits[k]
	if !ok {
		return usage.ErrNotFound
	}
	var stored usage.Limit
	if err := json.Unmarshal(old, &stored); err != nil {
		return err
	}
	if stored.Version != version {
		return usage.Errorf(usage.KindConflict, "version", "limit %s is at version %d, not %d: it changed since it was read", l.ID, stored.Version, version)
	}
	d.limits[k] = b
	return nil
}

// Limit implements store.Limits.
func (d *DB) Limit(ctx context.Context, orgID, id string) (usage.Limit, error) {
	return get[orgKey, usage.Limit](ctx, d, d.limits, orgKey{orgID, id})
}

// Limits implements store.Limits.
func (d *DB) Limits(ctx context.Context, orgID string) ([]usage.Limit, error) {
	ls, err := list[orgKey, usage.Limit](ctx, d, d.limits, func(k orgKey) bool { return k.org == orgID })
	slices.SortFunc(ls, func(a, b usage.Limit) int { return strings.Compare(a.ID, b.ID) })
	return ls, err
}

// DeleteLimit implements store.Limits.
func (d *DB) DeleteLimit(ctx context.Context, orgID, id string) error {
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	k := orgKey{orgID, id}
	if _, ok := d.limits[k]; !ok {
		return usage.ErrNotFound
	}
	delete(d.limits, k)
	return nil
}
