package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/usaged/usaged/usage"
)

// The registry is small and read mostly at startup, so records are JSON.
// Every access goes through live, so that calls after Close fail instead of
// reaching a closed Pebble. Writes are refused once the store has failed,
// and puts below the disk reserve (see writable).

func (d *DB) put(key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := d.writable(int64(len(key) + len(b))); err != nil {
		return err
	}
	return d.live(func() error { return d.db.Set(key, b, pebbledb.Sync) })
}

func (d *DB) get(key []byte, v any) error {
	return d.live(func() error {
		b, closer, err := d.db.Get(key)
		if errors.Is(err, pebbledb.ErrNotFound) {
			return usage.ErrNotFound
		}
		if err != nil {
			return err
		}
		defer closer.Close()
		return json.Unmarshal(b, v)
	})
}

func scan[T any](d *DB, fam byte, keep func(*T) bool) ([]T, error) {
	var out []T
	err := d.live(func() error {
		it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{fam}, UpperBound: []byte{fam + 1}})
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			var v T
			if err := json.Unmarshal(it.Value(), &v); err != nil {
				it.Close()
				return err
			}
			if keep == nil || keep(&v) {
				out = append(out, v)
			}
		}
		return it.Close()
	})
	return out, err
}

func orgKey(id string) []byte    { return append([]byte{famOrg}, id...) }
func clientKey(id string) []byte { return append([]byte{famClient}, id...) }

// PutOrganization implements store.Registry.
func (d *DB) PutOrganization(_ context.Context, o usage.Organization) error {
	return d.put(orgKey(o.ID), o)
}

// Organization implements store.Registry.
func (d *DB) Organization(_ context.Context, id string) (usage.Organization, error) {
	var o usage.Organization
	err := d.get(orgKey(id), &o)
	return o, err
}

// Organizations implements store.Registry.
func (d *DB) Organizations(context.Context) ([]usage.Organization, error) {
	return scan[usage.Organization](d, famOrg, nil)
}

// PutClient implements store.Registry.
func (d *DB) PutClient(_ context.Context, c usage.Client) error {
	return d.put(clientKey(c.ID), c)
}

// Client implements store.Registry.
func (d *DB) Client(_ context.Context, id string) (usage.Client, error) {
	var c usage.Client
	err := d.get(clientKey(id), &c)
	return c, err
}

// Clients implements store.Registry.
func (d *DB) Clients(_ context.Context, orgID string) ([]usage.Client, error) {
	cs, err := scan(d, famClient, func(c *usage.Client) bool { return c.OrganizationID == orgID })
	slices.SortFunc(cs, func(a, b usage.Client) int { return strings.Compare(a.ID, b.ID) })
	return cs, err
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
	if err := d.health.err(); err != nil {
		return err
	}
	return d.live(func() error { return d.db.Delete(clientKey(id), pebbledb.Sync) })
}

// limitKey is 'i', the organization's length as a big-endian uint16, the
// organization, then the limit's ID: one organization's limits are one
// range, ordered by ID, whatever bytes the IDs hold.
func limitKey(orgID, id string) []byte {
	return append(limitPrefix(orgID), id...)
}

func limitPrefix(orgID string) []byte {
	k := binary.BigEndian.AppendUint16([]byte{famLimit}, uint16(len(orgID)))
	return append(k, orgID...)
}

// PutLimit implements store.Limits.
func (d *DB) PutLimit(_ context.Context, l usage.Limit) error {
	if len(l.OrganizationID) > math.MaxUint16 {
		return usage.Errorf(usage.KindInvalid, "organizationId", "organization id is longer than %d bytes", math.MaxUint16)
	}
	d.limitMu.Lock()
	defer d.limitMu.Unlock()
	return d.put(limitKey(l.OrganizationID, l.ID), l)
}

// UpdateLimit implements store.Limits: read, checked and written under
// limitMu, which every write of a limit holds.
func (d *DB) UpdateLimit(ctx context.Context, l usage.Limit, version int64) error {
	d.limitMu.Lock()
	defer d.limitMu.Unlock()
	stored, err := d.Limit(ctx, l.OrganizationID, l.ID)
	if err != nil {
		return err
	}
	if stored.Version != version {
		return usage.Errorf(usage.KindConflict, "version", "limit %s is at version %d, not %d: it changed since it was read", l.ID, stored.Version, version)
	}
	return d.put(limitKey(l.OrganizationID, l.ID), l)
}

// Limit implements store.Limits.
func (d *DB) Limit(_ context.Context, orgID, id string) (usage.Limit, error) {
	var l usage.Limit
	if len(orgID) > math.MaxUint16 {
		return l, usage.ErrNotFound
	}
	err := d.get(limitKey(orgID, id), &l)
	return l, err
}

// Limits implements store.Limits.
func (d *DB) Limits(_ context.Context, orgID string) ([]usage.Limit, error) {
	out := []usage.Limit{}
	if len(orgID) > math.MaxUint16 {
		return out, nil
	}
	lower := limitPrefix(orgID)
	err := d.live(func() error {
		it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			var l usage.Limit
			if err := json.Unmarshal(it.Value(), &l); err != nil {
				it.Close()
				return err
			}
			out = append(out, l)
		}
		return it.Close()
	})
	return out, err
}

// DeleteLimit implements store.Limits.
func (d *DB) DeleteLimit(ctx context.Context, orgID, id string) error {
	d.limitMu.Lock()
	defer d.limitMu.Unlock()
	if _, err := d.Limit(ctx, orgID, id); err != nil {
		return err
	}
	if err := d.health.err(); err != nil {
		return err
	}
	return d.live(func() error { return d.db.Delete(limitKey(orgID, id), pebbledb.Sync) })
}

// prefixEnd returns the least key after every key starting with p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
