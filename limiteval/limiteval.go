// Package limiteval finds the crossings of usage limits' thresholds as
// accepted events commit, from exact counts.
//
// An Evaluator keeps, for every limit it was given, the value of its
// current window and of the next (events may carry times a little ahead of
// the clock), per client for a limit that applies to each client. The store
// calls Observe with every event it accepts, under the lock that orders its
// commits, and writes the crossings Observe returns in the same commit as
// the counts: a crossing is durable exactly when the counts that caused it
// are. Set loads a limit's windows from the counts already stored, under the
// same lock, so that no commit falls between the two. Duplicates never reach
// an Evaluator, since only accepted events do, so no count is pushed over a
// threshold by a retry.
//
// A crossing is named by what it announces (Crossing.ID): the limit and its
// version, the window, the client and the threshold. Whoever finds one
// twice — a restart, a reload — finds the same name, which is what makes
// notifying it exactly once possible downstream. The design is in
// docs/limits.md.
package limiteval

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"math/bits"
	"slices"
	"time"

	"github.com/usaged/usaged/usage"
)

// Crossing is a threshold of a limit met in a window: for a limit on each
// client, by one client.
type Crossing struct {
	Limit     usage.Limit    // as it was when the crossing was found
	Window    usage.Interval // in the limit's zone
	ClientID  string         // the client, for usage.ScopeEachClient
	Threshold int            // percent of Limit.Value
	Value     float64        // the metric's value when the threshold was met
}

