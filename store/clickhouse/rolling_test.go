package clickhouse_test

import (
	"context"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/store/clickhouse"
	"github.com/usaged/usaged/usage"
)

// vclock is the time the test's batches count at: real time, moved on by
// jumps, so that a test of rolling windows needs no real minutes. It maps
// a commit time to the same time for as long as the test runs (a jump only
// changes what comes after it), so that a batch's owner and its recovery
// agree.
type vclock struct {
	mu   sync.Mutex
	segs []struct{ real, virt time.Time } // ascending by real
}

func (c *vclock) at(real time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.segs[0]
	for _, x := range c.segs {
		if !real.Before(x.real) {
			s = x
		}
	}
	return s.virt.Add(real.Sub(s.real))
}

func (c *vclock) now() time.Time { return c.at(time.Now()) }

// jump makes the present to.
func (c *vclock) jump(to time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.segs = append(c.segs, struct{ real, virt time.Time }{time.Now(), to})
}

// countLog is every count of a batch into the limits, in the order the
// claim store ran them (the hook holds mu across the script), and every
// seeding, in the order of the test's steps.
type countLog struct {
	mu    sync.Mutex
	ops   []countOp
	oks   map[string]int // per batch, the counts that added
	dones int            // counts that found the batch counted
}

// countOp is a batch counted at at with its events, or a limit version
// seeded at at.
type countOp struct {
	batch  string
	at     time.Time
	events []usage.Event
	seeded *usage.Limit
}

func (lg *countLog) hook(batch string, at time.Time, evs []*usage.Event) func(string) {
	lg.mu.Lock()
	return func(res string) {
		defer lg.mu.Unlock()
		if res == "done" {
			lg.dones++
		}
		if res != "ok" {
			return
		}
		op := countOp{batch: batch, at: at}
		for _, ev := range evs {
			op.events = append(op.events, *ev)
		}
		lg.ops = append(lg.ops, op)
		lg.oks[batch]++
	}
}

// rollingNode opens a node evaluating the fixture's limits at the test's
// clock, its counts logged, with hook as its failpoints (nil: none).
func (f *limitsFixture) rollingNode(clk *vclock, lg *countLog, hook func(step string) bool) (*clickhouse.Store, *clickhouse.Limits) {
	f.t.Helper()
	if hook == nil {
		hook = func(string) bool { return false }
	}
	s, err := clickhouse.OpenWithHook(context.Background(), f.cfg, hook)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { s.Close() })
	lim, err := s.EvaluateLimitsWithHooks(f.t.Context(), clickhouse.LimitsConfig{
		Outbox: f.outbox,
		Limits: func(context.Context) ([]usage.Limit, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return slices.Clone(f.limits), nil
		},
		Now: clk.now,
	}, clickhouse.LimitsHooks{Clock: clk.at, Count: lg.hook})
	if err != nil {
		f.t.Fatal(err)
	}
	return s, lim
}

// rcrossing is a notification of a rolling limit as the test reads it.
type rcrossing struct {
	limit     string
	version   int64
	window    string
	client    string
	threshold int
	value     string
}

