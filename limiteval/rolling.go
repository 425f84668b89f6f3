package limiteval

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// Rolling windows.
//
// The stored counts are kept by the hour, so they cannot give back the
// last N minutes: a rolling limit counts, minute by minute, the accepted
// events it sees from the moment its rule (scope, client, filter, metric
// and length) was set, and keeps those minutes as state of its own that the
// store writes in the same commit as the counts (store.Effects). A restart
// reads them back; a crash loses nothing a commit wrote and keeps nothing it
// did not.
//
// An event counts in the minute its time falls in, if that minute is in the
// window when it is accepted; one stamped ahead of the clock counts at
// once. So time passing only ever lowers a window's value, and only at a
// minute's turn. A threshold met is met until the value is found below it
// at the first event of a later minute: it is then armed again, and the
// next crossing is notified anew, with the window of its own minute in its
// ID. Within one minute a threshold is crossed at most once, which is what
// keeps those IDs apart. A crossing and the thresholds it marks are written
// in one commit, so a restart finds every threshold it notified marked, and
// a version whose marks were never written (a crash between storing a
// changed limit and evaluating it) is evaluated at start.

// rollingLimit is a limit of a rolling window and its minutes.
type rollingLimit struct {
	limit  *usage.Limit
	filter *filter
	loc    *time.Location
	span   int64  // minutes
	prefix []byte // of its state's keys: its organization, ID and rule
	values map[string]*rollingValue
	// announced is whether Changes reported this version of an enforced
	// limit.
	announced bool
}

// rollingValue is the window of a rolling limit, or of one client of a
// limit on each client.
type rollingValue struct {
	minutes map[int64]*Sum // by Unix minute, from at-span+1 on
	total   Sum            // of minutes
	at      int64          // the minute total is of
	met     uint64         // bit i for Thresholds[i]
	checked int64          // the minute of the last event, when met was armed again
	// sent and sentAt are 1 + the N and the minute Changes last reported;
	// 0 when it reported none.
	sent, sentAt int64
}

// State keys, after the limit's prefix (rollingPrefix): the client,
// length-prefixed, then 'm' and a big-endian Unix minute for a minute's Sum,
// or 'a' for the marks (version, met, checked).
const (
	stateMinute = 'm'
	stateMarks  = 'a'
)

// rollingPrefix returns the prefix of limit l's state keys; with rule it
// is that of l's rule's minutes.
func rollingPrefix(l *usage.Limit, rule bool) []byte {
	b := []byte{'r'}
	b = appendString(b, l.OrganizationID)
	b = appendString(b, l.ID)
	if rule {
		b = binary.BigEndian.AppendUint64(b, RuleHash(l))
	}
	return b
}

