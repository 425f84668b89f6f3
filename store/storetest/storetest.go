// Package storetest is the conformance suite of store backends, one suite
// per contract: RunUsage for store.Usage, RunMetadata for store.Metadata, so
// that a backend implementing one contract runs just its suite. Counts are
// checked against oracles that count the generated events by hand, never
// against the backend's own output nor with the counting rules of package
// usage that backends use.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// UsageBackend opens usage stores for RunUsage.
type UsageBackend struct {
	// Open returns a new, empty store; the suite closes it.
	Open func(t *testing.T) store.Usage
	// Reopen closes s and opens it again on the same data. Nil skips the
	// persistence tests.
	Reopen func(t *testing.T, s store.Usage) store.Usage
	// Measures is whether the store keeps the latency and traffic
	// measures (usage.Measures) and answers queries asking for them; a
	// store that does not must refuse such a query as invalid, naming the
	// metrics.
	Measures bool
}

// MetadataBackend opens metadata stores for RunMetadata.
type MetadataBackend struct {
	// Open returns a new, empty store; the suite closes it.
	Open func(t *testing.T) store.Metadata
	// Reopen closes s and opens it again on the same data. Nil skips the
	// persistence tests.
	Reopen func(t *testing.T, s store.Metadata) store.Metadata
}

// RunUsage runs the suite of store.Usage: events and activity, their
// deduplication, counts and reports. The dedupe expiry test runs when the
// store is a store.DedupeExpirer, and RunEventLister's when it is a
// store.EventLister.
func RunUsage(t *testing.T, b UsageBackend) {
	t.Run("CountsMatchOracle", func(t *testing.T) { testOracle(t, b) })
	t.Run("DedupeWindow", func(t *testing.T) { testDedupeWindow(t, b) })
	t.Run("ExpireDedupe", func(t *testing.T) { testExpire(t, b) })
	t.Run("ConcurrentAppendsCountOnce", func(t *testing.T) { testConcurrent(t, b) })
	t.Run("OrganizationsAreIsolated", func(t *testing.T) { testIsolation(t, b) })
	t.Run("ClientNamesMatchOracle", func(t *testing.T) { testClientNames(t, b) })
	t.Run("ActivityMatchesOracle", func(t *testing.T) { testActivityOracle(t, b) })
	t.Run("AccountsByHand", func(t *testing.T) { testAccounts(t, b) })
	t.Run("ActivityDedupeWindow", func(t *testing.T) { testActivityDedupeWindow(t, b) })
	t.Run("ServicesAreIsolated", func(t *testing.T) { testServicesIsolated(t, b) })
	t.Run("ConcurrentActivityCountsOnce", func(t *testing.T) { testConcurrentActivity(t, b) })
	if b.Measures {
		t.Run("MeasuresMatchOracle", func(t *testing.T) { testMeasuresOracle(t, b) })
	} else {
		t.Run("MeasuresRefused", func(t *testing.T) { testMeasuresRefused(t, b) })
	}
	RunEventLister(t, b)
	if b.Reopen != nil {
		t.Run("SurvivesReopen", func(t *testing.T) { testReopen(t, b) })
		t.Run("ActivitySurvivesReopen", func(t *testing.T) { testActivityReopen(t, b) })
	}
}