func (f *limitsFixture) rollingNotified() []rcrossing {
	var out []rcrossing
	for _, p := range f.payloads() {
		out = append(out, rcrossing{p.LimitID, p.LimitVersion, p.WindowStart, p.ClientID, p.Threshold, fmt.Sprintf("%.6f", p.Value)})
	}
	slices.SortFunc(out, func(a, b rcrossing) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return out
}

// The oracle: the rule of docs/limits.md ("Rolling windows", the cluster)
// by hand, from the accepted events, each batch's time and the order the
// batches were counted in.

// handSum is a window's or a minute's count, requests and errors.
type handSum struct{ n, r, e int64 }

// handCounter is the minutes and marks of one rule and client.
type handCounter struct {
	minutes map[int64]handSum
	version int64
	met     map[int]bool // by threshold
	at      int64        // the minute of the marks
}

type rollingOracle struct {
	limits   map[string]usage.Limit // current versions, by id
	counters map[string]*handCounter
	want     []rcrossing
}

// ruleOf names a limit's rule by hand.
func ruleOf(l *usage.Limit, client string) string {
	return fmt.Sprint(l.OrganizationID, "|", l.ID, "|", l.Scope, "|", l.ClientID, "|", l.Metric, "|", l.Window.Minutes, "|", l.Filter, "|", client)
}

func minuteOf(t time.Time) int64 {
	m := t.Unix() / 60
	if t.Unix()%60 < 0 {
		m--
	}
	return m
}

// handCounts returns what ev adds to a limit of metric m.
func handCounts(m usage.LimitMetric, ev *usage.Event) handSum {
	s := handSum{r: 1}
	if ev.Status >= 400 && ev.Status < 600 {
		s.e = 1
	}
	switch m {
	case usage.LimitRequests:
		s.n = 1
	case usage.LimitStatus200:
		if ev.Status >= 200 && ev.Status < 300 {
			s.n = 1
		}
	}
	return s
}

func handApplies(l *usage.Limit, ev *usage.Event) bool {
	if ev.OrganizationID != l.OrganizationID || l.Scope == usage.ScopeClient && ev.ClientID != l.ClientID {
		return false
	}
	f := l.Filter
	return (len(f.UserIDs) == 0 || slices.Contains(f.UserIDs, ev.UserID)) &&
		(len(f.TemplateURIs) == 0 || slices.Contains(f.TemplateURIs, ev.TemplateURI)) &&
		(len(f.HTTPMethods) == 0 || slices.Contains(f.HTTPMethods, ev.HTTPMethod))
}

// handMeets decides p% of l by hand: n·100 ≥ value·p for counts, and for an
// error rate (the test's values are k/4) errors·100·4 ≥ k·p·requests, no
// request meeting nothing.
func handMeets(l *usage.Limit, s handSum, p int) bool {
	if l.Metric == usage.LimitErrorRate {
		k := int64(l.Value * 4)
		return s.r > 0 && s.e*400 >= k*int64(p)*s.r
	}
	hi, lo := bits.Mul64(uint64(s.n), 100)
	vhi, vlo := bits.Mul64(uint64(l.Value), uint64(p))
	return hi > vhi || hi == vhi && lo >= vlo
}

func handValue(l *usage.Limit, s handSum) string {
	if l.Metric != usage.LimitErrorRate {
		return fmt.Sprintf("%.6f", float64(s.n))
	}
	if s.r == 0 {
		return fmt.Sprintf("%.6f", 0.0)
	}
	return fmt.Sprintf("%.6f", float64(s.e)/float64(s.r))
}

// windowAt is the rolling window of l at t, its start as notified.
func windowAt(l *usage.Limit, t time.Time) string {
	loc, _ := time.LoadLocation(l.Window.TimeZone)
	end := time.Unix(minuteOf(t)*60+60, 0)
	return end.Add(-time.Duration(l.Window.Minutes) * time.Minute).In(loc).Format(time.RFC3339)
}

func (o *rollingOracle) counter(l *usage.Limit, client string) *handCounter {
	k := ruleOf(l, client)
	c := o.counters[k]
	if c == nil {
		c = &handCounter{minutes: map[int64]handSum{}, met: map[int]bool{}}
		o.counters[k] = c
	}
	return c
}

// window is c's sum over the minutes after m−span, those ahead included.
func (c *handCounter) window(m int64, span int) handSum {
	var s handSum
	for k, x := range c.minutes {
		if k > m-int64(span) {
			s.n, s.r, s.e = s.n+x.n, s.r+x.r, s.e+x.e
		}
	}
	return s
}

// seed is the seeding of l, a new version, at t: every threshold the
// window meets is notified, named by the window of l.Updated, and the
// marks are the version's, of t's minute.
func (o *rollingOracle) seed(l usage.Limit, t time.Time) {
	o.limits[l.ID] = l
	m := minuteOf(t)
	prefix := ruleOf(&l, "")
	for k, c := range o.counters {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		client := strings.TrimPrefix(k, prefix)
		s := c.window(m, l.Window.Minutes)
		c.version, c.met, c.at = l.Version, map[int]bool{}, m
		for _, p := range l.Thresholds {
			if handMeets(&l, s, p) {
				c.met[p] = true
				o.want = append(o.want, rcrossing{l.ID, l.Version, windowAt(&l, l.Updated), client, p, handValue(&l, s)})
			}
		}
	}
}

// count is a batch of events counted at at.
func (o *rollingOracle) count(at time.Time, events []usage.Event) {
	m := minuteOf(at)
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range o.limits {
			if !yield(id) {
				return
			}
		}
	}) {
		l := o.limits[id]
		adds := map[string]map[int64]handSum{} // by client, minute
		for i := range events {
			ev := &events[i]
			k := minuteOf(ev.Time)
			if k <= m-int64(l.Window.Minutes) || !handApplies(&l, ev) {
				continue
			}
			client := ""
			if l.Scope == usage.ScopeEachClient {
				client = ev.ClientID
			}
			if adds[client] == nil {
				adds[client] = map[int64]handSum{}
			}
			s, x := adds[client][k], handCounts(l.Metric, ev)
			adds[client][k] = handSum{s.n + x.n, s.r + x.r, s.e + x.e}
		}
		for client, minutes := range adds {
			c := o.counter(&l, client)
			for k := range c.minutes {
				if k <= m-int64(l.Window.Minutes) {
					delete(c.minutes, k)
				}
			}
			before := c.window(m, l.Window.Minutes)
			if c.version != l.Version {
				c.version, c.met = l.Version, map[int]bool{}
			}
			if c.at != m {
				for _, p := range l.Thresholds {
					if c.met[p] && !handMeets(&l, before, p) {
						delete(c.met, p)
					}
				}
			}
			c.at = m
			for k, x := range minutes {
				s := c.minutes[k]
				c.minutes[k] = handSum{s.n + x.n, s.r + x.r, s.e + x.e}
			}
			after := c.window(m, l.Window.Minutes)
			for _, p := range l.Thresholds {
				if !c.met[p] && handMeets(&l, after, p) {
					c.met[p] = true
					o.want = append(o.want, rcrossing{l.ID, l.Version, windowAt(&l, at), client, p, handValue(&l, after)})
				}
			}
		}
	}
}

