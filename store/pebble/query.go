package pebble

import (
	"context"
	"slices"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/usaged/usaged/usage"
)

// idSet is a resolved filter on one dimension; nil means no filter.
type idSet map[uint32]struct{}

// plan is a query with its filters resolved to interned ids.
type plan struct {
	q                                        usage.Query
	org                                      uint32
	client, user, template, method, platform idSet
	group                                    [6]bool // by usage.Dimension
}

// sums are a query's groups as they add up: their counts, and their
// measures when the query wants them.
type sums struct {
	groups   map[groupKey]*cell
	measures bool           // whether the query wants measures
	scratch  usage.Measures // a value's measures, decoded
	limit    int            // the query's MaxRows
}

type groupKey struct {
	bucket                                   int64
	client, user, template, method, platform uint32
}

// Query implements store.EventQuerier. It reads the smallest counter family that
// holds every dimension the query groups or filters by: when that is at most
// the client, whole days come from the per-day rollup and the hours at either
// edge from the per-hour rollup; otherwise it scans the full per-hour family.
func (d *DB) Query(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	p, ok := d.resolve(q)
	if !ok {
		return []usage.Row{}, nil
	}
	groups := &sums{groups: make(map[groupKey]*cell), measures: q.WantsMeasures(), limit: q.MaxRows}
	s, e := hourOf(q.Interval.Start), hourOf(q.Interval.End)
	rollup := true
	for _, dim := range append(slices.Clone(q.GroupBy), q.Filter.Dimensions()...) {
		if dim != usage.DimClientID && dim != usage.DimOrganizationID {
			rollup = false
		}
	}
	var err error
	switch {
	case !rollup:
		err = d.scanFull(ctx, &p, s, e, groups)
	case q.Granularity == usage.GranularityHour || !q.UTC() || (s+23)/24 >= e/24:
		// The daily rollup's days are UTC ones.
		err = d.scanRollup(ctx, &p, famClientHour, s, e, groups)
	default:
		ds, de := (s+23)/24, e/24
		err = d.scanRollup(ctx, &p, famClientHour, s, ds*24, groups)
		if err == nil {
			err = d.scanRollup(ctx, &p, famClientDay, ds, de, groups)
		}
		if err == nil {
			err = d.scanRollup(ctx, &p, famClientHour, de*24, e, groups)
		}
	}
	if err != nil {
		return nil, err
	}
	return d.rows(&p, groups), nil
}

// resolve maps q's organization and filters to ids. It returns false when no
// event can match (an unknown organization, or a filter none of whose values
// was ever recorded).
func (d *DB) resolve(q usage.Query) (plan, bool) {
	d.dict.mu.RLock()
	defer d.dict.mu.RUnlock()
	p := plan{q: q}
	for _, g := range q.GroupBy {
		p.group[g] = true
	}
	var ok bool
	if p.org, ok = d.dict.lookup(kindOrg, q.OrganizationID); !ok {
		return p, false
	}
	set := func(kind byte, vals []string) (idSet, bool) {
		if len(vals) == 0 {
			return nil, true
		}
		s := idSet{}
		for _, v := range vals {
			if id, ok := d.dict.lookup(kind, v); ok {
				s[id] = struct{}{}
			}
		}
		return s, len(s) > 0
	}
	if p.client, ok = set(kindClient, q.Filter.ClientIDs); !ok {
		return p, false
	}
	if len(q.Filter.ClientNames) > 0 {
		byName := idSet{}
		for k, name := range d.dict.names {
			if k[0] == p.org && slices.Contains(q.Filter.ClientNames, name) {
				if _, in := p.client[k[1]]; p.client == nil || in {
					byName[k[1]] = struct{}{}
				}
			}
		}
		if len(byName) == 0 {
			return p, false
		}
		p.client = byName
	}
	for _, f := range []struct {
		dst  *idSet
		kind byte
		vals []string
	}{
		{&p.user, kindUser, q.Filter.UserIDs},
		{&p.template, kindTemplate, q.Filter.TemplateURIs},
		{&p.method, kindMethod, q.Filter.HTTPMethods},
		{&p.platform, kindPlatform, q.Filter.Platforms},
	} {
		if *f.dst, ok = set(f.kind, f.vals); !ok {
			return p, false
		}
	}
	return p, true
}

func (s idSet) has(id uint32) bool {
	if s == nil {
		return true
	}
	_, ok := s[id]
	return ok
}

// bucketer maps hours to the starts of q's buckets, caching the last
// answer because keys arrive in hour order.
type bucketer struct {
	q        *usage.Query
	lastHour uint32
	last     int64
	valid    bool
}

func (b *bucketer) bucket(hour uint32) int64 {
	if b.q.Granularity == usage.GranularityNone {
		return 0
	}
	if !b.valid || hour != b.lastHour {
		b.lastHour, b.valid = hour, true
		b.last = b.q.Bucket(time.Unix(int64(hour)*3600, 0)).Unix()
	}
	return b.last
}