// RunMetadata runs the suite of store.Metadata: the registries, the usage
// limits and the query executions.
func RunMetadata(t *testing.T, b MetadataBackend) {
	t.Run("Registry", func(t *testing.T) { testRegistry(t, b) })
	t.Run("ExecutionRecords", func(t *testing.T) { testExecutionRecords(t, b) })
	t.Run("ExecutionRows", func(t *testing.T) { testExecutionRows(t, b) })
	t.Run("DeleteExecution", func(t *testing.T) { testDeleteExecution(t, b) })
	t.Run("ExecutionsBy", func(t *testing.T) { testExecutionsBy(t, b) })
	t.Run("FinishExecutionIsAtomic", func(t *testing.T) { testFinishAtomic(t, b) })
	t.Run("ServiceRegistry", func(t *testing.T) { testServiceRegistry(t, b) })
	t.Run("Limits", func(t *testing.T) { testLimits(t, b) })
	t.Run("UpdateLimitChecksVersion", func(t *testing.T) { testUpdateLimit(t, b) })
	if b.Reopen != nil {
		t.Run("LimitsSurviveReopen", func(t *testing.T) { testLimitsReopen(t, b) })
		t.Run("ExecutionsSurviveReopen", func(t *testing.T) { testExecutionsReopen(t, b) })
		t.Run("ServiceRegistrySurvivesReopen", func(t *testing.T) { testServiceRegistryReopen(t, b) })
	}
}

// base is the start of generated event times: a Wednesday, mid-month, so
// that Week and Month buckets straddle the data.
var base = time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)

// Gen generates random events over a few organizations, clients, users,
// templates, methods and statuses, with repeated ids.
type Gen struct {
	R    *rand.Rand
	Orgs []string
	Days int
	seq  int
}

// NewGen returns a generator seeded with seed.
func NewGen(seed uint64) *Gen {
	return &Gen{R: rand.New(rand.NewPCG(seed, seed^0x5bd1e995)), Orgs: []string{"org-a", "org-b", "org-c"}, Days: 40}
}

var (
	clients   = []string{"c1", "c2", "c3", "c4", "c5"}
	users     = []string{"", "u1", "u2", "u3", "u4", "u5", "u6"}
	templates = []string{"api/v2/users", "api/v2/users/{userId}", "api/v2/conversations", "api/v2/analytics/conversations/details/query", "api/v2/routing/queues/{queueId}/members"}
	methods   = []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	platforms = []string{"", "PureCloud", "Api"}
	statuses  = []int{101, 200, 201, 204, 301, 304, 400, 401, 404, 429, 429, 500, 503}
)

// Event returns a new random event; one in eight reuses an earlier id. Client
// names change between two values, except that c4's second name is empty and
// c5's events never carry one.
func (g *Gen) Event() usage.Event {
	r := g.R
	g.seq++
	id := fmt.Sprintf("ev-%d", g.seq)
	if g.seq > 10 && r.IntN(8) == 0 {
		id = fmt.Sprintf("ev-%d", 1+r.IntN(g.seq-1))
	}
	client := clients[r.IntN(len(clients))]
	nameN := r.IntN(2)
	name := fmt.Sprintf("%s name %d", client, nameN)
	if client == "c5" || client == "c4" && nameN == 1 {
		name = ""
	}
	return usage.Event{
		ID:             id,
		Time:           base.Add(time.Duration(r.Int64N(int64(g.Days) * int64(24*time.Hour)))),
		OrganizationID: g.Orgs[r.IntN(len(g.Orgs))],
		ClientID:       client,
		ClientName:     name,
		UserID:         users[r.IntN(len(users))],
		TemplateURI:    templates[r.IntN(len(templates))],
		HTTPMethod:     methods[r.IntN(len(methods))],
		Status:         statuses[r.IntN(len(statuses))],
		Platform:       platforms[r.IntN(len(platforms))],
	}
}

// Oracle counts accepted events by hand.
type Oracle struct {
	seen     map[[2]string]bool
	Accepted []usage.Event
	names    map[[2]string]string // (organization, client) → the latest accepted event's client name
}

// NewOracle returns an empty oracle.
func NewOracle() *Oracle {
	return &Oracle{seen: map[[2]string]bool{}, names: map[[2]string]string{}}
}

// Offer records ev unless its id was seen in its organization, and returns
// the outcome a store must report.
func (o *Oracle) Offer(ev usage.Event) usage.Outcome {
	k := [2]string{ev.OrganizationID, ev.ID}
	if o.seen[k] {
		return usage.Duplicate
	}
	o.seen[k] = true
	o.Accepted = append(o.Accepted, ev)
	o.names[[2]string{ev.OrganizationID, ev.ClientID}] = ev.ClientName
	return usage.Accepted
}