// TestRollingLimitsAcrossNodes evaluates limits of rolling windows — of one
// to five minutes, on the organization, a client and each client, of
// requests, 2xx and error rates, with filters — on three nodes sharing the
// servers, through phases of a clock the test moves a minute or two at a
// time: events late and ahead of the clock, sent with overlapping
// duplicates to the nodes at once and retried on another, a node that dies
// after its commit point and one after counting (other nodes' recoveries
// finish both), new versions that keep the rule (their marks start empty)
// and one that changes it, and a limit created midway. Every crossing the
// hand count implies — from the accepted events, each batch's time and
// the order the claim store counted the batches in — is in the outbox
// exactly once, and no other; no batch adds twice; and each limit's
// status is the hand count's window at the end.
func TestRollingLimitsAcrossNodes(t *testing.T) {
	f := newLimitsFixture(t)
	base := time.Now().Truncate(time.Minute).Add(2 * time.Minute)
	clk := &vclock{}
	clk.jump(base.Add(time.Second))
	lg := &countLog{oks: map[string]int{}}
	a, limA := f.rollingNode(clk, lg, nil)
	b, limB := f.rollingNode(clk, lg, nil)
	c, limC := f.rollingNode(clk, lg, nil)
	nodes := []*clickhouse.Store{a, b, c}
	lims := []*clickhouse.Limits{limA, limB, limC}

	rolling := func(minutes int, zone string) usage.Window {
		return usage.Window{Type: usage.WindowRolling, Minutes: minutes, TimeZone: zone}
	}
	var versions int64
	put := func(on *clickhouse.Limits, l usage.Limit) usage.Limit {
		t.Helper()
		versions++
		l.Version, l.Updated = versions, clk.now()
		l = f.put(on, l)
		lg.mu.Lock()
		lg.ops = append(lg.ops, countOp{at: clk.now(), seeded: &l})
		lg.mu.Unlock()
		return l
	}
	limits := map[string]usage.Limit{}
	for i, l := range []usage.Limit{
		{ID: "r1-total", OrganizationID: "org-a", Metric: usage.LimitRequests, Scope: usage.ScopeOrganization,
			Window: rolling(1, ""), Value: 20, Thresholds: []int{50, 100}},
		{ID: "r2-each", OrganizationID: "org-a", Metric: usage.LimitRequests, Scope: usage.ScopeEachClient,
			Window: rolling(2, ""), Value: 8, Thresholds: []int{50, 100, 150}},
		{ID: "r2-err", OrganizationID: "org-a", Metric: usage.LimitErrorRate, Scope: usage.ScopeOrganization,
			Window: rolling(2, ""), Value: 0.5, Thresholds: []int{50, 100}},
		{ID: "r3-posts", OrganizationID: "org-b", Metric: usage.LimitRequests, Scope: usage.ScopeOrganization,
			Window: rolling(3, ""), Value: 10, Thresholds: []int{30, 100}, Filter: usage.LimitFilter{HTTPMethods: []string{"POST"}}},
		{ID: "r5-client", OrganizationID: "org-b", Metric: usage.LimitStatus200, Scope: usage.ScopeClient, ClientID: "client-1",
			Window: rolling(5, "Asia/Tokyo"), Value: 12, Thresholds: []int{25, 75, 100}},
		{ID: "r4-user", OrganizationID: "org-b", Metric: usage.LimitErrorRate, Scope: usage.ScopeEachClient,
			Window: rolling(4, ""), Value: 0.25, Thresholds: []int{50, 100}, Filter: usage.LimitFilter{UserIDs: []string{"user-1"}}},
	} {
		l.Name = l.ID
		limits[l.ID] = put(lims[i%3], l)
	}

	rng := rand.New(rand.NewPCG(7, 11))
	distinct := map[string]usage.Event{}
	perOrg := map[string]int{}
	seq := 0
	// events returns n events of org around the minute at: each one's
	// minute that of at plus one of deltas.
	events := func(org string, n int, at time.Time, deltas []int) []usage.Event {
		var out []usage.Event
		for range n {
			seq++
			ev := usage.Event{
				ID: fmt.Sprintf("%s-ev-%d", org, seq), OrganizationID: org, ClientID: fmt.Sprintf("client-%d", rng.IntN(3)),
				ClientName: "a client", UserID: fmt.Sprintf("user-%d", rng.IntN(2)), TemplateURI: "api/v2/things",
				HTTPMethod: []string{"GET", "GET", "POST"}[rng.IntN(3)], Status: []int{200, 200, 201, 404, 500, 429}[rng.IntN(6)],
				Time: at.Truncate(time.Minute).Add(time.Duration(deltas[rng.IntN(len(deltas))])*time.Minute + time.Duration(rng.IntN(60_000))*time.Millisecond),
			}
			out = append(out, ev)
		}
		return out
	}
	from := base.Add(-24 * time.Hour)
	send := func(s *clickhouse.Store, evs []usage.Event) error {
		_, err := s.Append(context.Background(), evs, from)
		return err
	}
	// sendAll sends evs: overlapping slices to two nodes at once, then a
	// slice retried on the third; stop, if not "", stops a fourth node at
	// that step with the first ten, for another node to recover.
	sendAll := func(evs []usage.Event, stop string) {
		t.Helper()
		for _, ev := range evs {
			if _, ok := distinct[ev.ID]; !ok {
				perOrg[ev.OrganizationID]++
			}
			distinct[ev.ID] = ev
		}
		if stop != "" {
			dying, _ := f.rollingNode(clk, lg, func(s string) bool { return s == stop })
			if err := send(dying, evs[:10]); err == nil {
				t.Fatalf("the batch stopped %s answered", stop)
			}
			dying.Close()
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				node := nodes[g%2]
				for lo := g * 5; lo < len(evs); lo += 17 {
					for {
						err := send(node, evs[lo:min(lo+23, len(evs))])
						if err == nil {
							break
						} else if usage.KindOf(err) != usage.KindUnavailable {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if err := send(c, evs[len(evs)/3:]); err != nil {
			t.Fatal(err)
		}
		for org, n := range perOrg {
			settledAround(t, a, org, base, n)
		}
	}

	minute := func(k int) time.Time { return base.Add(time.Duration(k) * time.Minute) }
	late, ahead, now := []int{-4, -3, -2, -1, 0, 0}, []int{0, 0, 1, 2}, []int{0}
	mixed := []int{-3, -1, 0, 0, 0, 1, 2}

	// Minute 0: a first count.
	sendAll(append(events("org-a", 40, minute(0), mixed), events("org-b", 40, minute(0), mixed)...), "")
	// Minute 1: the minute fills (r1-total crosses both thresholds), a
	// node dies after its commit point.
	clk.jump(minute(1).Add(time.Second))
	sendAll(append(events("org-a", 40, minute(1), now), events("org-b", 30, minute(1), ahead)...), "after-commit")
	// Still minute 1: r1-total's version 2 keeps the rule and raises the
	// value, so that the window meets none of its thresholds; the marks of
	// version 1 must not keep the next crossing of 50 % from this minute.
	// r3-posts changes its rule (GET now): it counts from zero.
	r1 := limits["r1-total"]
	r1.Value = 120
	limits["r1-total"] = put(limB, r1)
	r3 := limits["r3-posts"]
	r3.Filter.HTTPMethods = []string{"GET"}
	limits["r3-posts"] = put(limC, r3)
	sendAll(append(events("org-a", 30, minute(1), now), events("org-b", 30, minute(1), now)...), "")
	// Minute 3: late events, a node dies after counting; a limit created.
	clk.jump(minute(3).Add(time.Second))
	limits["r1-each200"] = put(limA, usage.Limit{ID: "r1-each200", Name: "r1-each200", OrganizationID: "org-a", Metric: usage.LimitStatus200,
		Scope: usage.ScopeEachClient, Window: rolling(1, ""), Value: 3, Thresholds: []int{100}})
	sendAll(append(events("org-a", 40, minute(3), late), events("org-b", 40, minute(3), late)...), "after-limits")
	// Minute 4: the next minute, events ahead; r2-err's version 2 adds a
	// threshold, its seeding notifying what the window meets.
	clk.jump(minute(4).Add(time.Second))
	sendAll(append(events("org-a", 30, minute(4), ahead), events("org-b", 30, minute(4), ahead)...), "")
	r2 := limits["r2-err"]
	r2.Thresholds = []int{10, 50, 100}
	limits["r2-err"] = put(limA, r2)
	// Minutes 6 and 7.
	clk.jump(minute(6).Add(time.Second))
	sendAll(append(events("org-a", 40, minute(6), mixed), events("org-b", 40, minute(6), mixed)...), "")
	clk.jump(minute(7).Add(time.Second))
	sendAll(append(events("org-a", 40, minute(7), late), events("org-b", 40, minute(7), ahead)...), "after-limits")
	clk.jump(minute(8).Add(time.Second))

	// The accepted events: each in one batch; each batch added once.
	lg.mu.Lock()
	ops := slices.Clone(lg.ops)
	for batch, n := range lg.oks {
		if n != 1 {
			t.Errorf("batch %s added to the limits %d times", batch, n)
		}
	}
	if lg.dones < 2 {
		t.Errorf("%d counts found their batch counted, want at least the 2 recoveries of batches stopped after counting", lg.dones)
	}
	lg.mu.Unlock()
	in := map[string]string{}
	o := &rollingOracle{limits: map[string]usage.Limit{}, counters: map[string]*handCounter{}}
	counted := map[string]bool{}
	rearmed, atSeeding := 0, 0
	for _, op := range ops {
		if op.seeded != nil {
			n := len(o.want)
			o.seed(*op.seeded, op.at)
			atSeeding += len(o.want) - n
			continue
		}
		if counted[op.batch] {
			continue
		}
		counted[op.batch] = true
		for _, ev := range op.events {
			if b, ok := in[ev.ID]; ok {
				t.Errorf("event %s is in batches %s and %s", ev.ID, b, op.batch)
			}
			in[ev.ID] = op.batch
			if want, ok := distinct[ev.ID]; !ok || !want.Time.Equal(ev.Time) {
				t.Errorf("batch %s counted event %s, not sent as such", op.batch, ev.ID)
			}
		}
		n := len(o.want)
		o.count(op.at, op.events)
		for _, c := range o.want[n:] {
			for _, x := range o.want[:n] {
				if x.limit == c.limit && x.version == c.version && x.client == c.client && x.threshold == c.threshold {
					rearmed++
					break
				}
			}
		}
	}
	if len(in) != len(distinct) {
		t.Errorf("the batches counted %d distinct events, %d were sent", len(in), len(distinct))
	}
	want := o.want
	slices.SortFunc(want, func(a, b rcrossing) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	t.Logf("%d batches, %d crossings expected, %d of them again after a re-arm, %d at a seeding", len(counted), len(want), rearmed, atSeeding)
	if rearmed == 0 || atSeeding == 0 || len(want) < 20 {
		t.Errorf("the test's events give %d crossings, %d after a re-arm, %d at a seeding: too few to test the rule", len(want), rearmed, atSeeding)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f.rollingNotified()
		if slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			missing, extra := diffCrossings(got, want)
			t.Fatalf("the outbox holds %d crossings, the hand count %d\nmissing: %v\nextra: %v", len(got), len(want), missing, extra)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The status: the window at the end, per client for each client.
	end := minuteOf(clk.now())
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range o.limits {
			if !yield(id) {
				return
			}
		}
	}) {
		l := o.limits[id]
		st, err := limC.RollingStatus(t.Context(), &l)
		if err != nil {
			t.Fatal(err)
		}
		var wantValue string
		var wantClients []string
		prefix := ruleOf(&l, "")
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range o.counters {
				if !yield(k) {
					return
				}
			}
		}) {
			if !strings.HasPrefix(k, prefix) {
				continue
			}
			s := o.counters[k].window(end, l.Window.Minutes)
			if l.Scope != usage.ScopeEachClient {
				wantValue = handValue(&l, s)
			} else if s.r > 0 {
				wantClients = append(wantClients, strings.TrimPrefix(k, prefix)+"="+handValue(&l, s))
			}
		}
		var gotClients []string
		for _, cl := range st.Clients {
			gotClients = append(gotClients, cl.ClientID+"="+fmt.Sprintf("%.6f", cl.Value))
		}
		if l.Scope != usage.ScopeEachClient && fmt.Sprintf("%.6f", st.Value) != cmpOr(wantValue, fmt.Sprintf("%.6f", 0.0)) ||
			!slices.Equal(gotClients, wantClients) {
			t.Errorf("limit %s: status %.6f %v, hand count %s %v", id, st.Value, gotClients, wantValue, wantClients)
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func diffCrossings(got, want []rcrossing) (missing, extra []rcrossing) {
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	return missing, extra
}

// settledAround waits until Query counts want events for org in the six
// hours either side of at, and so every batch has settled.
func settledAround(t *testing.T, s *clickhouse.Store, org string, at time.Time, want int) {
	t.Helper()
	h := at.UTC().Truncate(time.Hour)
	q, err := usage.Query{OrganizationID: org, Interval: usage.Interval{Start: h.Add(-6 * time.Hour), End: h.Add(6 * time.Hour)},
		Granularity: usage.GranularityNone}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, err := s.Query(t.Context(), q)
		n := int64(0)
		for _, r := range rows {
			n += r.Counts.Requests
		}
		if err == nil && n == int64(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s counts %d requests (%v), want %d", org, n, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
