package limiteval

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/usaged/usaged/usage"
)

// Count is the value of one window of a limit: for a limit on each client,
// one client's. A store that keeps limits' values itself, outside an
// Evaluator (the cluster's counters, shared by its nodes), adds Counts as
// batches commit and compares them with Crossed.
type Count struct {
	Limit    *usage.Limit
	Window   usage.Interval // in the limit's zone
	ClientID string         // for usage.ScopeEachClient, else ""
	Sum      Sum
}

// Load returns the values of l's current window as of now and of the next
// one, from the counts rows answers (the store's query path): first the
// current window's, then the next's, for a limit on each client one per
// client with requests in it, ordered by client, and otherwise one each,
// zero when the window has none.
func Load(l usage.Limit, now time.Time, rows Rows) ([]Count, error) {
	loc, err := l.Window.Location()
	if err != nil {
		return nil, err
	}
	iv, err := l.Window.Current(now)
	if err != nil {
		return nil, err
	}
	var out []Count
	for range 2 {
		q, err := l.Query(iv, loc).Normalize()
		if err != nil {
			return nil, err
		}
		rs, err := rows(q)
		if err != nil {
			return nil, err
		}
		// The window's value, or for a limit on each client one per
		// client of the rows.
		sums := map[string]*Sum{}
		if l.Scope != usage.ScopeEachClient {
			sums[""] = &Sum{}
		}
		for i := range rs {
			var bytes int64
			if rs[i].Measures != nil {
				bytes = rs[i].Measures.ResponseBytes
			}
			client := ""
			if l.Scope == usage.ScopeEachClient {
				client = rs[i].ClientID
			}
			s := sums[client]
			if s == nil {
				s = &Sum{}
				sums[client] = s
			}
			s.Add(l.Metric, rs[i].Counts, bytes)
		}
		for _, client := range slices.Sorted(maps.Keys(sums)) {
			out = append(out, Count{Limit: &l, Window: iv, ClientID: client, Sum: *sums[client]})
		}
		if iv, err = l.Window.Current(iv.End); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Matcher finds the windows of limits that accepted events add to, as an
// Evaluator's Observe does but keeping no value: the values are kept by
// the caller. It is safe for concurrent use once built.
type Matcher struct {
	byOrg   map[string][]*matched
	rolling map[string][]*matched // limits of a rolling window, by organization
}

type matched struct {
	limit  usage.Limit
	filter *filter // nil for none
}

// NewMatcher returns a Matcher of limits, each normalized: Adds matches
// those of calendar windows, RollingAdds those of rolling ones.
func NewMatcher(limits []usage.Limit) *Matcher {
	m := &Matcher{byOrg: map[string][]*matched{}, rolling: map[string][]*matched{}}
	for _, l := range limits {
		x := &matched{limit: l, filter: newFilter(l.Filter)}
		if l.Window.Type == usage.WindowRolling {
			m.rolling[l.OrganizationID] = append(m.rolling[l.OrganizationID], x)
			continue
		}
		if _, err := l.Window.Current(time.Time{}); err != nil {
			continue
		}
		m.byOrg[l.OrganizationID] = append(m.byOrg[l.OrganizationID], x)
	}
	return m
}

// Limits returns the limits of m, of either kind of window.
func (m *Matcher) Limits() []usage.Limit {
	var out []usage.Limit
	for _, byOrg := range []map[string][]*matched{m.byOrg, m.rolling} {
		for _, ms := range byOrg {
			for _, x := range ms {
				out = append(out, x.limit)
			}
		}
	}
	return out
}

// RollingCount is what a batch of events adds to the window of a limit of
// a rolling window (of one client, for a limit on each client): a Sum per
// minute the events fall in.
type RollingCount struct {
	Limit    *usage.Limit
	ClientID string // for usage.ScopeEachClient, else ""
	Minutes  []MinuteSum
}

// MinuteSum is the Sum of a minute, in minutes since the Unix epoch
// (UnixMinute).
type MinuteSum struct {
	Minute int64
	Sum    Sum
}

// RollingAdds returns what events, accepted together at now, add to the
// rolling windows of m's limits, ordered by organization, limit and client,
// each one's minutes in order. An event counts in its own minute if that
// minute is in the window at now, the minute of now and the Minutes-1
// before it; one stamped ahead of now counts too, at once (as on the
// embedded store), and one older than the window counts nowhere, so that a
// window no event of the batch reaches is not in the result.
func (m *Matcher) RollingAdds(now time.Time, events []*usage.Event) []RollingCount {
	type key struct {
		l      *matched
		client string
	}
	sums := map[key]map[int64]*Sum{}
	at := usage.UnixMinute(now)
	for _, ev := range events {
		for _, x := range m.rolling[ev.OrganizationID] {
			k := usage.UnixMinute(ev.Time)
			if k <= at-int64(x.limit.Window.Minutes) || !x.filter.applies(&x.limit, ev) {
				continue
			}
			key := key{l: x}
			if x.limit.Scope == usage.ScopeEachClient {
				key.client = ev.ClientID
			}
			ms := sums[key]
			if ms == nil {
				ms = map[int64]*Sum{}
				sums[key] = ms
			}
			s := ms[k]
			if s == nil {
				s = &Sum{}
				ms[k] = s
			}
			s.Add(x.limit.Metric, usage.CountsFor(ev.Status), ev.ResponseBytes)
		}
	}
	out := make([]RollingCount, 0, len(sums))
	for k, ms := range sums {
		c := RollingCount{Limit: &k.l.limit, ClientID: k.client}
		for _, minute := range slices.Sorted(maps.Keys(ms)) {
			c.Minutes = append(c.Minutes, MinuteSum{Minute: minute, Sum: *ms[minute]})
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b RollingCount) int {
		return cmp.Or(strings.Compare(a.Limit.OrganizationID, b.Limit.OrganizationID), strings.Compare(a.Limit.ID, b.Limit.ID),
			strings.Compare(a.ClientID, b.ClientID))
	})
	return out
}

// Adds returns what events, accepted together at now, add to the windows
// of m's limits, one Count per window (and client, for a limit on each
// client) that they touch, ordered by organization, limit, window and
// client. As with Observe, only the window holding now and the next one
// count: an event before the current window, or after the next, adds to
// none.
func (m *Matcher) Adds(now time.Time, events []*usage.Event) []Count {
	type key struct {
		l      *matched
		start  int64
		client string
	}
	sums := map[key]*Count{}
	windows := map[*matched][2]usage.Interval{}
	for _, ev := range events {
		for _, x := range m.byOrg[ev.OrganizationID] {
			if !x.filter.applies(&x.limit, ev) {
				continue
			}
			ws, ok := windows[x]
			if !ok {
				cur, err := x.limit.Window.Current(now)
				if err != nil {
					continue
				}
				next, _ := x.limit.Window.Current(cur.End)
				ws = [2]usage.Interval{cur, next}
				windows[x] = ws
			}
			for _, iv := range ws {
				if ev.Time.Before(iv.Start) || !ev.Time.Before(iv.End) {
					continue
				}
				k := key{l: x, start: iv.Start.Unix()}
				if x.limit.Scope == usage.ScopeEachClient {
					k.client = ev.ClientID
				}
				c := sums[k]
				if c == nil {
					c = &Count{Limit: &x.limit, Window: iv, ClientID: k.client}
					sums[k] = c
				}
				c.Sum.Add(x.limit.Metric, usage.CountsFor(ev.Status), ev.ResponseBytes)
				break
			}
		}
	}
	out := make([]Count, 0, len(sums))
	for _, c := range sums {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(strings.Compare(a.Limit.OrganizationID, b.Limit.OrganizationID), strings.Compare(a.Limit.ID, b.Limit.ID),
			a.Window.Start.Compare(b.Window.Start), strings.Compare(a.ClientID, b.ClientID))
	})
	return out
}