// ClientNames returns the client ids of the organization's accepted events,
// each mapped to the client name of its latest accepted event ("" included).
func (o *Oracle) ClientNames(orgID string) map[string]string {
	names := map[string]string{}
	for k, name := range o.names {
		if k[0] == orgID {
			names[k[1]] = name
		}
	}
	return names
}

// setDims sets the dimensions of k that dims group by from ev, the client's
// name being clientName.
func setDims(k *usage.Row, dims []usage.Dimension, ev *usage.Event, clientName string) {
	for _, d := range dims {
		switch d {
		case usage.DimClientID:
			k.ClientID, k.ClientName = ev.ClientID, clientName
		case usage.DimOrganizationID:
			k.OrganizationID = ev.OrganizationID
		case usage.DimUserID:
			k.UserID = ev.UserID
		case usage.DimTemplateURI:
			k.TemplateURI = ev.TemplateURI
		case usage.DimHTTPMethod:
			k.HTTPMethod = ev.HTTPMethod
		case usage.DimPlatform:
			k.Platform = ev.Platform
		}
	}
}

// Answer computes q's rows by brute force over the accepted events.
func (o *Oracle) Answer(q usage.Query) []usage.Row {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	groups := map[usage.Row]*usage.Counts{}
	var keys []usage.Row
	for _, ev := range o.Accepted {
		f := q.Filter
		if ev.OrganizationID != q.OrganizationID || !q.Interval.Contains(ev.Time) ||
			!in(f.ClientIDs, ev.ClientID) || !in(f.ClientNames, o.names[[2]string{ev.OrganizationID, ev.ClientID}]) ||
			!in(f.UserIDs, ev.UserID) || !in(f.TemplateURIs, ev.TemplateURI) ||
			!in(f.HTTPMethods, ev.HTTPMethod) || !in(f.Platforms, ev.Platform) {
			continue
		}
		var k usage.Row
		if q.Granularity != usage.GranularityNone {
			k.Date = q.Bucket(ev.Time)
		}
		setDims(&k, q.GroupBy, &ev, o.names[[2]string{ev.OrganizationID, ev.ClientID}])
		c := groups[k]
		if c == nil {
			c = &usage.Counts{}
			groups[k] = c
			keys = append(keys, k)
		}
		c.Add(classify(ev.Status))
	}
	rows := make([]usage.Row, 0, len(keys))
	for _, k := range keys {
		k.Counts = *groups[k]
		rows = append(rows, k)
	}
	slices.SortFunc(rows, func(a, b usage.Row) int { return usage.CompareRows(&a, &b) })
	return rows
}

// classify counts one event by its status, independently of usage.CountsFor.
func classify(status int) usage.Counts {
	c := usage.Counts{Requests: 1}
	switch status / 100 {
	case 2:
		c.Status200 = 1
	case 3:
		c.Status300 = 1
	case 4:
		c.Status400 = 1
	case 5:
		c.Status500 = 1
	}
	if status == 429 {
		c.Status429 = 1
	}
	return c
}

// RandomQuery returns a random normalized query within the generator's span.
// zones are the time zones of random queries: the events' weeks hold
// Berlin's spring change (a 23-hour day, 2026-03-29) and Sydney's autumn
// one (a 25-hour day, 2026-04-05); New York's is the week before them.
var zones = func() []*time.Location {
	var out []*time.Location
	for _, name := range []string{"Europe/Berlin", "Australia/Sydney", "America/New_York"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			panic(err)
		}
		out = append(out, loc)
	}
	return out
}()

