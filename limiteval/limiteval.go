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

// Sum is what a limit's metric is computed from, over a window: the count
// or byte sum it bounds, or for an error rate the requests and the errors.
// A store that keeps a window's value itself (the cluster's counters) keeps
// a Sum and compares it with Meets.
type Sum struct {
	N, Requests, Errors int64
}

// Add adds to s the part of metric m of a group with counts c and response
// bytes: a stored row's, or one event's.
func (s *Sum) Add(m usage.LimitMetric, c usage.Counts, responseBytes int64) {
	s.Requests += c.Requests
	s.Errors += c.Status400 + c.Status500
	switch m {
	case usage.LimitErrorRate:
	case usage.LimitResponseBytes:
		s.N += max(responseBytes, 0)
	default:
		s.N += c.Get(m.QueryMetrics()[0])
	}
}

// Metric returns the value of metric m.
func (s Sum) Metric(m usage.LimitMetric) float64 {
	if m != usage.LimitErrorRate {
		return float64(s.N)
	}
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

// value is a window's Sum and which of its limit's thresholds were met (bit
// i for Thresholds[i]). It is small on purpose: a commit touches one per
// limit of each event's organization.
type value struct {
	Sum
	met uint64
	// sent is 1 + the N Changes last reported of an enforced limit's
	// current window, 0 when it reported none.
	sent int64
}

type filter struct{ users, templates, methods map[string]bool }

func newFilter(l *usage.Limit) filter {
	return filter{set(l.Filter.UserIDs), set(l.Filter.TemplateURIs), set(l.Filter.HTTPMethods)}
}

// applies reports whether ev counts toward l, whose filter f is.
func (f *filter) applies(l *usage.Limit, ev *usage.Event) bool {
	return (l.Scope != usage.ScopeClient || ev.ClientID == l.ClientID) && f.match(ev)
}

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
	counts, err := Load(l, now, rows)
	if err != nil {
		return nil, err
	}
	t := &tracked{limit: l, filter: newFilter(&l)}
	// The windows Load counted: a limit on each client without requests
	// has no count in them.
	if t.windows[0].iv, err = l.Window.Current(now); err != nil {
		return nil, err
	}
	if t.windows[1].iv, err = l.Window.Current(t.windows[0].iv.End); err != nil {
		return nil, err
	}
	for _, c := range counts {
		n := 0
		if !c.Window.Start.Equal(t.windows[0].iv.Start) {
			n = 1
		}
		t.windows[n].at(&l, c.ClientID).Sum = c.Sum
	}
	var found []Crossing
	for n := range t.windows {
		w := &t.windows[n]
		for _, client := range w.keys(&l) {
			found = t.check(w, client, w.at(&l, client), found)
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
		if !t.filter.applies(&t.limit, ev) {
			continue
		}
		for i := range t.windows {
			w := &t.windows[i]
			if ev.Time.Before(w.iv.Start) || !ev.Time.Before(w.iv.End) {
				continue
			}
			v := w.at(&t.limit, ev.ClientID)
			v.Add(t.limit.Metric, usage.CountsFor(ev.Status), ev.ResponseBytes)
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
	x := v.Metric(l.Metric)
	for i, p := range l.Thresholds {
		if v.met&(1<<i) != 0 || !Meets(l, v.Sum, p) {
			continue
		}
		v.met |= 1 << i
		found = append(found, Crossing{Limit: *l, Window: w.iv, ClientID: client, Threshold: p, Value: x})
	}
	return found
}

// Meets reports whether s is at least p percent of l's value. Counts and
// byte sums are whole numbers, compared exactly as n·100 ≥ value·p in 128
// bits; an error rate is a ratio, compared as one.
func Meets(l *usage.Limit, s Sum, p int) bool {
	if l.Metric == usage.LimitErrorRate {
		return s.Metric(l.Metric)*100 >= l.Value*float64(p)
	}
	nh, nl := bits.Mul64(uint64(s.N), 100)
	vh, vl := bits.Mul64(uint64(l.Value), uint64(p))
	return nh > vh || nh == vh && nl >= vl
}

// Crossed returns the crossings of the thresholds of l that the value of
// window w (for client, with usage.ScopeEachClient) meets at after and did
// not meet at before: what one step of a count kept elsewhere (a batch
// added at once to the cluster's counters) crosses. An error rate may fall
// back below a threshold and cross it again: the crossing has the same ID
// and is notified once.
func Crossed(l *usage.Limit, w usage.Interval, client string, before, after Sum) []Crossing {
	var found []Crossing
	for _, p := range l.Thresholds {
		if !Meets(l, before, p) && Meets(l, after, p) {
			found = append(found, Crossing{Limit: *l, Window: w, ClientID: client, Threshold: p, Value: after.Metric(l.Metric)})
		}
	}
	return found
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
			if v.sent == v.N+1 {
				return
			}
			v.sent = v.N + 1
		}
		vs = append(vs, usage.LimitValue{OrganizationID: t.limit.OrganizationID, LimitID: t.limit.ID, Version: t.limit.Version,
			Window: w.iv, ClientID: client, Value: v.Metric(t.limit.Metric)})
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
