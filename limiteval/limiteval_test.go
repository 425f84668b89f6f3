package limiteval

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/usaged/usaged/bench"
	"github.com/usaged/usaged/usage"
)

// crossingKey is what the oracle knows a crossing by.
type crossingKey struct {
	limit     string
	window    int64 // start, Unix seconds
	client    string
	threshold int
}

func keyOf(c *Crossing) crossingKey {
	return crossingKey{c.Limit.ID, c.Window.Start.Unix(), c.ClientID, c.Threshold}
}

// arrival is an event as committed at now.
type arrival struct {
	now time.Time
	ev  usage.Event
}

// TestObserveMatchesOracle sends random events across DST changes and
// window ends to random limits, restarting the evaluator halfway, and checks
// every crossing found against the oracle's own reckoning: the first commit
// at which a window's value, counted by hand from the events sent, meets a
// threshold while that window is the current one or the next. The shapes
// are a few limits of two organizations over four clients, and many
// limits of one organization, most of them on one of its many clients,
// each loaded over a limit of the same ID that it replaces; each with an
// event a commit (Observe), and with commits of up to 64 events
// (ObserveAll); and clients that come and go over hour and day windows, so
// that most clients an organization had no longer have a value.
func TestObserveMatchesOracle(t *testing.T) {
	for _, s := range []shape{
		{name: "few", limits: 40, orgs: 2, clients: 4},
		{name: "manyClients", limits: 150, orgs: 1, clients: 60, clientScoped: 0.85, replace: true, oddMethod: true},
		{name: "fewCommits", limits: 40, orgs: 2, clients: 4, commits: true},
		{name: "manyClientsCommits", limits: 150, orgs: 1, clients: 60, clientScoped: 0.85, replace: true, oddMethod: true, commits: true},
		{name: "clientsComeAndGo", limits: 40, orgs: 2, clients: 8000/50 + 8, drift: 50, shortWindows: true, commits: true},
	} {
		for seed := range uint64(6) {
			t.Run(fmt.Sprint(s.name, "/", seed), func(t *testing.T) { testObserve(t, seed, s) })
		}
	}
}

// shape is what randomLimits and randomArrivals make.
type shape struct {
	name                  string
	limits, orgs, clients int
	clientScoped          float64 // the share of limits of scope client; 0 for one in three
	replace               bool    // load each limit over another of its ID
	commits               bool    // commit runs of events at once, with ObserveAll
	oddMethod             bool    // events and filters also of a method not among the common ones
	// drift, when not 0, has the events of eight clients at a time,
	// moving on by one every drift events.
	drift        int
	shortWindows bool // hour and day windows only
}