// RuleHash names the rule of l, a limit of a rolling window: its scope,
// client, filter, metric and length, what its minutes are counted by. A
// version that changes anything else (value, thresholds, name, enforced)
// has the same rule and keeps the minutes; a store that keeps them itself
// (the cluster's counters) keys them by it.
func RuleHash(l *usage.Limit) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d|%s|%d|%d|%q|%q|%q", l.Scope, l.ClientID, l.Metric, l.Window.Minutes, l.Filter.UserIDs, l.Filter.TemplateURIs, l.Filter.HTTPMethods)
	return h.Sum64()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (r *rollingLimit) key(client string, kind byte, minute int64) []byte {
	k := appendString(slices.Clip(r.prefix), client)
	k = append(k, kind)
	if kind == stateMinute {
		k = binary.BigEndian.AppendUint64(k, uint64(minute))
	}
	return k
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// SetRolling starts tracking l, normalized, a limit of a rolling window,
// or replaces the limit with its ID, as of now: it reads back the minutes
// and marks its rule kept in the store's state. It returns the crossings
// of thresholds the window meets that this version has not marked, and
// the state changes to write with them (the marks, and the deletion of
// minutes out of the window or of another rule).
func (e *Evaluator) SetRolling(l usage.Limit, now time.Time, state store.StateReader) ([]Crossing, []store.StateChange, error) {
	if l.Window.Type != usage.WindowRolling {
		return nil, nil, fmt.Errorf("limiteval: limit %s is not of a rolling window", l.ID)
	}
	loc, err := l.Window.Location()
	if err != nil {
		return nil, nil, err
	}
	r := &rollingLimit{limit: &l, filter: newFilter(l.Filter), loc: loc, span: int64(l.Window.Minutes),
		prefix: rollingPrefix(&l, true), values: map[string]*rollingValue{}}
	m := usage.UnixMinute(now)
	var changes []store.StateChange
	type marks struct {
		version      int64
		met, checked uint64
	}
	stored := map[string]marks{}
	err = state(rollingPrefix(&l, false), func(key, val []byte) error {
		rest, ok := bytes.CutPrefix(key, r.prefix)
		if !ok { // another rule's
			changes = append(changes, store.StateChange{Key: bytes.Clone(key)})
			return nil
		}
		n, w := binary.Uvarint(rest)
		if w <= 0 || uint64(len(rest)-w) < n+1 {
			return fmt.Errorf("limiteval: rolling limit %s: bad state key %x", l.ID, key)
		}
		client, kind, rest := string(rest[w:w+int(n)]), rest[w+int(n)], rest[w+int(n)+1:]
		switch {
		case kind == stateMinute && len(rest) == 8:
			k := int64(binary.BigEndian.Uint64(rest))
			if k <= m-r.span {
				changes = append(changes, store.StateChange{Key: bytes.Clone(key)})
				return nil
			}
			s, err := decodeSum(val)
			if err != nil {
				return fmt.Errorf("limiteval: rolling limit %s: %w", l.ID, err)
			}
			v := r.value(client, m)
			v.minutes[k] = &s
			v.total.add(s)
		case kind == stateMarks:
			var mk marks
			var w1, w2, w3 int
			mk.version, w1 = binary.Varint(val)
			if w1 > 0 {
				mk.met, w2 = binary.Uvarint(val[w1:])
				if w2 > 0 {
					mk.checked, w3 = binary.Uvarint(val[w1+w2:])
				}
			}
			if w1 <= 0 || w2 <= 0 || w3 <= 0 {
				return fmt.Errorf("limiteval: rolling limit %s: bad marks %x", l.ID, val)
			}
			stored[client] = mk
		default:
			return fmt.Errorf("limiteval: rolling limit %s: bad state key %x", l.ID, key)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var found []Crossing
	clients := slices.Sorted(maps.Keys(r.values))
	for c := range stored {
		if r.values[c] == nil { // every minute of it left the window
			changes = append(changes, store.StateChange{Key: r.key(c, stateMarks, 0)})
		}
	}
	for _, c := range clients {
		v := r.values[c]
		if mk, ok := stored[c]; ok && mk.version == l.Version {
			v.met, v.checked = mk.met, int64(mk.checked)
		}
		before := v.met
		found = r.check(c, v, now, found)
		if v.met != before {
			changes = append(changes, r.marks(c, v))
		}
	}
	e.replace(&l)
	e.rolling[l.OrganizationID] = append(e.rolling[l.OrganizationID], r)
	return found, changes, nil
}

// value returns client's value of r as of minute m, made if need be.
func (r *rollingLimit) value(client string, m int64) *rollingValue {
	if r.limit.Scope != usage.ScopeEachClient {
		client = ""
	}
	v := r.values[client]
	if v == nil {
		v = &rollingValue{minutes: map[int64]*Sum{}, at: m, checked: m}
		r.values[client] = v
	}
	return v
}

// advance moves v on to minute m, dropping the minutes that left the
// window, and appends their deletion to changes. A deletion may be written
// late (with the next commit, or the next sweep): a minute out of the
// window is never read again, and a commit that counts in it again (the
// clock moved back) writes it after the deletion.
func (r *rollingLimit) advance(client string, v *rollingValue, m int64, changes *[]store.StateChange) {
	if m <= v.at {
		return
	}
	v.at = m
	for k, s := range v.minutes {
		if k > m-r.span {
			continue
		}
		v.total.sub(*s)
		delete(v.minutes, k)
		if changes != nil {
			*changes = append(*changes, store.StateChange{Key: r.key(client, stateMinute, k)})
		}
	}
}

// check marks the thresholds v meets and appends a crossing for each it
// newly meets at now.
func (r *rollingLimit) check(client string, v *rollingValue, now time.Time, found []Crossing) []Crossing {
	l := r.limit
	for i, p := range l.Thresholds {
		if v.met&(1<<i) != 0 || !Meets(l, v.total, p) {
			continue
		}
		v.met |= 1 << i
		found = append(found, Crossing{Limit: *l, Window: l.Window.RollingIn(now, r.loc), ClientID: client, Threshold: p, Value: v.total.Metric(l.Metric)})
	}
	return found
}

// marks returns the state change that keeps v's marks.
func (r *rollingLimit) marks(client string, v *rollingValue) store.StateChange {
	b := binary.AppendVarint(nil, r.limit.Version)
	b = binary.AppendUvarint(b, v.met)
	b = binary.AppendUvarint(b, uint64(v.checked))
	return store.StateChange{Key: r.key(client, stateMarks, 0), Value: b}
}

// observeRolling counts evs, a commit's accepted events, in the rolling
// limits of their organizations, as ObserveAll does the others.
func (e *Evaluator) observeRolling(now time.Time, evs []*usage.Event, found []Crossing) []Crossing {
	byOrg := map[string][]item{}
	for _, ev := range evs {
		if e.rolling[ev.OrganizationID] != nil {
			byOrg[ev.OrganizationID] = append(byOrg[ev.OrganizationID], item{ev: ev, at: unixNano(ev.Time), bytes: ev.ResponseBytes, status: int32(ev.Status), method: methodBit(ev.HTTPMethod)})
		}
	}
	for _, org := range slices.Sorted(maps.Keys(byOrg)) {
		found, e.changes = e.observeOrgRolling(e.rolling[org], byOrg[org], now, found, e.changes)
	}
	return found
}

// TakeState returns the changes to the evaluator's state (the minutes of
// rolling windows, and their marks) since it was last called: the caller
// writes them in the same commit as the crossings ObserveAll returned.
func (e *Evaluator) TakeState() []store.StateChange {
	c := e.changes
	e.changes = nil
	return c
}

// observeOrgRolling counts the items of one organization's commit, in order,
// in its rolling limits at now, appending the crossings to found and the
// state to write to changes.
func (e *Evaluator) observeOrgRolling(rs []*rollingLimit, items []item, now time.Time, found []Crossing, changes []store.StateChange) ([]Crossing, []store.StateChange) {
	m := usage.UnixMinute(now)
	type touched struct {
		client string
		minute int64
	}
	for _, r := range rs {
		dirty := map[touched]bool{}
		marked := map[string]bool{}
		for _, it := range items {
			if !r.filter.applies(r.limit, it.ev) {
				continue
			}
			client := ""
			if r.limit.Scope == usage.ScopeEachClient {
				client = it.ev.ClientID
			}
			v := r.value(client, m)
			r.advance(client, v, m, &changes)
			if v.checked != m {
				// The first event of a minute: a threshold the value has
				// fallen below since is armed again.
				v.checked = m
				for i, p := range r.limit.Thresholds {
					if v.met&(1<<i) != 0 && !Meets(r.limit, v.total, p) {
						v.met &^= 1 << i
					}
				}
				marked[client] = true
			}
			k := floorDiv(it.at, int64(time.Minute))
			if k <= m-r.span {
				continue // before the window
			}
			var s Sum
			s.Add(r.limit.Metric, usage.CountsFor(int(it.status)), it.bytes)
			ms := v.minutes[k]
			if ms == nil {
				ms = &Sum{}
				v.minutes[k] = ms
			}
			ms.add(s)
			v.total.add(s)
			dirty[touched{client, k}] = true
			before := v.met
			if found = r.check(client, v, now, found); v.met != before {
				marked[client] = true
			}
		}
		for t := range dirty {
			changes = append(changes, store.StateChange{Key: r.key(t.client, stateMinute, t.minute), Value: encodeSum(*r.values[t.client].minutes[t.minute])})
		}
		for c := range marked {
			changes = append(changes, r.marks(c, r.values[c]))
		}
	}
	return found, changes
}

func (s *Sum) add(o Sum) {
	s.N, s.Requests, s.Errors = s.N+o.N, s.Requests+o.Requests, s.Errors+o.Errors
}
func (s *Sum) sub(o Sum) {
	s.N, s.Requests, s.Errors = s.N-o.N, s.Requests-o.Requests, s.Errors-o.Errors
}

func encodeSum(s Sum) []byte {
	b := binary.AppendVarint(nil, s.N)
	b = binary.AppendVarint(b, s.Requests)
	return binary.AppendVarint(b, s.Errors)
}

func decodeSum(b []byte) (Sum, error) {
	var s Sum
	for _, p := range []*int64{&s.N, &s.Requests, &s.Errors} {
		v, w := binary.Varint(b)
		if w <= 0 {
			return Sum{}, errors.New("bad minute sum")
		}
		*p, b = v, b[w:]
	}
	if len(b) != 0 {
		return Sum{}, errors.New("bad minute sum")
	}
	return s, nil
}

// removeRolling stops tracking the rolling limit id of organization orgID
// and returns it, or nil if it was not tracked.
func (e *Evaluator) removeRolling(orgID, id string) *rollingLimit {
	rs := e.rolling[orgID]
	i := slices.IndexFunc(rs, func(r *rollingLimit) bool { return r.limit.ID == id })
	if i < 0 {
		return nil
	}
	r := rs[i]
	if rs = slices.Delete(rs, i, i+1); len(rs) == 0 {
		delete(e.rolling, orgID)
	} else {
		e.rolling[orgID] = rs
	}
	return r
}

// values appends r's values as of now to vs, as tracked.values does: those
// changed since Changes last reported them (their value, or their window,
// which moves every minute) if changed, marking them reported, or all.
func (r *rollingLimit) valuesAt(now time.Time, vs []usage.LimitValue, changed bool, changes *[]store.StateChange) []usage.LimitValue {
	m := usage.UnixMinute(now)
	iv := r.limit.Window.RollingIn(now, r.loc)
	for client, v := range r.values {
		r.advance(client, v, m, changes)
		if changed {
			if v.sent == v.total.N+1 && v.sentAt == m {
				continue
			}
			v.sent, v.sentAt = v.total.N+1, m
		}
		vs = append(vs, usage.LimitValue{OrganizationID: r.limit.OrganizationID, LimitID: r.limit.ID, Version: r.limit.Version,
			Window: iv, ClientID: client, Value: v.total.Metric(r.limit.Metric)})
	}
	return vs
}

// RollingStatus returns the status of the rolling limit l as of now, from
// the minutes tracked of its version; a limit not tracked (yet) has none.
func (e *Evaluator) RollingStatus(l *usage.Limit, now time.Time) (usage.LimitStatus, error) {
	loc, err := l.Window.Location()
	if err != nil {
		return usage.LimitStatus{}, err
	}
	st := usage.LimitStatus{Window: l.Window.RollingIn(now, loc)}
	i := slices.IndexFunc(e.rolling[l.OrganizationID], func(r *rollingLimit) bool { return r.limit.ID == l.ID })
	if i < 0 {
		return st, nil
	}
	r := e.rolling[l.OrganizationID][i]
	if !bytes.Equal(r.prefix, rollingPrefix(l, true)) {
		return st, nil // another rule than the one asked about: none counted yet
	}
	m := usage.UnixMinute(now)
	sums := make([]ClientSum, 0, len(r.values))
	for _, client := range slices.Sorted(maps.Keys(r.values)) {
		v := r.values[client]
		r.advance(client, v, m, &e.changes)
		sums = append(sums, ClientSum{ClientID: client, Sum: v.total})
	}
	return StatusOf(l, st.Window, sums), nil
}

// ClientSum is the Sum of a limit's window of one client, or of the
// limit's own window (ClientID "") for a limit not on each client.
type ClientSum struct {
	ClientID string
	Sum      Sum
}

// StatusOf returns the status of l over window from sums, ordered by
// client: the limit's own, or one per client for a limit on each client,
// where a client with no request left in the window is not listed.
func StatusOf(l *usage.Limit, window usage.Interval, sums []ClientSum) usage.LimitStatus {
	st := usage.LimitStatus{Window: window}
	for _, c := range sums {
		x := c.Sum.Metric(l.Metric)
		if l.Scope != usage.ScopeEachClient {
			st.Value = x
			continue
		}
		if c.Sum.Requests == 0 {
			continue
		}
		st.Clients = append(st.Clients, usage.ClientLimitStatus{ClientID: c.ClientID, Value: x})
		st.Value = max(st.Value, x)
	}
	return st
}

// SweepRolling moves every rolling window on to now and forgets the values
// no minute is left of (a client not seen for a window's length), and
// returns the state changes to write: the deletion of what it dropped and
// of what was dropped since the last commit. Without it, the minutes of
// a client that stopped calling would stay until the next load.
func (e *Evaluator) SweepRolling(now time.Time) []store.StateChange {
	m := usage.UnixMinute(now)
	for _, rs := range e.rolling {
		for _, r := range rs {
			for client, v := range r.values {
				r.advance(client, v, m, &e.changes)
				if len(v.minutes) == 0 {
					// Its thresholds were armed again at the event that
					// found it empty, or will be at its next: as a new
					// value starts.
					delete(r.values, client)
					e.changes = append(e.changes, store.StateChange{Key: r.key(client, stateMarks, 0)})
				}
			}
		}
	}
	return e.TakeState()
}

// orphanedState returns the deletion of every key of the state that is of
// no rolling limit tracked.
func (e *Evaluator) orphanedState(state store.StateReader) ([]store.StateChange, error) {
	tracked := map[string]bool{}
	for _, rs := range e.rolling {
		for _, r := range rs {
			tracked[string(rollingPrefix(r.limit, false))] = true
		}
	}
	var out []store.StateChange
	err := state([]byte{'r'}, func(k, _ []byte) error {
		if p, ok := limitPrefixOf(k); !ok || !tracked[string(p)] {
			out = append(out, store.StateChange{Key: bytes.Clone(k)})
		}
		return nil
	})
	return out, err
}

// limitPrefixOf returns the part of a state key that is its limit's
// (rollingPrefix without the rule).
func limitPrefixOf(k []byte) ([]byte, bool) {
	i := 1
	for range 2 {
		n, w := binary.Uvarint(k[i:])
		if w <= 0 || uint64(len(k)-i-w) < n {
			return nil, false
		}
		i += w + int(n)
	}
	return k[:i], true
}
