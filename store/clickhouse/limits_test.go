package clickhouse_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/usaged/usaged/internal/clustertest"
	"github.com/usaged/usaged/limiteval"
	"github.com/usaged/usaged/store/clickhouse"
	"github.com/usaged/usaged/store/postgres"
	"github.com/usaged/usaged/usage"
)

// limitsFixture is what the limits tests share: a database of their own,
// an outbox in a PostgreSQL schema of its own, and the limits every node
// loads.
type limitsFixture struct {
	t      *testing.T
	cfg    clickhouse.Config
	outbox *postgres.Store

	mu     sync.Mutex
	limits []usage.Limit
}

func newLimitsFixture(t *testing.T) *limitsFixture {
	t.Helper()
	cfg := testConfig(t)
	cfg.Lease = 2 * time.Second // recoveries within seconds
	dbURL := clustertest.Postgres(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	schema := "usaged_test_" + hex.EncodeToString(b)
	outbox, err := postgres.Open(t.Context(), postgres.Config{URL: dbURL, Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		outbox.Close()
		conn, err := pgx.Connect(context.Background(), dbURL)
		if err == nil {
			_, _ = conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
			conn.Close(context.Background())
		}
	})
	return &limitsFixture{t: t, cfg: cfg, outbox: outbox}
}

// node opens a node evaluating the fixture's limits, with hook as its
// failpoints (nil: none); it is closed at the end of the test.
func (f *limitsFixture) node(hook func(step string) bool) (*clickhouse.Store, *clickhouse.Limits) {
	f.t.Helper()
	if hook == nil {
		hook = func(string) bool { return false }
	}
	s, err := clickhouse.OpenWithHook(context.Background(), f.cfg, hook)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { s.Close() })
	lim, err := s.EvaluateLimits(f.t.Context(), clickhouse.LimitsConfig{
		Outbox: f.outbox,
		Limits: func(context.Context) ([]usage.Limit, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return slices.Clone(f.limits), nil
		},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return s, lim
}

// put stores l, as the metadata store would, and has it evaluated.
func (f *limitsFixture) put(lim *clickhouse.Limits, l usage.Limit) usage.Limit {
	f.t.Helper()
	l, err := l.Normalize(time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.limits = append(slices.DeleteFunc(f.limits, func(x usage.Limit) bool { return x.ID == l.ID }), l)
	f.mu.Unlock()
	if err := lim.Changed(f.t.Context(), l); err != nil {
		f.t.Fatal(err)
	}
	return l
}

// crossing is a notification as the test reads it from its payload.
type crossing struct {
	limit     string
	version   int64
	window    string
	client    string
	threshold int
}

// notified returns the crossings in the outbox, failing the test on an id
// held twice (the table's key forbids it) or a payload that is not one.
func (f *limitsFixture) notified() []crossing {
	var out []crossing
	for _, p := range f.payloads() {
		out = append(out, crossing{p.LimitID, p.LimitVersion, p.WindowStart, p.ClientID, p.Threshold})
	}
	sortCrossings(out)
	return out
}

// payloads returns the payloads of the notifications in the outbox, the
// client only of a limit on each client, failing the test on an id held
// twice or a payload that is not one.
func (f *limitsFixture) payloads() []limiteval.Payload {
	f.t.Helper()
	ns, err := f.outbox.PendingNotifications(f.t.Context(), 100_000)
	if err != nil {
		f.t.Fatal(err)
	}
	ids := map[string]bool{}
	var out []limiteval.Payload
	for _, n := range ns {
		if ids[n.ID] {
			f.t.Fatalf("notification %s is in the outbox twice", n.ID)
		}
		ids[n.ID] = true
		var p limiteval.Payload
		if err := json.Unmarshal(n.Payload, &p); err != nil {
			f.t.Fatal(err)
		}
		if p.Scope != "eachClient" {
			p.ClientID = ""
		}
		out = append(out, p)
	}
	return out
}

func sortCrossings(cs []crossing) {
	sort.Slice(cs, func(i, j int) bool { return fmt.Sprint(cs[i]) < fmt.Sprint(cs[j]) })
}

// expected is the oracle: the crossings the distinct events imply, each
// limit's windows counted by hand from scratch (a count only grows, so the
// crossings of a window are the thresholds its final count meets).
func expected(limits []usage.Limit, events map[string]usage.Event) []crossing {
	var out []crossing
	for _, l := range limits {
		loc, _ := l.Window.Location()
		counts := map[[2]string]uint64{} // window start, client → requests
		for _, ev := range events {
			if ev.OrganizationID != l.OrganizationID || len(l.Filter.HTTPMethods) > 0 && !slices.Contains(l.Filter.HTTPMethods, ev.HTTPMethod) {
				continue
			}
			iv, _ := l.Window.Current(ev.Time)
			client := ""
			if l.Scope == usage.ScopeEachClient {
				client = ev.ClientID
			}
			counts[[2]string{iv.Start.In(loc).Format(time.RFC3339), client}]++
		}
		for k, n := range counts {
			for _, p := range l.Thresholds {
				// n/value ≥ p/100, in whole numbers
				hi, lo := bits.Mul64(n, 100)
				vhi, vlo := bits.Mul64(uint64(l.Value), uint64(p))
				if hi > vhi || hi == vhi && lo >= vlo {
					out = append(out, crossing{l.ID, l.Version, k[0], k[1], p})
				}
			}
		}
	}
	sortCrossings(out)
	return out
}

// limitEvent is event i of org at t: three clients, one in three a POST.
func limitEvent(org string, i int, t time.Time) usage.Event {
	return usage.Event{
		ID: fmt.Sprintf("%s-ev-%d", org, i), Time: t, OrganizationID: org,
		ClientID: fmt.Sprintf("client-%d", i%3), ClientName: "a client", UserID: "user",
		TemplateURI: "api/v2/things", HTTPMethod: []string{"GET", "GET", "POST"}[i%3], Status: 200,
	}
}

// settled waits until Query counts want events for org in the month of
// at, and every batch has settled.
func settled(t *testing.T, s *clickhouse.Store, org string, at time.Time, want int) {
	t.Helper()
	month := usage.GranularityMonth.TruncateIn(at, time.UTC)
	q, err := usage.Query{OrganizationID: org, Interval: usage.Interval{Start: month, End: usage.GranularityMonth.Next(month)},
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
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLimitsCrossedOnceAcrossNodes evaluates limits on three nodes sharing
// the servers: batches with overlapping duplicates sent to two of them at
// once, a batch retried on the other node, a node that dies after the
// commit point and one that dies after counting, each finished by another
// node's recovery, and a limit created while the nodes ingest. Every
// crossing the hand count implies is in the outbox exactly once, and no
// other.
func TestLimitsCrossedOnceAcrossNodes(t *testing.T) {
	f := newLimitsFixture(t)
	a, limA := f.node(nil)
	b, limB := f.node(nil)
	c, limC := f.node(nil)
	now := time.Now().UTC()
	month := usage.Window{Type: usage.WindowMonth}
	f.put(limA, usage.Limit{ID: "total", OrganizationID: "org-a", Name: "total", Metric: usage.LimitRequests, Scope: usage.ScopeOrganization,
		Window: month, Value: 100, Thresholds: []int{50, 80, 100}})
	f.put(limB, usage.Limit{ID: "per-client", OrganizationID: "org-a", Name: "per client", Metric: usage.LimitRequests, Scope: usage.ScopeEachClient,
		Window: month, Value: 34, Thresholds: []int{50, 100}})
	f.put(limA, usage.Limit{ID: "posts", OrganizationID: "org-b", Name: "posts", Metric: usage.LimitRequests, Scope: usage.ScopeOrganization,
		Window: month, Value: 17, Thresholds: []int{50, 100}, Filter: usage.LimitFilter{HTTPMethods: []string{"POST"}}})

	// The events: org-a 99 (33 per client), org-b 50 (16 POST), each sent
	// several times.
	at := now.Add(-time.Minute)
	if m := usage.GranularityMonth.TruncateIn(now, time.UTC); at.Before(m) {
		at = m
	}
	distinct := map[string]usage.Event{}
	var all []usage.Event
	for i := range 99 {
		all = append(all, limitEvent("org-a", i, at))
	}
	for i := range 50 {
		all = append(all, limitEvent("org-b", i, at))
	}
	for _, ev := range all {
		distinct[ev.ID] = ev
	}
	from := now.Add(-24 * time.Hour)
	send := func(s *clickhouse.Store, evs []usage.Event) error {
		_, err := s.Append(context.Background(), evs, from)
		return err
	}

	// A node dies after its commit point, and one after counting: other
	// nodes' recoveries finish both.
	for i, step := range []string{"after-commit", "after-limits"} {
		dying, _ := f.node(func(s string) bool { return s == step })
		if err := send(dying, all[i*10:i*10+10]); err == nil {
			t.Fatalf("the batch stopped %s answered", step)
		}
		dying.Close() // its sweeper with it: another node recovers the batch
	}

	// Overlapping sends to two nodes at once, a limit created meanwhile.
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := []*clickhouse.Store{a, c}[g%2]
			for lo := g * 7; lo < len(all); lo += 23 {
				hi := min(lo+31, len(all))
				for {
					if err := send(node, all[lo:hi]); err == nil {
						break
					} else if usage.KindOf(err) != usage.KindUnavailable {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	// Created amid the ingest, its window already holding events: 99 is
	// exactly 165 % of 60, 167 % is beyond.
	// Two created at once on two nodes, so that their seedings overlap:
	// 50 is 125 % of 40.
	time.Sleep(300 * time.Millisecond)
	var seeding sync.WaitGroup
	seeding.Add(1)
	go func() {
		defer seeding.Done()
		f.put(limC, usage.Limit{ID: "late-b", OrganizationID: "org-b", Name: "late b", Metric: usage.LimitRequests, Scope: usage.ScopeOrganization,
			Window: month, Value: 40, Thresholds: []int{50, 125, 126}})
	}()
	f.put(limB, usage.Limit{ID: "late", OrganizationID: "org-a", Name: "late", Metric: usage.LimitRequests, Scope: usage.ScopeOrganization,
		Window: month, Value: 60, Thresholds: []int{25, 50, 165, 167}})
	seeding.Wait()
	wg.Wait()
	// A batch retried on the other node: all duplicates.
	if err := send(a, all[40:90]); err != nil {
		t.Fatal(err)
	}
	if err := send(c, all[40:90]); err != nil {
		t.Fatal(err)
	}
	settled(t, a, "org-a", at, 99)
	settled(t, a, "org-b", at, 50)

	f.mu.Lock()
	limits := slices.Clone(f.limits)
	f.mu.Unlock()
	want := expected(limits, distinct)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f.notified()
		if slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox holds\n%v\nwant\n%v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := a.Stats().Recovered + b.Stats().Recovered + c.Stats().Recovered; n < 2 {
		t.Errorf("the other nodes recovered %d batches, want at least the 2 stopped ones", n)
	}
}

// TestLimitsSurviveALostClaimStore loses every key of the store in Redis
// (what FLUSHALL does to it, without touching other databases' keys) between
// two rounds of ingest: the counters are seeded again from ClickHouse's
// counts, so that a threshold only the two rounds together reach is crossed,
// once, and those crossed in the first round are not crossed again.
func TestLimitsSurviveALostClaimStore(t *testing.T) {
	f := newLimitsFixture(t)
	a, limA := f.node(nil)
	b, _ := f.node(nil)
	now := time.Now().UTC()
	month := usage.Window{Type: usage.WindowMonth}
	f.put(limA, usage.Limit{ID: "total", OrganizationID: "org-a", Name: "total", Metric: usage.LimitRequests, Scope: usage.ScopeOrganization,
		Window: month, Value: 100, Thresholds: []int{40, 80, 95}})
	at := now.Add(-time.Minute)
	if m := usage.GranularityMonth.TruncateIn(now, time.UTC); at.Before(m) {
		at = m
	}
	distinct := map[string]usage.Event{}
	round := func(lo, hi int) {
		t.Helper()
		var evs []usage.Event
		for i := lo; i < hi; i++ {
			ev := limitEvent("org-a", i, at)
			evs = append(evs, ev)
			distinct[ev.ID] = ev
		}
		var wg sync.WaitGroup
		for i, s := range []*clickhouse.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := i * 5; j < len(evs); j += 10 {
					if _, err := s.Append(context.Background(), evs[j:min(j+10, len(evs))], now.Add(-24*time.Hour)); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		settled(t, a, "org-a", at, len(distinct))
	}
	round(0, 45)
	opts, err := redis.ParseURL(f.cfg.Claims)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opts)
	defer rc.Close()
	keys, err := rc.Keys(t.Context(), "usaged:"+f.cfg.Database+":*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("the store's keys: %d, %v", len(keys), err)
	}
	if err := rc.Del(t.Context(), keys...).Err(); err != nil {
		t.Fatal(err)
	}
	round(45, 90)
	f.mu.Lock()
	want := expected(f.limits, distinct)
	f.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f.notified()
		if slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox holds\n%v\nwant\n%v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
