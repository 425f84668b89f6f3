package pebble

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/usaged/usaged/usage"
)

// ExportVisitor receives what Export reads from a store, family by family,
// in the order of its fields. A nil function skips its family; an error
// from one stops Export, which returns it.
type ExportVisitor struct {
	// Groups receives every hourly group with its counts: Date is the UTC
	// hour, OrganizationID and the dimensions are set, ClientName is empty.
	// An organization's groups come together, in ascending hours.
	Groups func(usage.Row) error
	// ClientDays receives the per client, per UTC day counts the store
	// keeps beside the groups (a rollup written with them, so a second
	// reading of the same events): Date is the day, OrganizationID and
	// ClientID are set.
	ClientDays func(usage.Row) error
	// ClientNames receives the latest name of every client of every
	// organization ("" when its events carried none), ordered by
	// organization then client.
	ClientNames func(orgID, clientID, name string) error
	// Dedupe receives every dedupe record, of events and of activity.
	Dedupe func(DedupeRecord) error

	// The activity of services is kept as four families derived from the
	// accepted events, not as the events: together they answer the
	// service-usage reports (store.Reports) over ranges of whole UTC days.

	// ServiceDays receives, for every service and UTC day with activity,
	// the sum of the service counters of the day's accepted activity
	// (usage.Activity.Tally), ordered by service then day.
	ServiceDays func(service usage.GUID, day time.Time, t usage.ServiceTally) error
	// UserDays receives, for every service, user and UTC day with
	// activity, the sum of the user's tallies of the day's accepted
	// activity: counts summed, times the latest, Named whether any of it
	// named the user. Ordered by service, user, then day.
	UserDays func(service usage.GUID, day time.Time, t usage.UserTally) error
	// Gauges receives every accepted gauge report (kind
	// usage.ActivityUsers or usage.ActivityStorage, with its ID, Time and
	// value), ordered by service, kind, time and ID.
	Gauges func(service usage.GUID, a usage.Activity) error
	// UserEvents receives every accepted user event (kind
	// usage.ActivityUser, with its ID, Time, User and account fields),
	// ordered by service, user, time and ID. What it counts for its users
	// is in UserDays; it is kept for the accounts (usage.UserUsage.ApplyAccount).
	UserEvents func(service usage.GUID, a usage.Activity) error
}

// DedupeRecord is the dedupe record of one event id: the id itself is not
// kept, only its hash keyed by the store's seed (see Seed).
type DedupeRecord struct {
	// OrganizationID is the event's organization; empty for the record of
	// an activity event, whose scope is Service.
	OrganizationID string
	Service        usage.GUID
	// Hash is the first 12 bytes of xxh3.HashString128Seed(id, Seed()): Hi
	// big-endian, then the low 32 bits of Lo big-endian.
	Hash [hashLen]byte
	// Hour is the UTC hour of the event's time.
	Hour time.Time
}

// Seed returns the seed that keys the hashes of the store's dedupe records,
// so that another store can recognise the same event ids.
func (d *DB) Seed() uint64 { return d.seed }

// Export reads the store's usage through v (see ExportVisitor). It is meant
// for a store nothing writes to: each family is read consistently, but an
// Append between two families may show in one and not the other.
func (d *DB) Export(ctx context.Context, v ExportVisitor) error {
	return d.live(func() error {
		strs := d.dictSnapshot()
		str := func(kind byte, id uint32) string {
			if int(id) < len(strs[kind]) {
				return strs[kind][id]
			}
			return ""
		}
		if v.Groups != nil {
			err := d.scanFamily(ctx, famFull, func(k, val []byte) error {
				fk, ok := decodeFull(k)
				if !ok {
					return fmt.Errorf("pebble store: corrupt group key %x", k)
				}
				r := usage.Row{
					Date:           time.Unix(int64(fk.hour)*3600, 0).UTC(),
					OrganizationID: str(kindOrg, fk.org),
					ClientID:       str(kindClient, fk.client),
					UserID:         str(kindUser, fk.user),
					TemplateURI:    str(kindTemplate, fk.template),
					HTTPMethod:     str(kindMethod, fk.method),
					Platform:       str(kindPlatform, fk.platform),
				}
				if _, err := addCounts(&r.Counts, val); err != nil {
					return err
				}
				return v.Groups(r)
			})
			if err != nil {
				return err
			}
		}
		if v.ClientDays != nil {
			err := d.scanFamily(ctx, famClientDay, func(k, val []byte) error {
				rk, ok := decodeRollup(k)
				if !ok {
					return fmt.Errorf("pebble store: corrupt client day key %x", k)
				}
				r := usage.Row{
					Date:           time.Unix(int64(rk.bucket)*86400, 0).UTC(),
					OrganizationID: str(kindOrg, rk.org),
					ClientID:       str(kindClient, rk.client),
				}
				if _, err := addCounts(&r.Counts, val); err != nil {
					return err
				}
				return v.ClientDays(r)
			})
			if err != nil {
				return err
			}
		}
		if v.ClientNames != nil {
			if err := d.exportNames(str, v.ClientNames); err != nil {
				return err
			}
		}
		if v.Dedupe != nil {
			// The records still in memory are written as a run first, so
			// that the 'd' keys hold them all.
			if err := d.writeRun(true); err != nil {
				return err
			}
			err := d.scanFamily(ctx, famDedupe, func(k, val []byte) error {
				id, ok := decodeDedupe(k)
				if !ok || len(val) != 1 {
					return fmt.Errorf("pebble store: corrupt dedupe record %x", k)
				}
				day := binary.BigEndian.Uint16(k[5:])
				r := DedupeRecord{Hash: id.hash, Hour: time.Unix((int64(day)*24+int64(val[0]))*3600, 0).UTC()}
				scope := str(kindOrg, id.org)
				if g, ok := strings.CutPrefix(scope, serviceScopePrefix); ok {
					service, err := usage.ParseGUID(g)
					if err != nil {
						return fmt.Errorf("pebble store: dedupe record %x: scope %q: %w", k, scope, err)
					}
					r.Service = service
				} else {
					r.OrganizationID = scope
				}
				return v.Dedupe(r)
			})
			if err != nil {
				return err
			}
		}
		return d.exportActivity(ctx, v)
	})
}

