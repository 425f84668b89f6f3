// Package limiteval finds the crossings of usage limits' thresholds as
// accepted events commit, from exact counts.
//
// An Evaluator keeps, for every limit it was given, the value of its
// current window and of the next (events may carry times a little ahead of
// the clock), per client for a limit that applies to each client. The store
// calls ObserveAll with the events each commit accepts (Observe is one
// event's), under the lock that orders its commits, and writes the
// crossings it returns in the same commit as the counts: a crossing is durable exactly when the counts that caused it
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
	"iter"
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/usaged/usaged/store"
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
	byOrg   map[string]*org
	rolling map[string][]*rollingLimit // by organization (rolling.go)
	changes []store.StateChange        // to the state, since TakeState
	commit  commit                     // ObserveAll's
	// users and templates number those that filters name, from 1, so
	// that ObserveAll looks an event's up once rather than once per
	// filtered limit: an item carries their numbers.
	users, templates map[string]int32
	// filters are the limits' filters, one for each that differs, by
	// filterKey, so that a commit matches its events against each once.
	filters map[string]*filter
	// removed are the enforced limits removed, or changed to not be
	// enforced, since Changes last reported.
	removed []usage.Limit
}

// New returns an Evaluator that tracks no limit.
func New() *Evaluator {
	return &Evaluator{byOrg: map[string]*org{}, rolling: map[string][]*rollingLimit{}, commit: commit{orgIndex: map[string]int32{}},
		users: map[string]int32{}, templates: map[string]int32{}, filters: map[string]*filter{}}
}

// org is an organization's tracked limits, indexed so that an event costs
// only the limits that can match it: an organization may hold a limit for
// each of a thousand clients, and an event is of one.
//
// The clients that limits of scope client name, and those with a value in
// a window of a limit on each client, have a slot: the index of their
// limits in own and of their values in each limit's windows. A commit
// then finds a client once, by one lookup, rather than once per limit; a
// client's own limits lie side by side, and a limit on each client reads
// its clients' values from one array rather than a map.
type org struct {
	n     int         // limits
	whole []*tracked  // scope organization
	each  []*tracked  // scope eachClient
	own   [][]tracked // scope client, by slot
	// slots is the slot of each client of clients.
	slots   map[string]int32
	clients []string // by slot
	// rollAt is at or before the earliest end of a current window among
	// all, so that before it no window rolls and none needs to be looked at.
	rollAt time.Time
}

// slot returns client's slot in o, giving it one if it has none.
func (o *org) slot(client string) int32 {
	s, ok := o.slots[client]
	if !ok {
		s = int32(len(o.clients))
		o.slots[client] = s
		o.clients = append(o.clients, client)
		o.own = append(o.own, nil)
	}
	return s
}

// limits returns o's limits. The limits of scope client are o's own: they
// move as others of their client come and go.
func (o *org) limits() iter.Seq[*tracked] {
	return func(yield func(*tracked) bool) {
		for _, ts := range [][]*tracked{o.whole, o.each} {
			for _, t := range ts {
				if !yield(t) {
					return
				}
			}
		}
		for s := range o.own {
			for i := range o.own[s] {
				if !yield(&o.own[s][i]) {
					return
				}
			}
		}
	}
}

// tracked is a limit and its windows. What ObserveAll reads for every event
// that may match comes first, so that it shares the first cache lines: of
// 10,000 limits most are not in the cache when an event comes.
type tracked struct {
	filter  *filter           // nil for a limit without one
	metric  usage.LimitMetric // limit's
	scope   usage.LimitScope  // limit's
	allMet  uint64            // value.met once every threshold is met
	windows [2]window         // the current one and the next
	ivs     [2]usage.Interval // windows' intervals, apart: read only at a crossing and a roll
	limit   *usage.Limit
	// announced is whether Changes reported this version of an enforced
	// limit.
	announced bool
}

// window is a window's value: the limit's own, or one per client.
type window struct {
	start, end int64 // iv in Unix nanoseconds, for comparing events' times
	total      value
	// clients are a limit on each client's values, by the client's slot
	// in the limit's org; those of clients without one in the window are
	// zero (value.has false).
	clients []value
}

