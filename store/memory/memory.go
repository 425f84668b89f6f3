// Package memory is an in-memory store backend: maps under one mutex, both
// store.Usage and store.Metadata, nothing persisted. It serves tests, demos
// and as the plainest reading of the store contracts; activity counts with
// the rules of package usage, as every backend does. It keeps every accepted
// event besides its counts, bounded by nothing but memory, and lists them as
// a store.EventLister.
//
// Its dedupe is that of the embedded backend (one call at a time, each call
// atomic), keeping the latest event time of each key and comparing times
// exactly. A key is kept until ExpireDedupe forgets it.
package memory

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

var (
	_ store.Usage         = (*DB)(nil)
	_ store.Metadata      = (*DB)(nil)
	_ store.DedupeExpirer = (*DB)(nil)
	_ store.EventLister   = (*DB)(nil)
	_ store.OutboxWatcher = (*DB)(nil)
)

var errClosed = errors.New("memory store: closed")

// DB is an in-memory store. Its zero value is not usable: call New.
type DB struct {
	mu     sync.Mutex
	closed bool

	// Usage.
	eventKeys map[orgKey]time.Time            // the latest event time recorded with each key
	counts    map[string]map[hourGroup]*cell  // by organization
	names     map[orgKey]string               // (organization, client) → the latest client name
	journal   map[string][]usage.Event        // accepted events by organization, in listing order
	actKeys   map[svcKey]time.Time            // the latest activity time recorded with each key
	activity  map[usage.GUID][]usage.Activity // accepted activity by service, in no order

	// Metadata, kept encoded as the embedded backend keeps it, so that
	// callers share nothing with the store.
	orgs     map[string][]byte
	clients  map[string][]byte // by client ID, unique across organizations
	registry map[regKey][]byte
	limits   map[orgKey][]byte
	execs    map[string]usage.Execution
	rows     map[string][]usage.Row

	webhooks webhookState // see webhooks.go
	outboxed func()       // see WatchOutbox
}

type orgKey struct{ org, id string }

type svcKey struct {
	service usage.GUID
	id      string
}

// cell is what is kept for a group: its counts and measures.
type cell struct {
	c usage.Counts
	m usage.Measures
}

// hourGroup is the group an API event counts in.
type hourGroup struct {
	hour                                     int64 // Unix hours
	client, user, template, method, platform string
}

// regKey names a record of the service registry: its kind and its GUID or
// digest.
type regKey struct {
	kind byte
	id   [32]byte
}

// New returns an empty store.
func New() *DB {
	return &DB{
		eventKeys: map[orgKey]time.Time{},
		counts:    map[string]map[hourGroup]*cell{},
		names:     map[orgKey]string{},
		journal:   map[string][]usage.Event{},
		actKeys:   map[svcKey]time.Time{},
		activity:  map[usage.GUID][]usage.Activity{},
		orgs:      map[string][]byte{},
		clients:   map[string][]byte{},
		registry:  map[regKey][]byte{},
		limits:    map[orgKey][]byte{},
		execs:     map[string]usage.Execution{},
		rows:      map[string][]usage.Row{},
	}
}

// Close implements store.Usage and store.Metadata: the data is dropped.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	d.closed = true
	return nil
}

// lock takes the mutex unless the store is closed or ctx is done; the
// caller unlocks when lock returns nil.
func (d *DB) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errClosed
	}
	return nil
}

// duplicate reports whether a key whose latest recorded event time is
// recorded (ok when there is one) is a duplicate in a window from from.
func duplicate(recorded time.Time, ok bool, from time.Time) bool {
	return ok && !recorded.Before(from)
}