// exportActivity reads the activity families through v.
func (d *DB) exportActivity(ctx context.Context, v ExportVisitor) error {
	service := func(k []byte) (g usage.GUID) { copy(g[:], k[1:17]); return g }
	day := func(k []byte) time.Time {
		return time.Unix(int64(binary.BigEndian.Uint32(k[len(k)-4:]))*86400, 0).UTC()
	}
	if v.ServiceDays != nil {
		err := d.scanFamily(ctx, famServiceDay, func(k, val []byte) error {
			var dv dayVec
			if len(k) != 1+16+4 || decodeVec(val, dv[:]) != nil {
				return fmt.Errorf("pebble store: corrupt service day %x", k)
			}
			return v.ServiceDays(service(k), day(k), dv.tally())
		})
		if err != nil {
			return err
		}
	}
	if v.UserDays != nil {
		err := d.scanFamily(ctx, famUserDay, func(k, val []byte) error {
			var uv userVec
			if len(k) != 1+16+16+4 || decodeVec(val, uv[:]) != nil {
				return fmt.Errorf("pebble store: corrupt user day %x", k)
			}
			t := uv.tally()
			copy(t.User[:], k[17:33])
			t.Named = uv[uNamed] > 0
			return v.UserDays(service(k), day(k), t)
		})
		if err != nil {
			return err
		}
	}
	if v.Gauges != nil {
		err := d.scanFamily(ctx, famGauge, func(k, val []byte) error {
			a, err := gaugeReport(k, val)
			if err != nil {
				return fmt.Errorf("pebble store: corrupt gauge report %x: %w", k, err)
			}
			return v.Gauges(service(k), a)
		})
		if err != nil {
			return err
		}
	}
	if v.UserEvents != nil {
		err := d.scanFamily(ctx, famUserEvent, func(k, val []byte) error {
			a, err := userEvent(k, val)
			if err != nil {
				return fmt.Errorf("pebble store: corrupt user event %x: %w", k, err)
			}
			return v.UserEvents(service(k), a)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// HasActivity reports whether the store holds any service activity: the
// counters, gauges and user events of the service-usage reports.
func (d *DB) HasActivity(ctx context.Context) (bool, error) {
	found := false
	err := d.live(func() error {
		for _, fam := range []byte{famServiceDay, famGauge, famUserEvent, famUserDay} {
			it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{fam}, UpperBound: []byte{fam + 1}})
			if err != nil {
				return err
			}
			found = it.First()
			if err := it.Close(); err != nil || found {
				return err
			}
		}
		return ctx.Err()
	})
	return found, err
}

// dictSnapshot returns the dictionary's strings as they are now. Entries
// are only ever appended, so the slices' current lengths are a consistent
// view.
func (d *DB) dictSnapshot() [numKinds][]string {
	d.dict.mu.RLock()
	defer d.dict.mu.RUnlock()
	return d.dict.strs
}

// scanFamily calls fn with every key and value of family fam, in key order.
func (d *DB) scanFamily(ctx context.Context, fam byte, fn func(k, v []byte) error) error {
	it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{fam}, UpperBound: []byte{fam + 1}})
	if err != nil {
		return err
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				it.Close()
				return err
			}
		}
		if err := fn(bytes.Clone(it.Key()), it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// exportNames calls fn with every client name, ordered by organization and
// client.
func (d *DB) exportNames(str func(byte, uint32) string, fn func(orgID, clientID, name string) error) error {
	type name struct{ org, client, name string }
	d.dict.mu.RLock()
	names := make([]name, 0, len(d.dict.names))
	for k, n := range d.dict.names {
		names = append(names, name{str(kindOrg, k[0]), str(kindClient, k[1]), n})
	}
	d.dict.mu.RUnlock()
	slices.SortFunc(names, func(a, b name) int { return cmp.Or(strings.Compare(a.org, b.org), strings.Compare(a.client, b.client)) })
	for _, n := range names {
		if err := fn(n.org, n.client, n.name); err != nil {
			return err
		}
	}
	return nil
}