// ID names the crossing for as long as it matters: the same limit version,
// window start, client and threshold give the same ID, whoever computes it.
func (c *Crossing) ID() string {
	h := sha256.New()
	var b [8]byte
	put := func(s string) {
		binary.BigEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	put(c.Limit.OrganizationID)
	put(c.Limit.ID)
	for _, v := range []int64{c.Limit.Version, c.Window.Start.Unix(), int64(c.Threshold)} {
		binary.BigEndian.PutUint64(b[:], uint64(v))
		h.Write(b[:])
	}
	put(c.ClientID)
	return "ntf_" + idEncoding.EncodeToString(h.Sum(nil)[:20])
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// Evaluator tracks limits' current windows. It is not safe for concurrent
// use: its caller serializes it with its commits.
type Evaluator struct {
	byOrg map[string][]*tracked
	// removed are the enforced limits removed, or changed to not be
	// enforced, since Changes last reported.
	removed []usage.Limit
}

// New returns an Evaluator that tracks no limit.
func New() *Evaluator { return &Evaluator{byOrg: map[string][]*tracked{}} }

type tracked struct {
	limit   usage.Limit
	filter  filter
	windows [2]window // the current one and the next
	// announced is whether Changes reported this version of an enforced
	// limit.
	announced bool
}

// window is a window's value: the limit's own, or one per client.
type window struct {
	iv      usage.Interval
	total   value
	clients map[string]*value
}

// value accumulates what a limit's metric is computed from: the count or
// byte sum it bounds, or for an error rate the requests and the errors; and
// which of its thresholds were met (bit i for Thresholds[i]). It is small
// on purpose: a commit touches one per limit of each event's organization.
type value struct {
	n, requests, errors int64
	met                 uint64
	// sent is 1 + the n Changes last reported of an enforced limit's
	// current window, 0 when it reported none.
	sent int64
}

// add adds to v the part of metric m of a group with counts c and
// response bytes: a stored row's, or one event's.
func (v *value) add(m usage.LimitMetric, c usage.Counts, responseBytes int64) {
	v.requests += c.Requests
	v.errors += c.Status400 + c.Status500
	switch m {
	case usage.LimitErrorRate:
	case usage.LimitResponseBytes:
		v.n += max(responseBytes, 0)
	default:
		v.n += c.Get(m.QueryMetrics()[0])
	}
}

// metric returns the value of metric m.
func (v *value) metric(m usage.LimitMetric) float64 {
	if m != usage.LimitErrorRate {
		return float64(v.n)
	}
	if v.requests == 0 {
		return 0
	}
	return float64(v.errors) / float64(v.requests)
}

type filter struct{ users, templates, methods map[string]bool }

func set(list []string) map[string]bool {
	if len(list) == 0 {
		return nil
	}
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

func (f *filter) match(ev *usage.Event) bool {
	return (f.users == nil || f.users[ev.UserID]) &&
		(f.templates == nil || f.templates[ev.TemplateURI]) &&
		(f.methods == nil || f.methods[ev.HTTPMethod])
}

// Rows answers a query from the stored counts: the store's own query path.
type Rows func(q usage.Query) ([]usage.Row, error)

// Set starts tracking l, normalized, or replaces the limit with its ID, as
// of now: it loads the current and the next window from the counts rows
// answers. It returns a crossing for every threshold the loaded values
// already meet; they may have been found before (a restart), so the caller
// writes each one only if its ID is not already written.
func (e *Evaluator) Set(l usage.Limit, now time.Time, rows Rows) ([]Crossing, error) {
	loc, err := l.Window.Location()
	if err != nil {
		return nil, err
	}
	t := &tracked{limit: l, filter: filter{set(l.Filter.UserIDs), set(l.Filter.TemplateURIs), set(l.Filter.HTTPMethods)}}
	var found []Crossing
	iv, err := l.Window.Current(now)
	if err != nil {
		return nil, err
	}
	for n := range t.windows {
		q, err := l.Query(iv, loc).Normalize()
		if err != nil {
			return nil, err
		}
		rs, err := rows(q)
		if err != nil {
			return nil, err
		}
		w := &t.windows[n]
		w.iv = iv
		for i := range rs {
			v := w.at(&l, rs[i].ClientID)
			var bytes int64
			if rs[i].Measures != nil {
				bytes = rs[i].Measures.ResponseBytes
			}
			v.add(l.Metric, rs[i].Counts, bytes)
		}
		for _, client := range w.keys(&l) {
			found = t.check(w, client, w.at(&l, client), found)
		}
		if iv, err = l.Window.Current(iv.End); err != nil {
			return nil, err
		}
	}
	if old := e.take(l.OrganizationID, l.ID); old != nil && old.limit.Enforced && !l.Enforced {
		e.removed = append(e.removed, usage.Limit{OrganizationID: l.OrganizationID, ID: l.ID})
	}
	e.byOrg[l.OrganizationID] = append(e.byOrg[l.OrganizationID], t)
	return found, nil
}

// Remove stops tracking the limit id of organization org, if tracked.
func (e *Evaluator) Remove(org, id string) {
	if t := e.take(org, id); t != nil && t.limit.Enforced {
		e.removed = append(e.removed, usage.Limit{OrganizationID: org, ID: id})
	}
}

// take stops tracking the limit id of organization org and returns it,
// or nil if it was not tracked.
func (e *Evaluator) take(org, id string) *tracked {
	var found *tracked
	ts := slices.DeleteFunc(e.byOrg[org], func(t *tracked) bool {
		if t.limit.ID == id {
			found = t
			return true
		}
		return false
	})
	if len(ts) == 0 {
		delete(e.byOrg, org)
	} else {
		e.byOrg[org] = ts
	}
	return found
}

// Len returns the number of limits tracked.
func (e *Evaluator) Len() int {
	n := 0
	for _, ts := range e.byOrg {
		n += len(ts)
	}
	return n
}

// Observe counts ev, an event just accepted, at now, the time of its
// commit, and appends to found the crossings it causes. An event before
// a limit's current window counts in no window Observe tracks; one after
// the next (the clock moved back) is not counted either.
func (e *Evaluator) Observe(now time.Time, ev *usage.Event, found []Crossing) []Crossing {
	for _, t := range e.byOrg[ev.OrganizationID] {
		t.roll(now)
		if t.limit.Scope == usage.ScopeClient && ev.ClientID != t.limit.ClientID || !t.filter.match(ev) {
			continue
		}
		for i := range t.windows {
			w := &t.windows[i]
			if ev.Time.Before(w.iv.Start) || !ev.Time.Before(w.iv.End) {
				continue
			}
			v := w.at(&t.limit, ev.ClientID)
			v.add(t.limit.Metric, usage.CountsFor(ev.Status), ev.ResponseBytes)
			client := ""
			if t.limit.Scope == usage.ScopeEachClient {
				client = ev.ClientID
			}
			found = t.check(w, client, v, found)
			break
		}
	}
	return found
}

// roll moves t's windows on to the one holding now, when now has left the
// current one. The next window's value carries over; a window further on
// starts empty, since no event reached it (events are at most minutes ahead
// of the clock and Observe is called with every one).
func (t *tracked) roll(now time.Time) {
	if now.Before(t.windows[0].iv.End) {
		return
	}
	iv, err := t.limit.Window.Current(now)
	if err != nil { // the zone was loaded when the limit was set
		return
	}
	if next := t.windows[1]; next.iv.Start.Equal(iv.Start) {
		t.windows[0] = next
	} else {
		t.windows[0] = window{iv: iv}
	}
	next, err := t.limit.Window.Current(iv.End)
	if err != nil {
		return
	}
	t.windows[1] = window{iv: next}
}

// check appends to found a crossing for each threshold v newly meets.
func (t *tracked) check(w *window, client string, v *value, found []Crossing) []Crossing {
	l := &t.limit
	x := v.metric(l.Metric)
	for i, p := range l.Thresholds {
		if v.met&(1<<i) != 0 || !meets(l, v, p) {
			continue
		}
		v.met |= 1 << i
		found = append(found, Crossing{Limit: *l, Window: w.iv, ClientID: client, Threshold: p, Value: x})
	}
	return found
}

// meets reports whether v is at least p percent of l's value. Counts and
// byte sums are whole numbers, compared exactly as n·100 ≥ value·p in 128
// bits; an error rate is a ratio, compared as one.
func meets(l *usage.Limit, v *value, p int) bool {
	if l.Metric == usage.LimitErrorRate {
		return v.metric(l.Metric)*100 >= l.Value*float64(p)
	}
	nh, nl := bits.Mul64(uint64(v.n), 100)
	vh, vl := bits.Mul64(uint64(l.Value), uint64(p))
	return nh > vh || nh == vh && nl >= vl
}

func (w *window) at(l *usage.Limit, client string) *value {
	if l.Scope != usage.ScopeEachClient {
		return &w.total
	}
	if w.clients == nil {
		w.clients = map[string]*value{}
	}
	v := w.clients[client]
	if v == nil {
		v = &value{}
		w.clients[client] = v
	}
	return v
}

// keys returns the clients of w's values in order, or "" alone for a
// limit's own value.
func (w *window) keys(l *usage.Limit) []string {
	if l.Scope != usage.ScopeEachClient {
		return []string{""}
	}
	clients := make([]string, 0, len(w.clients))
	for c := range w.clients {
		clients = append(clients, c)
	}
	slices.Sort(clients)
	return clients
}

// Changes returns, as of now, what changed in the enforced limits since
// the last call: the limits set since (a new version), those removed or no
// longer enforced, and the value of every enforced limit's current window
// (per client for ScopeEachClient) that differs from what it last
// reported, windows that began since included. The caller calls it
// regularly: it is what the limits stream sends (docs/limits.md).
func (e *Evaluator) Changes(now time.Time) usage.LimitUpdate {
	u := usage.LimitUpdate{Removed: e.removed}
	e.removed = nil
	for _, ts := range e.byOrg {
		for _, t := range ts {
			if !t.limit.Enforced {
				continue
			}
			t.roll(now)
			if !t.announced {
				u.Limits = append(u.Limits, t.limit)
				t.announced = true
			}
			u.Values = t.values(u.Values, true)
		}
	}
	return u
}

// Enforced returns, as of now, every enforced limit of organization org
// (of all of them for "") and the value of its current window, per client
// for ScopeEachClient: where a subscriber to the changes starts from.
func (e *Evaluator) Enforced(now time.Time, org string) usage.LimitUpdate {
	var u usage.LimitUpdate
	add := func(ts []*tracked) {
		for _, t := range ts {
			if t.limit.Enforced {
				t.roll(now)
				u.Limits = append(u.Limits, t.limit)
				u.Values = t.values(u.Values, false)
			}
		}
	}
	if org != "" {
		add(e.byOrg[org])
		return u
	}
	for _, ts := range e.byOrg {
		add(ts)
	}
	return u
}

// values appends the values of t's current window to vs: those changed
// since Changes last reported them if changed, marking them reported, or
// all.
func (t *tracked) values(vs []usage.LimitValue, changed bool) []usage.LimitValue {
	w := &t.windows[0]
	put := func(client string, v *value) {
		if changed {
			if v.sent == v.n+1 {
				return
			}
			v.sent = v.n + 1
		}
		vs = append(vs, usage.LimitValue{OrganizationID: t.limit.OrganizationID, LimitID: t.limit.ID, Version: t.limit.Version,
			Window: w.iv, ClientID: client, Value: v.metric(t.limit.Metric)})
	}
	if t.limit.Scope != usage.ScopeEachClient {
		put("", &w.total)
		return vs
	}
	for client, v := range w.clients {
		put(client, v)
	}
	return vs
}