// add adds value to group k. Unless the query wants measures, it reads the
// counts alone.
func (s *sums) add(k groupKey, value []byte) error {
	g := s.groups[k]
	if g == nil {
		if len(s.groups) >= s.limit {
			return usage.TooManyRows(s.limit)
		}
		g = &cell{}
		s.groups[k] = g
	}
	if !s.measures {
		_, err := addCounts(&g.c, value)
		return err
	}
	return addValue(&g.c, &g.m, &s.scratch, value)
}

func (d *DB) iter(fam byte, org, lo, hi uint32) (*pebbledb.Iterator, error) {
	return d.db.NewIter(&pebbledb.IterOptions{LowerBound: prefix(fam, org, lo), UpperBound: prefix(fam, org, hi)})
}

func (d *DB) scanFull(ctx context.Context, p *plan, lo, hi uint32, groups *sums) error {
	it, err := d.iter(famFull, p.org, lo, hi)
	if err != nil {
		return err
	}
	b := bucketer{q: &p.q}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n++; n&0xffff == 0 && ctx.Err() != nil {
			it.Close()
			return ctx.Err()
		}
		k, ok := decodeFull(it.Key())
		if !ok {
			it.Close()
			return errCorrupt
		}
		if !p.client.has(k.client) || !p.user.has(k.user) || !p.template.has(k.template) ||
			!p.method.has(k.method) || !p.platform.has(k.platform) {
			continue
		}
		g := groupKey{bucket: b.bucket(k.hour)}
		if p.group[usage.DimClientID] {
			g.client = k.client
		}
		if p.group[usage.DimUserID] {
			g.user = k.user
		}
		if p.group[usage.DimTemplateURI] {
			g.template = k.template
		}
		if p.group[usage.DimHTTPMethod] {
			g.method = k.method
		}
		if p.group[usage.DimPlatform] {
			g.platform = k.platform
		}
		if err := groups.add(g, it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// scanRollup scans a per-client family over buckets [lo, hi): hours for
// famClientHour, days for famClientDay.
func (d *DB) scanRollup(ctx context.Context, p *plan, fam byte, lo, hi uint32, groups *sums) error {
	if lo >= hi {
		return nil
	}
	it, err := d.iter(fam, p.org, lo, hi)
	if err != nil {
		return err
	}
	b := bucketer{q: &p.q}
	for it.First(); it.Valid(); it.Next() {
		if ctx.Err() != nil {
			it.Close()
			return ctx.Err()
		}
		k, ok := decodeRollup(it.Key())
		if !ok {
			it.Close()
			return errCorrupt
		}
		if !p.client.has(k.client) {
			continue
		}
		hour := k.bucket
		if fam == famClientDay {
			hour *= 24
		}
		g := groupKey{bucket: b.bucket(hour)}
		if p.group[usage.DimClientID] {
			g.client = k.client
		}
		if err := groups.add(g, it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// rows turns groups into sorted rows, mapping ids back to values.
func (d *DB) rows(p *plan, groups *sums) []usage.Row {
	d.dict.mu.RLock()
	defer d.dict.mu.RUnlock()
	rows := make([]usage.Row, 0, len(groups.groups))
	for k, g := range groups.groups {
		if g.c.IsZero() {
			continue
		}
		r := usage.Row{Counts: g.c}
		if groups.measures {
			r.Measures = &g.m
		}
		if p.q.Granularity != usage.GranularityNone {
			r.Date = time.Unix(k.bucket, 0).UTC()
		}
		if p.group[usage.DimOrganizationID] {
			r.OrganizationID = p.q.OrganizationID
		}
		if p.group[usage.DimClientID] {
			r.ClientID = d.dict.str(kindClient, k.client)
			r.ClientName = d.dict.names[[2]uint32{p.org, k.client}]
		}
		r.UserID = d.dict.str(kindUser, k.user)
		r.TemplateURI = d.dict.str(kindTemplate, k.template)
		r.HTTPMethod = d.dict.str(kindMethod, k.method)
		r.Platform = d.dict.str(kindPlatform, k.platform)
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b usage.Row) int { return usage.CompareRows(&a, &b) })
	return rows
}

// ClientNames implements store.EventQuerier from the dictionary's names, which
// hold every (organization, client) pair with an event. A name is recorded
// in memory just before its batch commits, so a client may show a moment
// before its first event is visible to Query. Clients of stores written
// before every first event recorded a name (see dict.setName) are missing
// until their next event if none of their events carried a name.
func (d *DB) ClientNames(ctx context.Context, orgID string) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	names := map[string]string{}
	err := d.live(func() error {
		d.dict.mu.RLock()
		defer d.dict.mu.RUnlock()
		org, ok := d.dict.lookup(kindOrg, orgID)
		if !ok {
			return nil
		}
		for k, name := range d.dict.names {
			if k[0] == org {
				names[d.dict.str(kindClient, k[1])] = name
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return names, nil
}