func (g *Gen) RandomQuery(t testing.TB) usage.Query {
	r := g.R
	hours := g.Days * 24
	s := r.IntN(hours + 24)
	e := s + 1 + r.IntN(hours+48-s)
	if r.IntN(4) == 0 { // day-aligned intervals exercise the daily rollups
		s, e = s/24*24, (e+23)/24*24
	}
	q := usage.Query{
		OrganizationID: g.Orgs[r.IntN(len(g.Orgs))],
		Interval:       usage.Interval{Start: base.Add(time.Duration(s-12) * time.Hour), End: base.Add(time.Duration(e-12) * time.Hour)},
		Granularity:    usage.Granularity(r.IntN(5)),
	}
	if r.IntN(3) == 0 { // local days, weeks and months, across the DST changes of the events' weeks
		q.Location = zones[r.IntN(len(zones))]
	}
	for _, d := range usage.Dimensions {
		if r.IntN(3) == 0 {
			q.GroupBy = append(q.GroupBy, d)
		}
	}
	if r.IntN(3) == 0 { // client-only queries take the rollup path
		q.GroupBy = []usage.Dimension{usage.DimClientID}
	}
	pick := func(from []string) []string {
		if r.IntN(4) != 0 {
			return nil
		}
		out := []string{from[r.IntN(len(from))]}
		if r.IntN(2) == 0 {
			out = append(out, from[r.IntN(len(from))], "never-seen")
		}
		return out
	}
	q.Filter = usage.Filter{
		ClientIDs: pick(clients), UserIDs: pick(users), TemplateURIs: pick(templates),
		HTTPMethods: pick(methods), Platforms: pick(platforms),
	}
	if r.IntN(6) == 0 {
		q.Filter.ClientNames = []string{"c2 name 0", "c3 name 1"}
	}
	nq, err := q.Normalize()
	if err != nil {
		t.Fatalf("normalize %+v: %v", q, err)
	}
	return nq
}

func ctx(t testing.TB) context.Context { return t.Context() }

// appendAll appends events in random batch sizes, checking every outcome
// against the oracle.
func appendAll(t *testing.T, s store.Usage, o *Oracle, g *Gen, events []usage.Event) {
	t.Helper()
	for len(events) > 0 {
		n := min(len(events), 1+g.R.IntN(300))
		appendBatch(t, s, o, events[:n])
		events = events[n:]
	}
}

// appendBatch appends events in one call, checking every outcome against the
// oracle.
func appendBatch(t *testing.T, s store.Usage, o *Oracle, batch []usage.Event) {
	t.Helper()
	var want []usage.Outcome
	for _, ev := range batch {
		want = append(want, o.Offer(ev))
	}
	got, err := s.Append(ctx(t), batch, base.Add(-24*time.Hour))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Append outcomes differ from oracle:\n got %v\nwant %v", got, want)
	}
}

func checkQueries(t *testing.T, s store.Usage, o *Oracle, g *Gen, n int) {
	t.Helper()
	for range n {
		q := g.RandomQuery(t)
		got, err := s.Query(ctx(t), q)
		if err != nil {
			t.Fatalf("Query(%+v): %v", q, err)
		}
		want := o.Answer(q)
		if !slices.Equal(got, want) {
			t.Fatalf("Query(%+v):\n got %d rows %v\nwant %d rows %v", q, len(got), head(got), len(want), head(want))
		}
	}
}

func head(rows []usage.Row) []usage.Row { return rows[:min(len(rows), 5)] }

func testOracle(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	defer s.Close()
	g := NewGen(1)
	o := NewOracle()
	events := make([]usage.Event, 6000)
	for i := range events {
		events[i] = g.Event()
	}
	appendAll(t, s, o, g, events)
	checkQueries(t, s, o, g, 400)

	// An answer larger than MaxRows is an error, not a truncation.
	big, _ := usage.Query{OrganizationID: "org-a", Interval: usage.Interval{Start: base, End: base.AddDate(0, 1, 0)},
		Granularity: usage.GranularityDay, MaxRows: 3}.Normalize()
	if rows, err := s.Query(ctx(t), big); usage.KindOf(err) != usage.KindInvalid {
		t.Fatalf("Query over MaxRows = %d rows, %v; want an invalid-query error", len(rows), err)
	}

	// An empty organization and an unknown filter value answer no rows.
	for _, q := range []usage.Query{
		{OrganizationID: "nobody", Interval: usage.Interval{Start: base, End: base.Add(time.Hour)}},
		{OrganizationID: "org-a", Interval: usage.Interval{Start: base, End: base.AddDate(0, 1, 0)}, Filter: usage.Filter{ClientIDs: []string{"unknown"}}},
	} {
		q, _ = q.Normalize()
		rows, err := s.Query(ctx(t), q)
		if err != nil || len(rows) != 0 {
			t.Fatalf("Query(%+v) = %v, %v; want no rows", q, rows, err)
		}
	}
}