// Append implements store.EventAppender.
func (d *DB) Append(ctx context.Context, events []usage.Event, dedupeFrom time.Time) ([]usage.Outcome, error) {
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	outs := make([]usage.Outcome, len(events))
	inCall := make(map[orgKey]bool, len(events))
	for i := range events {
		ev := &events[i]
		k := orgKey{ev.OrganizationID, ev.ID}
		recorded, ok := d.eventKeys[k]
		if inCall[k] || duplicate(recorded, ok, dedupeFrom) {
			outs[i] = usage.Duplicate
			continue
		}
		inCall[k] = true
		if !ok || ev.Time.After(recorded) {
			d.eventKeys[k] = ev.Time
		}
		groups := d.counts[ev.OrganizationID]
		if groups == nil {
			groups = map[hourGroup]*cell{}
			d.counts[ev.OrganizationID] = groups
		}
		g := hourGroup{ev.Time.Unix() / 3600, ev.ClientID, ev.UserID, ev.TemplateURI, ev.HTTPMethod, ev.Platform}
		c := groups[g]
		if c == nil {
			c = &cell{}
			groups[g] = c
		}
		c.c.Add(usage.CountsFor(ev.Status))
		c.m.AddEvent(ev)
		d.names[orgKey{ev.OrganizationID, ev.ClientID}] = ev.ClientName
		d.record(*ev)
	}
	return outs, nil
}

// ExpireDedupe implements store.DedupeExpirer.
func (d *DB) ExpireDedupe(ctx context.Context, before time.Time) error {
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	for k, t := range d.eventKeys {
		if t.Before(before) {
			delete(d.eventKeys, k)
		}
	}
	for k, t := range d.actKeys {
		if t.Before(before) {
			delete(d.actKeys, k)
		}
	}
	return nil
}

// Query implements store.EventQuerier.
func (d *DB) Query(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	f := &q.Filter
	measures := q.WantsMeasures()
	sums := map[usage.Row]*cell{}
	for g, c := range d.counts[q.OrganizationID] {
		at := time.Unix(g.hour*3600, 0).UTC()
		name := d.names[orgKey{q.OrganizationID, g.client}]
		if !q.Interval.Contains(at) || !in(f.ClientIDs, g.client) || !in(f.ClientNames, name) || !in(f.UserIDs, g.user) ||
			!in(f.TemplateURIs, g.template) || !in(f.HTTPMethods, g.method) || !in(f.Platforms, g.platform) {
			continue
		}
		var row usage.Row
		if q.Granularity != usage.GranularityNone {
			row.Date = q.Bucket(at)
		}
		for _, dim := range q.GroupBy {
			switch dim {
			case usage.DimClientID:
				row.ClientID, row.ClientName = g.client, name
			case usage.DimOrganizationID:
				row.OrganizationID = q.OrganizationID
			case usage.DimUserID:
				row.UserID = g.user
			case usage.DimTemplateURI:
				row.TemplateURI = g.template
			case usage.DimHTTPMethod:
				row.HTTPMethod = g.method
			case usage.DimPlatform:
				row.Platform = g.platform
			}
		}
		sum := sums[row]
		if sum == nil {
			if len(sums) >= q.MaxRows {
				return nil, usage.TooManyRows(q.MaxRows)
			}
			sum = &cell{}
			sums[row] = sum
		}
		sum.c.Add(c.c)
		if measures {
			sum.m.Merge(&c.m)
		}
	}
	rows := make([]usage.Row, 0, len(sums))
	for row, sum := range sums {
		row.Counts = sum.c
		if measures {
			row.Measures = &sum.m
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b usage.Row) int { return usage.CompareRows(&a, &b) })
	return rows, nil
}

// ClientNames implements store.EventQuerier.
func (d *DB) ClientNames(ctx context.Context, orgID string) (map[string]string, error) {
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	names := map[string]string{}
	for k, name := range d.names {
		if k.org == orgID {
			names[k.id] = name
		}
	}
	return names, nil
}

// AppendActivity implements store.ActivityAppender. It keeps the accepted
// events; the reports count them when asked.
func (d *DB) AppendActivity(ctx context.Context, service usage.GUID, events []usage.Activity, dedupeFrom time.Time) ([]usage.Outcome, error) {
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	outs := make([]usage.Outcome, len(events))
	inCall := make(map[string]bool, len(events))
	for i, a := range events {
		k := svcKey{service, a.ID}
		recorded, ok := d.actKeys[k]
		if inCall[a.ID] || duplicate(recorded, ok, dedupeFrom) {
			outs[i] = usage.Duplicate
			continue
		}
		inCall[a.ID] = true
		if !ok || a.Time.After(recorded) {
			d.actKeys[k] = a.Time
		}
		a.Recipients = slices.Clone(a.Recipients)
		d.activity[service] = append(d.activity[service], a)
	}
	return outs, nil
}