// setWindow makes t's window i the empty one of iv.
func (t *tracked) setWindow(i int, iv usage.Interval) {
	t.windows[i] = window{start: iv.Start.UnixNano(), end: iv.End.UnixNano()}
	t.ivs[i] = iv
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
	// due is, for a count or a byte sum, the least N that meets a
	// threshold not met yet, so that the thresholds are looked at only
	// when one is; 0 until they were looked at once.
	due int64
	met uint64
	// sent is 1 + the N Changes last reported of an enforced limit's
	// current window, 0 when it reported none.
	sent int64
	// has is whether the window has this value: for a limit on each
	// client, whether the client has one in it.
	has bool
}

// filter is a limit's filter as sets, a nil set matching every value. The
// common methods are also bits, so that the most common filter costs no
// lookup: an event's method is one bit of methodBit, found once.
type filter struct {
	users, templates, methods map[string]bool
	methodBits                uint8 // methodBit of each of methods
	// userIDs and templateIDs are the Evaluator's numbers of users and
	// templates, sorted: what matchItem reads.
	userIDs, templateIDs []int32
	key                  string // filterKey's
	limits               int    // how many tracked limits have it
}

// filterFor returns the filter of f shared by the limits that have it, nil
// for none.
func (e *Evaluator) filterFor(f usage.LimitFilter) *filter {
	k := filterKey(f)
	if ft := e.filters[k]; ft != nil {
		ft.limits++
		return ft
	}
	ft := newFilter(f)
	if ft == nil {
		return nil
	}
	e.number(ft)
	ft.key, ft.limits = k, 1
	e.filters[k] = ft
	return ft
}

// release is filterFor's undoing, when a limit of f is no longer tracked.
func (e *Evaluator) release(f *filter) {
	if f == nil {
		return
	}
	if f.limits--; f.limits == 0 {
		delete(e.filters, f.key)
	}
}