func testObserve(t *testing.T, seed uint64, s shape) {
	rng := rand.New(rand.NewPCG(seed, 99))
	start := time.Date(2026, 3, 28, 20, 0, 0, 0, time.UTC) // Berlin's 23-hour day follows
	limits := randomLimits(t, rng, start, s)
	arrivals := randomArrivals(rng, start, 8000, s)
	restart := len(arrivals) / 2
	// commitOf[k] is the first arrival of arrival k's commit; a commit's
	// events are committed at the time of its last.
	commitOf := make([]int, len(arrivals))
	for k := range arrivals {
		commitOf[k] = k
	}
	if s.commits {
		crng := rand.New(rand.NewPCG(seed, 7))
		for k := 0; k < len(arrivals); {
			n := 1 + crng.IntN(64)
			if k < restart && k+n > restart {
				n = restart - k // the restart is between commits
			}
			n = min(n, len(arrivals)-k)
			for j := k; j < k+n; j++ {
				commitOf[j] = k
				arrivals[j].now = arrivals[k+n-1].now
			}
			k += n
		}
	}

	// The oracle: every event sent adds to the window its time falls in;
	// a threshold is crossed at the first arrival that brings a window's
	// value to it while that window is the current one or the next at the
	// arrival's commit.
	type tallyKey struct {
		limit  string
		window int64
		client string
	}
	tallies := map[tallyKey]*tally{}
	want := map[crossingKey]int{}          // the arrival that crossed it
	wantValue := map[crossingKey]float64{} // the metric's value then
	for k, a := range arrivals {
		for _, l := range limits {
			if !handMatch(&l, &a.ev) {
				continue
			}
			client := ""
			if l.Scope == usage.ScopeEachClient {
				client = a.ev.ClientID
			}
			iv := currentAndNext(t, &l, a.ev.Time)[0]
			tk := tallyKey{l.ID, iv.Start.Unix(), client}
			v := tallies[tk]
			if v == nil {
				v = &tally{}
				tallies[tk] = v
			}
			v.add(&l, &a.ev)
			if ws := currentAndNext(t, &l, a.now); !iv.Start.Equal(ws[0].Start) && !iv.Start.Equal(ws[1].Start) {
				continue
			}
			for _, p := range l.Thresholds {
				ck := crossingKey{l.ID, iv.Start.Unix(), client, p}
				if _, ok := want[ck]; !ok && handMeets(&l, *v, p) {
					want[ck], wantValue[ck] = k, handValue(&l, *v)
				}
			}
		}
	}

	got := map[crossingKey]int{}
	gotValue := map[crossingKey]float64{}
	record := func(cs []Crossing, k int) {
		for i := range cs {
			ck := keyOf(&cs[i])
			// An error rate may fall back below a threshold it met: a
			// restart then finds the crossing again when it rises, by
			// the same ID, which is what downstream dedupes by.
			if prev, ok := got[ck]; ok && k >= 0 && prev >= 0 && !(prev < restart && k >= restart && cs[i].Limit.Metric == usage.LimitErrorRate) {
				t.Fatalf("%+v found twice, at %d and %d", ck, prev, k)
			}
			if _, ok := got[ck]; !ok {
				got[ck], gotValue[ck] = k, cs[i].Value
			}
		}
	}
	e := New()
	load := func(now time.Time, sent []arrival) {
		e = New()
		if s.replace {
			// Replacing a limit of another scope and client moves it
			// between the evaluator's indexes; the other, never
			// observed, must leave no trace.
			for _, l := range limits {
				o := l
				o.Scope, o.ClientID = (l.Scope+1)%3, ""
				if o.Scope == usage.ScopeClient {
					o.ClientID = "c0"
				}
				if _, err := e.Set(o, now, func(usage.Query) ([]usage.Row, error) { return nil, nil }); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, l := range limits {
			cs, err := e.Set(l, now, func(q usage.Query) ([]usage.Row, error) { return handRows(&l, q, sent), nil })
			if err != nil {
				t.Fatal(err)
			}
			record(cs, -1) // found again at a restart: no new crossing
		}
	}
	load(arrivals[0].now, nil)
	var found []Crossing
	var commit []*usage.Event
	for k, a := range arrivals {
		if k == restart {
			load(a.now, arrivals[:k])
		}
		if !s.commits {
			found = e.Observe(a.now, &a.ev, found[:0])
			record(found, k)
			continue
		}
		if commit = append(commit, &arrivals[k].ev); k+1 == len(arrivals) || commitOf[k+1] != commitOf[k] {
			found = e.ObserveAll(a.now, commit, found[:0])
			record(found, commitOf[k])
			commit = commit[:0]
		}
	}

	for ck, k := range want {
		g, ok := got[ck]
		switch {
		case !ok:
			t.Errorf("%+v crossed at arrival %d, not found", ck, k)
		case g >= 0 && g != commitOf[k]:
			t.Errorf("%+v crossed at arrival %d, found at %d", ck, k, g)
		case g >= 0 && gotValue[ck] != wantValue[ck]:
			t.Errorf("%+v crossed at arrival %d at %v, found at %v", ck, k, wantValue[ck], gotValue[ck])
		case g < 0 && k >= restart:
			t.Errorf("%+v crossed at arrival %d, after the restart, reported by the restart", ck, k)
		}
	}
	for ck, g := range got {
		if _, ok := want[ck]; !ok {
			t.Errorf("%+v found at %d, never crossed", ck, g)
		}
	}
	if len(want) < 50 {
		t.Errorf("only %d crossings: the test exercises too little", len(want))
	}
	t.Logf("%d limits, %d arrivals, %d crossings", len(limits), len(arrivals), len(want))
}

var locs = map[string]*time.Location{}

func location(t *testing.T, name string) *time.Location {
	if loc, ok := locs[name]; ok {
		return loc
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	locs[name] = loc
	return loc
}

func currentAndNext(t *testing.T, l *usage.Limit, now time.Time) []usage.Interval {
	loc := location(t, l.Window.TimeZone)
	// By hand: truncate in the zone, a skipped midnight aside (none in
	// these zones and dates).
	day := func(t time.Time) time.Time {
		t = t.In(loc)
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	}
	var s, e time.Time
	switch l.Window.Type {
	case usage.WindowHour:
		s = now.Truncate(time.Hour) // whole-hour zones
		e = s.Add(time.Hour)
	case usage.WindowDay:
		s = day(now)
		e = time.Date(s.Year(), s.Month(), s.Day()+1, 0, 0, 0, 0, loc)
	case usage.WindowWeek:
		d := day(now)
		s = time.Date(d.Year(), d.Month(), d.Day()-(int(d.Weekday())+6)%7, 0, 0, 0, 0, loc)
		e = time.Date(s.Year(), s.Month(), s.Day()+7, 0, 0, 0, 0, loc)
	case usage.WindowMonth:
		d := now.In(loc)
		s = time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, loc)
		e = time.Date(d.Year(), d.Month()+1, 1, 0, 0, 0, 0, loc)
	}
	next := currentAt(t, l, e)
	return []usage.Interval{{Start: s, End: e}, next}
}

func currentAt(t *testing.T, l *usage.Limit, at time.Time) usage.Interval {
	loc := location(t, l.Window.TimeZone)
	switch l.Window.Type {
	case usage.WindowHour:
		return usage.Interval{Start: at, End: at.Add(time.Hour)}
	case usage.WindowDay:
		d := at.In(loc)
		return usage.Interval{Start: at, End: time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, loc)}
	case usage.WindowWeek:
		d := at.In(loc)
		return usage.Interval{Start: at, End: time.Date(d.Year(), d.Month(), d.Day()+7, 0, 0, 0, 0, loc)}
	}
	d := at.In(loc)
	return usage.Interval{Start: at, End: time.Date(d.Year(), d.Month()+1, 1, 0, 0, 0, 0, loc)}
}

func handMatch(l *usage.Limit, ev *usage.Event) bool {
	if ev.OrganizationID != l.OrganizationID || l.Scope == usage.ScopeClient && ev.ClientID != l.ClientID {
		return false
	}
	in := func(list []string, s string) bool { return len(list) == 0 || slices.Contains(list, s) }
	return in(l.Filter.UserIDs, ev.UserID) && in(l.Filter.TemplateURIs, ev.TemplateURI) && in(l.Filter.HTTPMethods, ev.HTTPMethod)
}

// tally is the oracle's count of what a metric needs.
type tally struct{ requests, errors, match, bytes int64 }

func (v *tally) add(l *usage.Limit, ev *usage.Event) {
	v.requests++
	if ev.Status >= 400 && ev.Status < 600 {
		v.errors++
	}
	switch l.Metric {
	case usage.LimitStatus400:
		if ev.Status >= 400 && ev.Status < 500 {
			v.match++
		}
	case usage.LimitStatus429:
		if ev.Status == 429 {
			v.match++
		}
	case usage.LimitStatus500:
		if ev.Status >= 500 {
			v.match++
		}
	default:
		v.match++
	}
	v.bytes += ev.ResponseBytes
}

func handValue(l *usage.Limit, v tally) float64 {
	switch l.Metric {
	case usage.LimitErrorRate:
		return float64(v.errors) / float64(v.requests)
	case usage.LimitResponseBytes:
		return float64(v.bytes)
	}
	return float64(v.match)
}

func handMeets(l *usage.Limit, v tally, p int) bool {
	switch l.Metric {
	case usage.LimitErrorRate:
		return v.requests > 0 && float64(v.errors)/float64(v.requests)*100 >= l.Value*float64(p)
	case usage.LimitResponseBytes:
		return float64(v.bytes)*100 >= l.Value*float64(p)
	}
	return float64(v.match)*100 >= l.Value*float64(p)
}

// handRows answers a limit's query over the events sent, by hand: one row,
// or one per client.
func handRows(l *usage.Limit, q usage.Query, sent []arrival) []usage.Row {
	byClient := map[string]*usage.Row{}
	for _, a := range sent {
		ev := &a.ev
		if ev.Time.Before(q.Interval.Start) || !ev.Time.Before(q.Interval.End) || !handMatch(l, ev) {
			continue
		}
		key := ""
		if l.Scope == usage.ScopeEachClient {
			key = ev.ClientID
		}
		r := byClient[key]
		if r == nil {
			r = &usage.Row{ClientID: key, Measures: &usage.Measures{}}
			byClient[key] = r
		}
		r.Requests++
		switch {
		case ev.Status >= 200 && ev.Status < 300:
			r.Status200++
		case ev.Status >= 400 && ev.Status < 500:
			r.Status400++
			if ev.Status == 429 {
				r.Status429++
			}
		case ev.Status >= 500:
			r.Status500++
		}
		r.Measures.ResponseBytes += ev.ResponseBytes
	}
	var rows []usage.Row
	for _, r := range byClient {
		rows = append(rows, *r)
	}
	return rows
}

var zones = []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney"}

func randomLimits(t *testing.T, rng *rand.Rand, now time.Time, s shape) []usage.Limit {
	var ls []usage.Limit
	for i := range s.limits {
		l := usage.Limit{
			ID: fmt.Sprintf("lim%02d", i), OrganizationID: fmt.Sprintf("org%d", rng.IntN(s.orgs)), Name: "l",
			Scope:   usage.LimitScope(rng.IntN(3)),
			Metric:  []usage.LimitMetric{usage.LimitRequests, usage.LimitStatus400, usage.LimitStatus429, usage.LimitStatus500, usage.LimitErrorRate, usage.LimitResponseBytes}[rng.IntN(6)],
			Window:  usage.Window{Type: usage.WindowType(rng.IntN(4)), TimeZone: zones[rng.IntN(len(zones))]},
			Version: int64(1 + rng.IntN(3)),
		}
		if s.shortWindows {
			l.Window.Type = []usage.WindowType{usage.WindowHour, usage.WindowDay}[rng.IntN(2)]
		}
		if s.clientScoped > 0 {
			l.Scope = usage.LimitScope(rng.IntN(2) * 2)
			if rng.Float64() < s.clientScoped {
				l.Scope = usage.ScopeClient
			}
		}
		if l.Scope == usage.ScopeClient {
			l.ClientID = fmt.Sprintf("c%d", rng.IntN(s.clients))
		}
		if rng.IntN(3) == 0 {
			l.Filter.HTTPMethods = []string{"GET"}
			if s.oddMethod {
				l.Filter.HTTPMethods = [][]string{{"GET"}, {"PURGE"}, {"POST", "PURGE"}}[rng.IntN(3)]
			}
		}
		if rng.IntN(4) == 0 {
			l.Filter.TemplateURIs = []string{"a/{id}", "b"}
		}
		switch l.Metric {
		case usage.LimitErrorRate:
			l.Value = []float64{0.1, 0.25, 0.5}[rng.IntN(3)]
		case usage.LimitResponseBytes:
			l.Value = float64(1000 * (1 + rng.IntN(500)))
		default:
			l.Value = float64(1 + rng.IntN(300))
		}
		for _, p := range []int{10, 50, 80, 100, 150, 300} {
			if rng.IntN(2) == 0 {
				l.Thresholds = append(l.Thresholds, p)
			}
		}
		l, err := l.Normalize(now)
		if err != nil {
			t.Fatalf("%+v: %v", l, err)
		}
		ls = append(ls, l)
	}
	return ls
}

// randomArrivals returns n events committed in time order, some late (up
// to two hours) and some ahead of the clock (up to five minutes).
func randomArrivals(rng *rand.Rand, start time.Time, n int, s shape) []arrival {
	out := make([]arrival, n)
	methods := []string{"GET", "POST"}
	if s.oddMethod {
		methods = append(methods, "PURGE")
	}
	now := start
	for i := range out {
		now = now.Add(time.Duration(rng.IntN(120)) * time.Second)
		at := now.Add(-time.Duration(rng.IntN(60)) * time.Second)
		switch rng.IntN(10) {
		case 0:
			at = now.Add(-time.Duration(rng.IntN(7200)) * time.Second)
		case 1:
			at = now.Add(time.Duration(rng.IntN(300)) * time.Second)
		}
		out[i] = arrival{now: now, ev: usage.Event{
			ID: fmt.Sprint(i), Time: at, OrganizationID: fmt.Sprintf("org%d", rng.IntN(s.orgs)),
			ClientID: fmt.Sprintf("c%d", rng.IntN(s.clients)), UserID: fmt.Sprintf("u%d", rng.IntN(3)),
			TemplateURI: []string{"a/{id}", "b", "c"}[rng.IntN(3)], HTTPMethod: methods[rng.IntN(len(methods))],
			Status:        []int{200, 200, 200, 201, 302, 400, 404, 429, 500, 503}[rng.IntN(10)],
			ResponseBytes: int64(rng.IntN(5000)),
		}}
	}
	if s.drift > 0 {
		for i := range out {
			out[i].ev.ClientID = fmt.Sprintf("c%d", i/s.drift+rng.IntN(8))
		}
	}
	return out
}

// TestCrossingID checks that a crossing's ID depends on each part of what
// it names and on nothing else.
func TestCrossingID(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	base := Crossing{Limit: usage.Limit{ID: "l1", OrganizationID: "o", Version: 3, Value: 100}, Window: usage.Interval{Start: at, End: at.AddDate(0, 1, 0)}, ClientID: "c", Threshold: 80, Value: 81}
	same := base
	same.Value, same.Limit.Value, same.Limit.Name = 95, 200, "renamed"
	if base.ID() != same.ID() {
		t.Error("the value found or the limit's fields other than its id and version change the ID")
	}
	ids := map[string]string{base.ID(): "base"}
	for name, f := range map[string]func(*Crossing){
		"limit":     func(c *Crossing) { c.Limit.ID = "l2" },
		"org":       func(c *Crossing) { c.Limit.OrganizationID = "p" },
		"version":   func(c *Crossing) { c.Limit.Version = 4 },
		"window":    func(c *Crossing) { c.Window.Start = at.AddDate(0, 1, 0) },
		"client":    func(c *Crossing) { c.ClientID = "d" },
		"threshold": func(c *Crossing) { c.Threshold = 100 },
		"split":     func(c *Crossing) { c.Limit.ID, c.Limit.OrganizationID = "o", "l1" },
	} {
		c := base
		f(&c)
		if prev, ok := ids[c.ID()]; ok {
			t.Errorf("%s: same ID as %s", name, prev)
		}
		ids[c.ID()] = name
	}
}

// BenchmarkObserve counts accepted events against tracked limits: the cost
// a commit pays per event. spread has 1,000 organizations with ten limits
// each, 10,000 in all; oneOrg has 1,000 limits on one organization, nine in
// ten of them on one of its 900 clients, so that an event can match only
// its own client's and the organization's; ingestMix has BenchmarkIngest's
// 10,000 limits and events. cpu-ns/op is the process's CPU time per event,
// which a shared machine's other work does not inflate.
func BenchmarkObserve(b *testing.B) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	observe := func(b *testing.B, limits func(i int) usage.Limit, n int, event func(i int) usage.Event) {
		e := New()
		for i := range n {
			l, err := limits(i).Normalize(now)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Set(l, now, func(usage.Query) ([]usage.Row, error) { return nil, nil }); err != nil {
				b.Fatal(err)
			}
		}
		evs := make([]usage.Event, 5000)
		for i := range evs {
			evs[i] = event(i)
		}
		var found []Crossing
		b.ReportAllocs()
		cpu := bench.CPUTime()
		for i := 0; b.Loop(); i++ {
			found = e.Observe(now, &evs[i%len(evs)], found[:0])
		}
		b.ReportMetric(float64((bench.CPUTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	b.Run("ingestMix", func(b *testing.B) {
		evs, ls := ingestMix(b, now, 5000, 10_000, concentrated)
		observe(b, func(i int) usage.Limit { return ls[i] }, len(ls), func(i int) usage.Event { return evs[i] })
	})
	// One op is still one event, of a commit of 5,000 (ObserveAll).
	b.Run("ingestMixCommit", func(b *testing.B) {
		evs, ls := ingestMix(b, now, 5000, 10_000, concentrated)
		e := New()
		for _, l := range ls {
			if _, err := e.Set(l, now, func(usage.Query) ([]usage.Row, error) { return nil, nil }); err != nil {
				b.Fatal(err)
			}
		}
		commit := make([]*usage.Event, len(evs))
		for i := range evs {
			commit[i] = &evs[i]
		}
		var found []Crossing
		b.ReportAllocs()
		cpu := bench.CPUTime()
		for b.Loop() {
			found = e.ObserveAll(now, commit, found[:0])
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
		b.ReportMetric(float64((bench.CPUTime()-cpu).Nanoseconds())/float64(b.N*len(evs)), "cpu-ns/event")
	})
	b.Run("spread", func(b *testing.B) {
		observe(b, func(i int) usage.Limit {
			return usage.Limit{ID: fmt.Sprint(i), OrganizationID: fmt.Sprintf("org%d", i%1000), Name: "l", Scope: usage.LimitScope(i % 3),
				ClientID: map[bool]string{true: "c1"}[i%3 == 1], Metric: usage.LimitRequests, Window: usage.Window{Type: usage.WindowType(i % 4)},
				Value: 1 << 40, Thresholds: []int{50, 80, 100}}
		}, 10000, func(i int) usage.Event {
			return usage.Event{ID: fmt.Sprint(i), Time: now, OrganizationID: fmt.Sprintf("org%d", i%1000), ClientID: fmt.Sprintf("c%d", i%5), Status: 200}
		})
	})
	b.Run("oneOrg", func(b *testing.B) {
		observe(b, func(i int) usage.Limit {
			l := usage.Limit{ID: fmt.Sprint(i), OrganizationID: "org", Name: "l", Metric: usage.LimitRequests,
				Window: usage.Window{Type: usage.WindowType(i % 4)}, Value: 1 << 40, Thresholds: []int{50, 80, 100}}
			switch i % 10 {
			case 0:
				l.Scope = usage.LimitScope(i / 10 % 2 * 2) // organization or eachClient
			default:
				l.Scope, l.ClientID = usage.ScopeClient, fmt.Sprintf("c%d", i/10*9+i%10-1)
			}
			return l
		}, 1000, func(i int) usage.Event {
			return usage.Event{ID: fmt.Sprint(i), Time: now, OrganizationID: "org", ClientID: fmt.Sprintf("c%d", i%900), Status: 200}
		})
	})
}

// TestChangesRemoved checks that Changes reports a limit removed, or set
// again no longer enforced, of each scope, once, and that the others stay.
func TestChangesRemoved(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	none := func(usage.Query) ([]usage.Row, error) { return nil, nil }
	limit := func(id string, scope usage.LimitScope, enforced bool, version int64) usage.Limit {
		l := usage.Limit{ID: id, OrganizationID: "o", Name: id, Scope: scope, Metric: usage.LimitRequests, Value: 50,
			Window: usage.Window{Type: usage.WindowHour}, Enforced: enforced, Version: version}
		if scope == usage.ScopeClient {
			l.ClientID = "c2"
		}
		l, err := l.Normalize(now)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	e := New()
	for _, l := range []usage.Limit{limit("org", usage.ScopeOrganization, true, 1), limit("org2", usage.ScopeOrganization, true, 1),
		limit("each", usage.ScopeEachClient, true, 1), limit("each2", usage.ScopeEachClient, true, 1), limit("client", usage.ScopeClient, true, 1)} {
		if _, err := e.Set(l, now, none); err != nil {
			t.Fatal(err)
		}
	}
	if u := e.Changes(now); len(u.Limits) != 5 || len(u.Removed) != 0 {
		t.Fatalf("first changes: %d limits, %d removed", len(u.Limits), len(u.Removed))
	}
	e.Remove("o", "client")
	// The last of their scope's: nothing moves over them.
	for _, l := range []usage.Limit{limit("org2", usage.ScopeOrganization, false, 2), limit("each2", usage.ScopeEachClient, false, 2)} {
		if _, err := e.Set(l, now, none); err != nil {
			t.Fatal(err)
		}
	}
	u := e.Changes(now)
	var removed []string
	for _, l := range u.Removed {
		removed = append(removed, l.ID)
	}
	slices.Sort(removed)
	if !slices.Equal(removed, []string{"client", "each2", "org2"}) || len(u.Limits) != 0 || e.Len() != 4 {
		t.Errorf("removed %v, %d limits announced, %d tracked; want [client each2 org2], 0, 4", removed, len(u.Limits), e.Len())
	}
	if u := e.Changes(now); len(u.Removed) != 0 {
		t.Errorf("removed again: %v", u.Removed)
	}
}
