package limiteval

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/usaged/usaged/bench"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/usage"
)

// BenchmarkIngest appends batches of 5,000 new events, dedupe on, to the
// embedded store on disk, without limits and with 10,000 limits evaluated
// as they commit: what the limits cost ingest, whose bar is 10 %. One op is
// one batch. cpu-ns/event is the process's CPU time per event while the
// appends ran, Pebble's own goroutines included: on a shared machine it is
// steadier than events/s.
//
// The events have the pipeline benchmark's cardinalities (10 organizations,
// 200 clients each, 2,000 users, 300 templates), within the five minutes
// before the clock. Each organization has 1,000 limits: 10 of scope
// organization, 10 of eachClient and 980 of scope client, about five per
// client; a third filtered by method or template; hour, day and month
// windows in five zones; most far from their thresholds, some crossing them
// as the benchmark runs.
//
// The spread case has the 10,000 limits as a platform selling plans would:
// five for each of 2,000 organizations of 10 clients, whose events the
// batches carry.
func BenchmarkIngest(b *testing.B) {
	for _, m := range []mix{concentrated, spread} {
		for _, n := range []int{0, 10_000} {
			b.Run(fmt.Sprintf("%s/limits=%d", m.name, n), func(b *testing.B) { benchIngest(b, m, n) })
		}
	}
}

// mix is how many organizations the events and the limits are of, and
// how many clients each has.
type mix struct {
	name          string
	orgs, clients int
}

var (
	concentrated = mix{"concentrated", 10, 200}
	spread       = mix{"spread", 2000, 10}
)

func benchIngest(b *testing.B, m mix, limits int) {
	const batch = 5000
	db, err := pebble.Open(pebble.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	evs, ls := ingestMix(b, now, batch, limits, m)
	if limits > 0 {
		w, err := Watch(b.Context(), db, ls, time.Now)
		if err != nil || w == nil {
			b.Fatal(w, err)
		}
	}

	ids := make([]string, batch)
	var cpu time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		prefix := strconv.Itoa(i) + "-"
		for j := range evs {
			ids[j] = prefix + strconv.Itoa(j)
			evs[j].ID = ids[j]
		}
		b.StartTimer()
		before := bench.CPUTime()
		outs, err := db.Append(b.Context(), evs, now.Add(-time.Hour))
		cpu += bench.CPUTime() - before
		if err != nil || len(outs) != batch || outs[0] != usage.Accepted {
			b.Fatal(len(outs), err)
		}
	}
	// After the loop: b.Loop's first call deletes metrics reported before it.
	events := float64(b.N * batch)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/events, "cpu-ns/event")
	pending, err := db.PendingNotifications(b.Context(), 1_000_000)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(pending)), "notifications")
}

// ingestMix returns BenchmarkIngest's events, as many as batch, and n
// limits spread evenly over their organizations.
func ingestMix(b *testing.B, now time.Time, batch, n int, m mix) ([]usage.Event, []usage.Limit) {
	g := bench.NewGen(bench.StoreConfig{Events: batch, Orgs: m.orgs, Clients: m.clients, Users: 2000, Templates: 300, Days: 1}, now)
	r := rand.New(rand.NewPCG(1, 2))
	evs := make([]usage.Event, batch)
	for i := range evs {
		g.Event(r, i, &evs[i])
		evs[i].Time = now.Add(-time.Duration(r.IntN(300)) * time.Second)
	}
	orgs := g.Orgs()
	byOrg := map[string][]string{}
	seen := map[string]bool{}
	for i := range evs {
		if ev := &evs[i]; !seen[ev.ClientID] {
			seen[ev.ClientID] = true
			byOrg[ev.OrganizationID] = append(byOrg[ev.OrganizationID], ev.ClientID)
		}
	}
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"}
	windows := []usage.WindowType{usage.WindowHour, usage.WindowDay, usage.WindowMonth}
	ls := make([]usage.Limit, 0, n)
	for i := range n {
		o := orgs[i%len(orgs)].ID
		l := usage.Limit{
			ID: fmt.Sprintf("lim-%05d", i), OrganizationID: o, Name: "limit " + strconv.Itoa(i),
			Metric:     usage.LimitRequests,
			Window:     usage.Window{Type: windows[r.IntN(len(windows))], TimeZone: zones[r.IntN(len(zones))]},
			Value:      float64(1_000_000 + r.IntN(1_000_000)),
			Thresholds: []int{50, 80, 100},
			Version:    1,
		}
		// Concentrated: 1 % of scope organization, 1 % eachClient, the
		// rest of one client; spread: each organization's first two and
		// then clients.
		per := n / len(orgs)
		switch k := i / len(orgs) % 100; {
		case k == 0 || per < 100 && k == 2:
			l.Scope = usage.ScopeOrganization
		case k == 1:
			l.Scope = usage.ScopeEachClient
		case len(byOrg[o]) == 0: // an organization the batch has no event of
			l.Scope = usage.ScopeOrganization
		default:
			l.Scope, l.ClientID = usage.ScopeClient, byOrg[o][r.IntN(len(byOrg[o]))]
		}
		switch r.IntN(6) {
		case 0:
			l.Filter.HTTPMethods = []string{"POST", "PUT"}
		case 1:
			l.Filter.TemplateURIs = []string{"api/v2/resource1/{id}/sub1", "api/v2/resource2/{id}/sub2"}
		}
		switch r.IntN(10) {
		case 0:
			l.Metric, l.Value = usage.LimitErrorRate, 0.05
		case 1:
			l.Metric = usage.LimitResponseBytes
			l.Value *= 4000
		case 2:
			// Near enough to be crossed while the benchmark runs.
			l.Value = float64(100 + r.IntN(10_000))
		}
		l, err := l.Normalize(now)
		if err != nil {
			b.Fatal(err)
		}
		ls = append(ls, l)
	}
	return evs, ls
}