func testDedupeWindow(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	defer s.Close()
	ev := usage.Event{ID: "x", Time: base, OrganizationID: "o", ClientID: "c", ClientName: "n", TemplateURI: "t", HTTPMethod: "GET", Status: 200}
	later := ev
	later.Time = base.Add(10 * 24 * time.Hour)
	steps := []struct {
		ev   usage.Event
		from time.Time
		want usage.Outcome
	}{
		{ev, base.Add(-time.Hour), usage.Accepted},
		{ev, base.Add(-time.Hour), usage.Duplicate},
		{later, base.Add(-time.Hour), usage.Duplicate},    // same id, other time: still the same event
		{later, base.Add(2 * time.Hour), usage.Accepted},  // the first record left the window
		{later, base.Add(2 * time.Hour), usage.Duplicate}, // and the new one is kept
		{ev, base.Add(-time.Hour), usage.Duplicate},
	}
	for i, st := range steps {
		got, err := s.Append(ctx(t), []usage.Event{st.ev}, st.from)
		if err != nil || got[0] != st.want {
			t.Fatalf("step %d: Append = %v, %v; want %v", i, got, err, st.want)
		}
	}
	q, _ := usage.Query{OrganizationID: "o", Interval: usage.Interval{Start: base, End: base.AddDate(0, 1, 0)}}.Normalize()
	rows, err := s.Query(ctx(t), q)
	if err != nil || len(rows) != 1 || rows[0].Requests != 2 {
		t.Fatalf("Query = %v, %v; want one row with 2 requests", rows, err)
	}
}