// filterKey is the same string for filters that match the same events.
func filterKey(f usage.LimitFilter) string {
	var b []byte
	for _, list := range [][]string{f.UserIDs, f.TemplateURIs, f.HTTPMethods} {
		list = slices.Compact(slices.Sorted(slices.Values(list)))
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, s := range list {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return string(b)
}

// number sets f's userIDs and templateIDs from e's numbers, numbering
// those that have none yet. Numbers are never taken back: there are as
// many as names filters ever held.
func (e *Evaluator) number(f *filter) {
	ids := func(set map[string]bool, numbers map[string]int32) []int32 {
		var out []int32
		for name := range set {
			n, ok := numbers[name]
			if !ok {
				n = int32(len(numbers) + 1)
				numbers[name] = n
			}
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}
	f.userIDs, f.templateIDs = ids(f.users, e.users), ids(f.templates, e.templates)
}

func newFilter(f usage.LimitFilter) *filter {
	if len(f.UserIDs)+len(f.TemplateURIs)+len(f.HTTPMethods) == 0 {
		return nil
	}
	ft := &filter{users: set(f.UserIDs), templates: set(f.TemplateURIs), methods: set(f.HTTPMethods)}
	for _, m := range f.HTTPMethods {
		ft.methodBits |= methodBit(m)
	}
	return ft
}

// methodBit returns a bit of its own for each common method, 0 for others.
func methodBit(m string) uint8 {
	switch m {
	case "GET":
		return 1 << 0
	case "POST":
		return 1 << 1
	case "PUT":
		return 1 << 2
	case "DELETE":
		return 1 << 3
	case "PATCH":
		return 1 << 4
	case "HEAD":
		return 1 << 5
	case "OPTIONS":
		return 1 << 6
	}
	return 0
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

// applies reports whether ev counts toward l, whose filter f is (nil for
// none): its scope's client, and its filter.
func (f *filter) applies(l *usage.Limit, ev *usage.Event) bool {
	return (l.Scope != usage.ScopeClient || ev.ClientID == l.ClientID) && (f == nil || f.match(ev, methodBit(ev.HTTPMethod)))
}

// match reports whether ev, whose method's methodBit is method, passes f.
func (f *filter) match(ev *usage.Event, method uint8) bool {
	if f.methods != nil {
		if method != 0 && f.methodBits&method == 0 || method == 0 && !f.methods[ev.HTTPMethod] {
			return false
		}
	}
	return (f.users == nil || f.users[ev.UserID]) &&
		(f.templates == nil || f.templates[ev.TemplateURI])
}

// matchItem is match for an item of ObserveAll, by the numbers of its
// user and template.
func (f *filter) matchItem(it *item) bool {
	if f.methods != nil {
		if it.method != 0 && f.methodBits&it.method == 0 || it.method == 0 && !f.methods[it.ev.HTTPMethod] {
			return false
		}
	}
	return (f.users == nil || numbered(f.userIDs, it.user)) &&
		(f.templates == nil || numbered(f.templateIDs, it.template))
}

// numbered reports whether n, 0 for a name no filter holds, is in ids.
func numbered(ids []int32, n int32) bool {
	if len(ids) <= 8 {
		return slices.Contains(ids, n)
	}
	_, ok := slices.BinarySearch(ids, n)
	return ok
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
	// The windows Load counted: a limit on each client without requests
	// has no count in them.
	iv, err := l.Window.Current(now)
	if err != nil {
		return nil, err
	}
	next, err := l.Window.Current(iv.End)
	if err != nil {
		return nil, err
	}
	e.replace(&l)
	o := e.byOrg[l.OrganizationID]
	if o == nil {
		o = &org{slots: map[string]int32{}, rollAt: iv.End}
		e.byOrg[l.OrganizationID] = o
	}
	t := &tracked{limit: &l, filter: e.filterFor(l.Filter), metric: l.Metric, scope: l.Scope, allMet: 1<<len(l.Thresholds) - 1}
	t.setWindow(0, iv)
	t.setWindow(1, next)
	for _, c := range counts {
		n := 0
		if !c.Window.Start.Equal(iv.Start) {
			n = 1
		}
		var s int32
		if l.Scope == usage.ScopeEachClient {
			s = o.slot(c.ClientID)
		}
		t.windows[n].at(l.Scope, s).Sum = c.Sum
	}
	var found []Crossing
	for n := range t.windows {
		w := &t.windows[n]
		if l.Scope != usage.ScopeEachClient {
			found = t.check(n, "", &w.total, found)
			continue
		}
		for s := range w.clients {
			if w.clients[s].has {
				found = t.check(n, o.clients[s], &w.clients[s], found)
			}
		}
	}
	o.n++
	switch l.Scope {
	case usage.ScopeClient:
		s := o.slot(l.ClientID)
		o.own[s] = append(o.own[s], *t)
	case usage.ScopeEachClient:
		o.each = append(o.each, t)
	default:
		o.whole = append(o.whole, t)
	}
	if t.ivs[0].End.Before(o.rollAt) {
		o.rollAt = t.ivs[0].End
	}
	return found, nil
}

// Remove stops tracking the limit id of organization org, if tracked.
func (e *Evaluator) Remove(orgID, id string) {
	if e.drop(orgID, id) {
		e.removed = append(e.removed, usage.Limit{OrganizationID: orgID, ID: id})
	}
}

// replace stops tracking the limit l is to replace, if any; if it was
// enforced and l is not, Changes reports it removed.
func (e *Evaluator) replace(l *usage.Limit) {
	if e.drop(l.OrganizationID, l.ID) && !l.Enforced {
		e.removed = append(e.removed, usage.Limit{OrganizationID: l.OrganizationID, ID: l.ID})
	}
}

// drop stops tracking the limit id of organization orgID, of either kind of
// window, and reports whether it was tracked and enforced.
func (e *Evaluator) drop(orgID, id string) (enforced bool) {
	if t := e.take(orgID, id); t != nil {
		return t.limit.Enforced
	}
	if r := e.removeRolling(orgID, id); r != nil {
		return r.limit.Enforced
	}
	return false
}

// take stops tracking the limit id of organization orgID and returns it,
// or nil if it was not tracked.
func (e *Evaluator) take(orgID, id string) *tracked {
	o := e.byOrg[orgID]
	if o == nil {
		return nil
	}
	// o.rollAt may now be early: the next Observe after it only rolls
	// nothing and moves it on. A client's slot stays until a roll finds
	// it unused.
	is := func(t *tracked) bool { return t.limit.ID == id }
	var t *tracked
	if i := slices.IndexFunc(o.whole, is); i >= 0 {
		t = o.whole[i] // before Delete moves the others over it
		o.whole = slices.Delete(o.whole, i, i+1)
	} else if i := slices.IndexFunc(o.each, is); i >= 0 {
		t = o.each[i]
		o.each = slices.Delete(o.each, i, i+1)
	} else {
		for s := range o.own {
			if i := slices.IndexFunc(o.own[s], func(t tracked) bool { return t.limit.ID == id }); i >= 0 {
				old := o.own[s][i]
				t, o.own[s] = &old, slices.Delete(o.own[s], i, i+1)
				break
			}
		}
	}
	if t == nil {
		return nil
	}
	if o.n--; o.n == 0 {
		delete(e.byOrg, orgID)
	}
	e.release(t.filter)
	return t
}

// Len returns the number of limits tracked.
func (e *Evaluator) Len() int {
	n := 0
	for _, o := range e.byOrg {
		n += o.n
	}
	for _, rs := range e.rolling {
		n += len(rs)
	}
	return n
}

// Observe counts ev, an event just accepted, at now, the time of its
// commit, and appends to found the crossings it causes: ObserveAll of a
// commit of one event. An event before a limit's current window counts in
// no window Observe tracks; one after the next (the clock moved back) is
// not counted either.
func (e *Evaluator) Observe(now time.Time, ev *usage.Event, found []Crossing) []Crossing {
	one := [1]*usage.Event{ev}
	return e.ObserveAll(now, one[:], found)
}

// roll rolls every limit of o on to now, as each would be at an event of
// now, and moves rollAt on to the earliest end of a current window. It
// then frees the slots no limit needs any more, when they are most of
// them: the clients with values in windows gone.
func (o *org) roll(now time.Time) {
	o.rollAt = time.Time{}
	for t := range o.limits() {
		t.roll(now)
		if end := t.ivs[0].End; o.rollAt.IsZero() || end.Before(o.rollAt) {
			o.rollAt = end
		}
	}
	o.compact()
}

// compact renumbers o's slots without the unused ones, when those are at
// least half of them: those of no limit of scope client and without a
// value in a window of a limit on each client.
func (o *org) compact() {
	used := make([]bool, len(o.clients))
	n := 0
	mark := func(s int) {
		if !used[s] {
			used[s] = true
			n++
		}
	}
	for s, ts := range o.own {
		if len(ts) > 0 {
			mark(s)
		}
	}
	for _, t := range o.each {
		for i := range t.windows {
			for s := range t.windows[i].clients {
				if t.windows[i].clients[s].has {
					mark(s)
				}
			}
		}
	}
	if 2*n > len(o.clients) || len(o.clients) == 0 {
		return
	}
	to := make([]int32, len(o.clients)) // new slot by old
	clients, own := make([]string, 0, n), make([][]tracked, 0, n)
	clear(o.slots)
	for s, c := range o.clients {
		if !used[s] {
			continue
		}
		to[s] = int32(len(clients))
		o.slots[c] = to[s]
		clients, own = append(clients, c), append(own, o.own[s])
	}
	o.clients, o.own = clients, own
	for _, t := range o.each {
		for i := range t.windows {
			w := &t.windows[i]
			var vs []value
			for s := range w.clients {
				if w.clients[s].has {
					if vs == nil {
						vs = make([]value, n)
					}
					vs[to[s]] = w.clients[s]
				}
			}
			w.clients = vs
		}
	}
}

// unixNano returns t in Unix nanoseconds, saturated to those int64 holds
// (1678 to 2262), which keeps its order against any window's bounds.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var minTime, maxTime = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

// roll moves t's windows on to the one holding now, when now has left the
// current one. The next window's value carries over; a window further on
// starts empty, since no event reached it (events are at most minutes ahead
// of the clock and Observe is called with every one).
func (t *tracked) roll(now time.Time) {
	if now.Before(t.ivs[0].End) {
		return
	}
	iv, err := t.limit.Window.Current(now)
	if err != nil { // the zone was loaded when the limit was set
		return
	}
	if t.ivs[1].Start.Equal(iv.Start) {
		t.windows[0], t.ivs[0] = t.windows[1], t.ivs[1]
	} else {
		t.setWindow(0, iv)
	}
	next, err := t.limit.Window.Current(iv.End)
	if err != nil {
		return
	}
	t.setWindow(1, next)
}

// check appends to found a crossing for each threshold v, a value of t's
// window w, newly meets, and sets v.due.
func (t *tracked) check(w int, client string, v *value, found []Crossing) []Crossing {
	l := t.limit
	x := v.Metric(l.Metric)
	for i, p := range l.Thresholds {
		if v.met&(1<<i) != 0 || !Meets(l, v.Sum, p) {
			continue
		}
		v.met |= 1 << i
		found = append(found, Crossing{Limit: *l, Window: t.ivs[w], ClientID: client, Threshold: p, Value: x})
	}
	v.due = due(l, v.met)
	return found
}

// due returns the least count or byte sum that meets a threshold of l not
// in met (as Meets decides), math.MaxInt64 if none can be met; and 0, look
// every time, for an error rate, which is not a count.
func due(l *usage.Limit, met uint64) int64 {
	if l.Metric == usage.LimitErrorRate {
		return 0
	}
	d := int64(math.MaxInt64)
	for i, p := range l.Thresholds {
		if met&(1<<i) == 0 {
			d = min(d, LeastCount(l, p))
		}
	}
	return d
}

// LeastCount returns the least count or byte sum that meets threshold p
// of l, a limit of either (as Meets decides: ⌈value·p/100⌉), or
// math.MaxInt64 when none below 2⁶³ does. A store that compares counts
// where Meets cannot run (the cluster's script in Redis) compares them
// with it, in whole numbers.
func LeastCount(l *usage.Limit, p int) int64 {
	hi, lo := bits.Mul64(uint64(l.Value), uint64(p))
	if hi >= 100 {
		return math.MaxInt64
	}
	q, r := bits.Div64(hi, lo, 100)
	if r != 0 {
		q++ // q < 2⁶⁴/100: no wrap
	}
	return int64(min(q, math.MaxInt64))
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

// at returns w's value for scope: for usage.ScopeEachClient that of the
// client of slot, which it then has.
func (w *window) at(scope usage.LimitScope, slot int32) *value {
	if scope != usage.ScopeEachClient {
		return &w.total
	}
	if int(slot) >= len(w.clients) {
		w.clients = append(w.clients, make([]value, int(slot)+1-len(w.clients))...)
	}
	v := &w.clients[slot]
	v.has = true
	return v
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
	for _, o := range e.byOrg {
		for t := range o.limits() {
			if !t.limit.Enforced {
				continue
			}
			t.roll(now)
			if !t.announced {
				u.Limits = append(u.Limits, *t.limit)
				t.announced = true
			}
			u.Values = t.values(o, u.Values, true)
		}
	}
	for _, rs := range e.rolling {
		for _, r := range rs {
			if !r.limit.Enforced {
				continue
			}
			if !r.announced {
				u.Limits = append(u.Limits, *r.limit)
				r.announced = true
			}
			u.Values = r.valuesAt(now, u.Values, true, &e.changes)
		}
	}
	return u
}

// Enforced returns, as of now, every enforced limit of organization orgID
// (of all of them for "") and the value of its current window, per client
// for ScopeEachClient: where a subscriber to the changes starts from.
func (e *Evaluator) Enforced(now time.Time, orgID string) usage.LimitUpdate {
	var u usage.LimitUpdate
	add := func(o *org, rs []*rollingLimit) {
		if o != nil {
			for t := range o.limits() {
				if t.limit.Enforced {
					t.roll(now)
					u.Limits = append(u.Limits, *t.limit)
					u.Values = t.values(o, u.Values, false)
				}
			}
		}
		for _, r := range rs {
			if r.limit.Enforced {
				u.Limits = append(u.Limits, *r.limit)
				u.Values = r.valuesAt(now, u.Values, false, &e.changes)
			}
		}
	}
	if orgID != "" {
		add(e.byOrg[orgID], e.rolling[orgID])
		return u
	}
	for id, o := range e.byOrg {
		add(o, e.rolling[id])
	}
	for id, rs := range e.rolling {
		if e.byOrg[id] == nil {
			add(nil, rs)
		}
	}
	return u
}

// values appends the values of t, a limit of o, in its current window to
// vs: those changed since Changes last reported them if changed, marking
// them reported, or all.
func (t *tracked) values(o *org, vs []usage.LimitValue, changed bool) []usage.LimitValue {
	w := &t.windows[0]
	put := func(client string, v *value) {
		if changed {
			if v.sent == v.N+1 {
				return
			}
			v.sent = v.N + 1
		}
		vs = append(vs, usage.LimitValue{OrganizationID: t.limit.OrganizationID, LimitID: t.limit.ID, Version: t.limit.Version,
			Window: t.ivs[0], ClientID: client, Value: v.Metric(t.limit.Metric)})
	}
	if t.limit.Scope != usage.ScopeEachClient {
		put("", &w.total)
		return vs
	}
	for s := range w.clients {
		if w.clients[s].has {
			put(o.clients[s], &w.clients[s])
		}
	}
	return vs
}