// ServiceSeries implements store.Reports, one ServiceTotals a period.
func (d *DB) ServiceSeries(ctx context.Context, service usage.GUID, from, to time.Time, step usage.PeriodType) ([]usage.ServiceTotals, error) {
	periods, err := usage.Periods(step, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]usage.ServiceTotals, len(periods))
	for i, p := range periods {
		if out[i], err = d.ServiceTotals(ctx, service, p.Start, p.End()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ServiceTotals implements store.Reports.
func (d *DB) ServiceTotals(ctx context.Context, service usage.GUID, from, to time.Time) (usage.ServiceTotals, error) {
	var tot usage.ServiceTotals
	if err := d.lock(ctx); err != nil {
		return tot, err
	}
	defer d.mu.Unlock()
	var (
		gauges  = map[usage.ActivityKind]*usage.Activity{}
		tallies []usage.UserTally
	)
	evs := d.activity[service]
	for i := range evs {
		a := &evs[i]
		if !a.Time.Before(to) {
			continue
		}
		if g, ok := gauges[a.Kind]; a.Gauge() && (!ok || a.Supersedes(g)) {
			gauges[a.Kind] = a
		}
		if !a.Time.Before(from) {
			var st usage.ServiceTally
			tallies, st = a.Tally(tallies[:0])
			tot.AddTally(st)
		}
	}
	for _, a := range gauges {
		tot.ApplyGauge(a)
	}
	return tot, nil
}

// ServiceUsers implements store.Reports.
func (d *DB) ServiceUsers(ctx context.Context, service usage.GUID, from, to time.Time, only usage.GUID) ([]usage.UserUsage, error) {
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	evs := slices.Clone(d.activity[service])
	d.mu.Unlock()

	// Accounts fold in (Time, ID) order.
	slices.SortFunc(evs, func(a, b usage.Activity) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID))
	})
	users := map[usage.GUID]*usage.UserUsage{}
	named := map[usage.GUID]bool{}
	user := func(g usage.GUID) *usage.UserUsage {
		u := users[g]
		if u == nil {
			u = &usage.UserUsage{User: g, Status: usage.UserActive}
			users[g] = u
		}
		return u
	}
	var tallies []usage.UserTally
	for i := range evs {
		a := &evs[i]
		if !a.Time.Before(to) {
			break
		}
		tallies, _ = a.Tally(tallies[:0])
		for j := range tallies {
			t := &tallies[j]
			user(t.User).AddTally(t, !a.Time.Before(from))
			named[t.User] = named[t.User] || t.Named
		}
		if a.Kind == usage.ActivityUser {
			user(a.User).ApplyAccount(a)
		}
	}
	var out []usage.UserUsage
	for g, ok := range named {
		if !ok || !only.IsZero() && g != only {
			continue
		}
		u := *users[g]
		if inviter := users[u.InvitedBy]; !u.InvitedBy.IsZero() && inviter != nil {
			u.InvitedByEmail = inviter.Email
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b usage.UserUsage) int { return bytes.Compare(a.User[:], b.User[:]) })
	return out, nil
}

// put stores v encoded under key of m.
func put[K comparable, T any](ctx context.Context, d *DB, m map[K][]byte, key K, v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	m[key] = b
	return nil
}

// get decodes the record under key of m, or returns usage.ErrNotFound.
func get[K comparable, T any](ctx context.Context, d *DB, m map[K][]byte, key K) (T, error) {
	var v T
	if err := d.lock(ctx); err != nil {
		return v, err
	}
	b, ok := m[key]
	d.mu.Unlock()
	if !ok {
		return v, usage.ErrNotFound
	}
	return v, json.Unmarshal(b, &v)
}

// list decodes the records of m for which keep is true.
func list[K comparable, T any](ctx context.Context, d *DB, m map[K][]byte, keep func(K) bool) ([]T, error) {
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	var enc [][]byte
	for k, b := range m {
		if keep(k) {
			enc = append(enc, b)
		}
	}
	d.mu.Unlock()
	out := make([]T, len(enc))
	for i, b := range enc {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