func testExpire(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	defer s.Close()
	old := usage.Event{ID: "old", Time: base, OrganizationID: "o", ClientID: "c", ClientName: "n", TemplateURI: "t", HTTPMethod: "GET", Status: 200}
	recent := old
	recent.ID, recent.Time = "recent", base.Add(48*time.Hour)
	from := base.Add(-time.Hour)
	if _, err := s.Append(ctx(t), []usage.Event{old, recent}, from); err != nil {
		t.Fatal(err)
	}
	exp, ok := s.(store.DedupeExpirer)
	if !ok {
		t.Skip("the store expires dedupe records on its own")
	}
	if err := exp.ExpireDedupe(ctx(t), base.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Append(ctx(t), []usage.Event{old, recent}, from)
	if err != nil {
		t.Fatal(err)
	}
	if want := []usage.Outcome{usage.Accepted, usage.Duplicate}; !slices.Equal(got, want) {
		t.Fatalf("after expiry: %v, want %v", got, want)
	}
}

// retried calls call again while it fails as unavailable, a few times, as
// the contracts tell clients to: a cluster node's batch that outlives its
// lease on a loaded machine is aborted, and its call fails so. Exactly once
// must hold across the retries.
func retried[T any](call func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := call()
		if usage.KindOf(err) != usage.KindUnavailable || attempt == 5 {
			return v, err
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}

func testConcurrent(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	defer s.Close()
	const workers, perWorker, distinct = 8, 2000, 3000
	var (
		mu       sync.Mutex
		accepted = map[string]int{}
		wg       sync.WaitGroup
		errs     = make(chan error, workers)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < perWorker; i += 100 {
				batch := make([]usage.Event, 100)
				for j := range batch {
					batch[j] = usage.Event{ID: fmt.Sprint(r.IntN(distinct)), Time: base.Add(time.Duration(r.IntN(100)) * time.Hour),
						OrganizationID: "o", ClientID: "c", ClientName: "n", TemplateURI: "t", HTTPMethod: "GET", Status: 200}
				}
				outs, err := retried(func() ([]usage.Outcome, error) { return s.Append(ctx(t), batch, base.Add(-time.Hour)) })
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for j, o := range outs {
					if o == usage.Accepted {
						accepted[batch[j].ID]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for id, n := range accepted {
		if n != 1 {
			t.Fatalf("id %s accepted %d times", id, n)
		}
		total++
	}
	q, _ := usage.Query{OrganizationID: "o", Interval: usage.Interval{Start: base, End: base.AddDate(0, 1, 0)}}.Normalize()
	rows, err := s.Query(ctx(t), q)
	if err != nil || len(rows) != 1 || rows[0].Requests != int64(total) {
		t.Fatalf("Query = %v, %v; want %d requests", rows, err, total)
	}
}

func testIsolation(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	defer s.Close()
	a := usage.Event{ID: "same", Time: base, OrganizationID: "A", ClientID: "c", ClientName: "n", TemplateURI: "t", HTTPMethod: "GET", Status: 200}
	bb := a
	bb.OrganizationID = "B"
	got, err := s.Append(ctx(t), []usage.Event{a, bb}, base.Add(-time.Hour))
	if err != nil || !slices.Equal(got, []usage.Outcome{usage.Accepted, usage.Accepted}) {
		t.Fatalf("the same id in two organizations: %v, %v; want both accepted", got, err)
	}
	q, _ := usage.Query{OrganizationID: "A", Interval: usage.Interval{Start: base, End: base.Add(time.Hour)},
		GroupBy: []usage.Dimension{usage.DimOrganizationID, usage.DimClientID}}.Normalize()
	rows, err := s.Query(ctx(t), q)
	if err != nil || len(rows) != 1 || rows[0].Requests != 1 || rows[0].OrganizationID != "A" {
		t.Fatalf("Query(A) = %v, %v", rows, err)
	}

	// Client names are per organization, even for the same client id.
	a2, b2, b3 := a, bb, bb
	a2.ID, a2.ClientName = "a2", "alpha"
	b2.ID, b2.ClientName = "b2", "beta"
	b3.ID, b3.ClientID, b3.ClientName = "b3", "only-b", ""
	if _, err := s.Append(ctx(t), []usage.Event{a2, b2, b3}, base.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	for org, want := range map[string]map[string]string{
		"A": {"c": "alpha"},
		"B": {"c": "beta", "only-b": ""},
		"C": {},
	} {
		got, err := s.ClientNames(ctx(t), org)
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("ClientNames(%s) = %v, %v; want %v", org, got, err, want)
		}
	}
}

// checkClientNames compares ClientNames with the oracle for every
// organization of g and one without events.
func checkClientNames(t *testing.T, s store.Usage, o *Oracle, g *Gen) {
	t.Helper()
	for _, org := range append(slices.Clone(g.Orgs), "nobody") {
		got, err := s.ClientNames(ctx(t), org)
		if err != nil {
			t.Fatalf("ClientNames(%s): %v", org, err)
		}
		if want := o.ClientNames(org); !maps.Equal(got, want) {
			t.Fatalf("ClientNames(%s):\n got %v\nwant %v", org, got, want)
		}
	}
}

func testClientNames(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	defer s.Close()
	g := NewGen(3)
	o := NewOracle()
	checkClientNames(t, s, o, g) // an empty store knows no clients
	for range 4 {
		events := make([]usage.Event, 500)
		for i := range events {
			events[i] = g.Event()
		}
		appendAll(t, s, o, g, events)
		checkClientNames(t, s, o, g)
	}

	// One client's name over single appends: set, changed within one
	// append, cleared, unchanged by a duplicate, set again. Another's events
	// never carry a name.
	ev := usage.Event{Time: base, OrganizationID: "names", TemplateURI: "t", HTTPMethod: "GET", Status: 200}
	at := func(id, client, name string) usage.Event {
		e := ev
		e.ID, e.ClientID, e.ClientName = id, client, name
		return e
	}
	g.Orgs = append(g.Orgs, "names")
	for _, batch := range [][]usage.Event{
		{at("n1", "x", "first")},
		{at("n2", "x", "second"), at("n3", "x", "third"), at("n4", "silent", "")},
		{at("n5", "x", "")},
		{at("n1", "x", "duplicate"), at("n6", "silent", "")},
		{at("n7", "x", "fourth")},
	} {
		appendBatch(t, s, o, batch)
		checkClientNames(t, s, o, g)
	}
	if got, _ := s.ClientNames(ctx(t), "names"); !maps.Equal(got, map[string]string{"x": "fourth", "silent": ""}) {
		t.Fatalf("ClientNames(names) = %v", got)
	}
}

func testRegistry(t *testing.T, b MetadataBackend) {
	s := b.Open(t)
	defer s.Close()
	c := ctx(t)
	if _, err := s.Organization(c, "missing"); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("missing organization: %v, want not found", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, id := range []string{"o2", "o1"} {
		if err := s.PutOrganization(c, usage.Organization{ID: id, Name: "name " + id, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	orgs, err := s.Organizations(c)
	if err != nil || len(orgs) != 2 || orgs[0].ID != "o1" || !orgs[0].CreatedAt.Equal(now) {
		t.Fatalf("Organizations = %v, %v", orgs, err)
	}
	cl := usage.Client{ID: "k1", OrganizationID: "o1", Name: "n", SecretHash: []byte{1, 2, 3}, Permissions: []string{usage.PermEventAdd}, AccessTokenValidity: time.Hour, CreatedAt: now,
		RoleIDs: []string{"r1", "r2"}, RoleDivisions: []usage.RoleDivision{{RoleID: "r1", DivisionID: "d1"}}, Scope: []string{"s"}}
	if err := s.PutClient(c, cl); err != nil {
		t.Fatal(err)
	}
	if err := s.PutClient(c, usage.Client{ID: "k2", OrganizationID: "o2", Name: "m"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Client(c, "k1")
	if err != nil || got.Name != "n" || string(got.SecretHash) != "\x01\x02\x03" || !got.Has(usage.PermEventAdd) || got.AccessTokenValidity != time.Hour ||
		!slices.Equal(got.RoleIDs, cl.RoleIDs) || !slices.Equal(got.RoleDivisions, cl.RoleDivisions) || !slices.Equal(got.Scope, cl.Scope) {
		t.Fatalf("Client = %+v, %v", got, err)
	}
	list, err := s.Clients(c, "o1")
	if err != nil || len(list) != 1 || list[0].ID != "k1" {
		t.Fatalf("Clients(o1) = %v, %v", list, err)
	}
	if err := s.DeleteClient(c, "o2", "k1"); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("delete from another organization: %v, want not found", err)
	}
	if err := s.DeleteClient(c, "o1", "k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client(c, "k1"); !errors.Is(err, usage.ErrNotFound) && usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("deleted client: %v, want not found", err)
	}
}

func testReopen(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	g := NewGen(2)
	o := NewOracle()
	events := make([]usage.Event, 3000)
	for i := range events {
		events[i] = g.Event()
	}
	appendAll(t, s, o, g, events[:2000])
	s = b.Reopen(t, s)
	defer s.Close()
	// Client names, empty ones included, are still known.
	checkClientNames(t, s, o, g)
	// Duplicates of events recorded before the reopen are still detected.
	appendAll(t, s, o, g, events[:2000])
	appendAll(t, s, o, g, events[2000:])
	checkQueries(t, s, o, g, 150)
	checkClientNames(t, s, o, g)
}
