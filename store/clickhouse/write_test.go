package clickhouse_test

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zeebo/xxh3"

	"github.com/usaged/usaged/store/clickhouse"
	"github.com/usaged/usaged/usage"
)

// openNode opens one node of the store cfg names, closed at the end of the
// test.
func openNode(t *testing.T, cfg clickhouse.Config) *clickhouse.Store {
	t.Helper()
	s, err := clickhouse.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testEvent returns event id of org at t, its status varying with id.
func testEvent(org string, id int, t time.Time) usage.Event {
	return usage.Event{
		ID: fmt.Sprintf("ev-%d", id), Time: t.Add(time.Duration(id%3600) * time.Second), OrganizationID: org,
		ClientID: fmt.Sprintf("client-%d", id%3), ClientName: "a client", UserID: fmt.Sprintf("user-%d", id%5),
		TemplateURI: "api/v2/things", HTTPMethod: "GET", Status: []int{200, 301, 404, 429, 503}[id%5],
	}
}

// oracle is what the counts must be: per organization, the distinct
// events sent and how many of them had a 2xx status.
type oracle map[string][2]uint64

func (o oracle) add(events []usage.Event, seen map[[2]string]bool) {
	for _, e := range events {
		k := [2]string{e.OrganizationID, e.ID}
		if seen[k] {
			continue
		}
		seen[k] = true
		c := o[e.OrganizationID]
		c[0]++
		if e.Status/100 == 2 {
			c[1]++
		}
		o[e.OrganizationID] = c
	}
}

// counted reads, on every replica, the requests and 2xx of each
// organization from event_counts and from client_day_counts, and fails the
// test unless each equals want.
func counted(t *testing.T, cfg clickhouse.Config) []oracle {
	t.Helper()
	var out []oracle
	for _, addr := range cfg.Replicas {
		conn, err := ch.Open(&ch.Options{Addr: []string{addr}})
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"event_counts", "client_day_counts"} {
			rows, err := conn.Query(context.Background(),
				"SELECT org_id, sum(requests), sum(status_2xx) FROM "+cfg.Database+"."+table+" GROUP BY org_id")
			if err != nil {
				t.Fatal(err)
			}
			got := oracle{}
			for rows.Next() {
				var org string
				var c [2]uint64
				if err := rows.Scan(&org, &c[0], &c[1]); err != nil {
					t.Fatal(err)
				}
				got[org] = c
			}
			rows.Close()
			out = append(out, got)
		}
		conn.Close()
	}
	return out
}

// checkCounts fails the test unless every replica's counts are want.
func checkCounts(t *testing.T, cfg clickhouse.Config, want oracle) {
	t.Helper()
	for i, got := range counted(t, cfg) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("replica %s, %s: counts %v, want %v", cfg.Replicas[i/2], []string{"event_counts", "client_day_counts"}[i%2], got, want)
		}
	}
}

// awaitCounts waits up to 20 s for every replica's counts to be want.
func awaitCounts(t *testing.T, cfg clickhouse.Config, want oracle) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		same := true
		for _, got := range counted(t, cfg) {
			same = same && fmt.Sprint(got) == fmt.Sprint(want)
		}
		if same {
			return
		}
	}
	checkCounts(t, cfg, want)
}

// awaitRecovered waits up to 20 s for s to have recovered one batch: the
// counts are in before the claims are settled.
func awaitRecovered(t *testing.T, s *clickhouse.Store) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); s.Stats().Recovered == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if st := s.Stats(); st.Recovered != 1 {
		t.Errorf("%+v, want 1 batch recovered", st)
	}
}

func outcomes(outs []usage.Outcome) (accepted, duplicate int) {
	for _, o := range outs {
		if o == usage.Accepted {
			accepted++
		} else {
			duplicate++
		}
	}
	return accepted, duplicate
}

func TestAppendCountsEveryEventOnceAcrossNodes(t *testing.T) {
	cfg := testConfig(t)
	cfg.Lease = 3 * time.Second
	nodes := []*clickhouse.Store{openNode(t, cfg), openNode(t, cfg), openNode(t, cfg)}
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	orgs := []string{"org-a", "org-b", "org-c"}
	from := hour.Add(-24 * time.Hour)

	var (
		mu       sync.Mutex
		want     = oracle{}
		seen     = map[[2]string]bool{}
		accepted int
		failures atomic.Int64
		wg       sync.WaitGroup
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for round := range 6 {
				events := make([]usage.Event, 800)
				for i := range events {
					events[i] = testEvent(orgs[r.IntN(len(orgs))], r.IntN(3000), hour)
				}
				node := nodes[(g+round)%len(nodes)]
				for attempt := 0; ; attempt++ {
					outs, err := node.Append(context.Background(), events, from)
					if err == nil {
						a, _ := outcomes(outs)
						mu.Lock()
						accepted += a
						want.add(events, seen)
						mu.Unlock()
						break
					}
					failures.Add(1)
					if usage.KindOf(err) != usage.KindUnavailable || attempt == 20 {
						t.Errorf("goroutine %d, round %d: %v", g, round, err)
						return
					}
					node = nodes[(g+round+attempt+1)%len(nodes)]
				}
			}
		}()
	}
	wg.Wait()
	checkCounts(t, cfg, want)
	if f := failures.Load(); f == 0 && accepted != len(seen) || accepted > len(seen) {
		t.Errorf("%d events accepted, %d distinct sent (%d failed calls)", accepted, len(seen), f)
	}
	t.Logf("%d distinct events, %d failed calls", len(seen), failures.Load())
	for i, n := range nodes {
		t.Logf("node %d: %+v", i, n.Stats())
	}
}

func TestAppendRecoversTheBatchOfADeadNode(t *testing.T) {
	cfg := testConfig(t)
	cfg.Lease = time.Second
	dead, err := clickhouse.OpenWithHook(context.Background(), cfg, func(step string) bool { return step == "after-commit" })
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Now().UTC().Truncate(time.Hour)
	events := make([]usage.Event, 500)
	for i := range events {
		events[i] = testEvent("org-r", i, hour.Add(-time.Duration(i%3)*time.Hour))
	}
	want := oracle{}
	want.add(events, map[[2]string]bool{})
	from := hour.Add(-24 * time.Hour)
	if _, err := dead.Append(context.Background(), events, from); err == nil {
		t.Fatal("the batch stopped after its commit answered no error")
	}
	dead.Close() // its sweeper dies with it

	other := openNode(t, cfg)
	outs, err := other.Append(context.Background(), events, from)
	if err != nil {
		t.Fatal(err)
	}
	if a, d := outcomes(outs); a != 0 || d != len(events) {
		t.Errorf("a retry of the committed events: %d accepted, %d duplicates, want all duplicates", a, d)
	}
	awaitCounts(t, cfg, want)
	awaitRecovered(t, other)
	outs, err = other.Append(context.Background(), events, from)
	if a, _ := outcomes(outs); err != nil || a != 0 {
		t.Errorf("a retry after the recovery: %d accepted, %v", a, err)
	}
	checkCounts(t, cfg, want)
}

// zombie runs a batch on a node that pauses after writing its journal,
// past its lease, while another node, opened with cfg, sends the same
// events; then it wakes the paused node, and returns the errors of both
// calls and the events' oracle.
func zombie(t *testing.T, cfg clickhouse.Config) (want oracle, otherStats clickhouse.Stats, zombieErr, otherErr error) {
	t.Helper()
	paused, wake := make(chan struct{}), make(chan struct{})
	zcfg := cfg
	zcfg.Unsafe = false
	z, err := clickhouse.OpenWithHook(context.Background(), zcfg, func(step string) bool {
		if step == "after-journal" {
			close(paused)
			<-wake
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	other := openNode(t, cfg)
	hour := time.Now().UTC().Truncate(time.Hour)
	events := make([]usage.Event, 300)
	for i := range events {
		events[i] = testEvent("org-z", i, hour)
	}
	want = oracle{}
	want.add(events, map[[2]string]bool{})
	from := hour.Add(-24 * time.Hour)
	done := make(chan error)
	go func() {
		_, err := z.Append(context.Background(), events, from)
		done <- err
	}()
	<-paused
	outs, otherErr := other.Append(context.Background(), events, from)
	if a, _ := outcomes(outs); otherErr == nil && a != len(events) {
		t.Errorf("the node that took over: %d of %d accepted", a, len(events))
	}
	close(wake)
	return want, other.Stats(), <-done, otherErr
}

func TestAppendAbortsAZombieBatch(t *testing.T) {
	cfg := testConfig(t)
	cfg.Lease = time.Second
	want, st, zombieErr, otherErr := zombie(t, cfg)
	if otherErr != nil {
		t.Fatal(otherErr)
	}
	if st.Aborted != 1 || st.Waits != 1 {
		t.Errorf("the node that took over: %+v, want 1 batch aborted after 1 wait", st)
	}
	if zombieErr == nil || usage.KindOf(zombieErr) != usage.KindUnavailable {
		t.Errorf("the zombie's call answered %v, want an error of kind Unavailable", zombieErr)
	}
	checkCounts(t, cfg, want)
}

// The negative control: without the keeper's decision, the zombie's batch
// commits too, and its events count twice. A test that passes here would
// not catch the fault it is meant to.
func TestAppendUnsafeCountsAZombieBatchTwice(t *testing.T) {
	cfg := testConfig(t)
	cfg.Lease = time.Second
	cfg.Unsafe = true
	want, _, zombieErr, otherErr := zombie(t, cfg)
	if zombieErr != nil || otherErr != nil {
		t.Fatalf("zombie: %v, other: %v", zombieErr, otherErr)
	}
	for org, c := range want {
		want[org] = [2]uint64{2 * c[0], 2 * c[1]}
	}
	checkCounts(t, cfg, want)
}

func TestAppendForgetsKeysBeforeTheWindow(t *testing.T) {
	cfg := testConfig(t)
	s := openNode(t, cfg)
	at := time.Now().UTC().Truncate(time.Hour).Add(-48 * time.Hour)
	ev := testEvent("org-w", 1, at)
	f := func(events []usage.Event, from time.Time, want ...usage.Outcome) {
		t.Helper()
		outs, err := s.Append(context.Background(), events, from)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(outs) != fmt.Sprint(want) {
			t.Errorf("outcomes %v, want %v", outs, want)
		}
	}
	f([]usage.Event{ev, ev}, at.Add(-time.Hour), usage.Accepted, usage.Duplicate)
	f([]usage.Event{ev}, at, usage.Duplicate)
	f([]usage.Event{ev}, at.Add(2*time.Hour), usage.Accepted)
	f([]usage.Event{ev}, at, usage.Duplicate)
	checkCounts(t, cfg, oracle{"org-w": {2, 0}})
}

func TestAppendActivityOnce(t *testing.T) {
	cfg := testConfig(t)
	s := openNode(t, cfg)
	service, other := usage.NewGUID(), usage.NewGUID()
	at := time.Now().UTC().Truncate(time.Second)
	acts := []usage.Activity{
		{ID: "m1", Time: at, Kind: usage.ActivityMessage, User: usage.NewGUID(), Attachments: 2},
		{ID: "s1", Time: at.Add(-time.Hour), Kind: usage.ActivityStorage, StorageBytes: 10},
		{ID: "m1", Time: at, Kind: usage.ActivityMessage},
	}
	from := at.Add(-24 * time.Hour)
	f := func(service usage.GUID, want ...usage.Outcome) {
		t.Helper()
		outs, err := s.AppendActivity(context.Background(), service, acts, from)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(outs) != fmt.Sprint(want) {
			t.Errorf("outcomes %v, want %v", outs, want)
		}
	}
	f(service, usage.Accepted, usage.Accepted, usage.Duplicate)
	f(service, usage.Duplicate, usage.Duplicate, usage.Duplicate)
	f(other, usage.Accepted, usage.Accepted, usage.Duplicate)

	conn, err := ch.Open(&ch.Options{Addr: cfg.Replicas[:1]})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var journaled, published uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+cfg.Database+".activity WHERE service = ?",
		service.String()).Scan(&journaled); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+cfg.Database+".published WHERE scope = ?",
		"a:"+service.String()).Scan(&published); err != nil {
		t.Fatal(err)
	}
	if journaled != 2 || published != 2 {
		t.Errorf("service's activity: %d rows journaled, %d hours published, want 2 and 2", journaled, published)
	}
}

// TestIngestAgainstClickHouse measures, side by side in one run, the
// write protocol on one node (callers sending batches of 5,000 new events,
// gathered by the group commit as a deployed node gathers them) and
// ClickHouse's own insert of the same rows into the same tables with the
// same quorum (batches of 20,000 events, about what the group commit
// gathers, as many at a time as the protocol runs): what the claims, the
// commit records and the settling cost. The two take turns for
// USAGED_CLICKHOUSE_THROUGHPUT_ROUNDS rounds (default 3) of
// USAGED_CLICKHOUSE_THROUGHPUT_SECONDS each (default 20), so that the
// background merges one leaves behind weigh on both alike. It runs when
// USAGED_CLICKHOUSE_THROUGHPUT=1.
func TestIngestAgainstClickHouse(t *testing.T) {
	if os.Getenv("USAGED_CLICKHOUSE_THROUGHPUT") != "1" {
		t.Skip("set USAGED_CLICKHOUSE_THROUGHPUT=1 to measure")
	}
	secs, _ := strconv.Atoi(os.Getenv("USAGED_CLICKHOUSE_THROUGHPUT_SECONDS"))
	d := time.Duration(cmp.Or(secs, 20)) * time.Second
	rounds, _ := strconv.Atoi(os.Getenv("USAGED_CLICKHOUSE_THROUGHPUT_ROUNDS"))
	rounds = cmp.Or(rounds, 3)
	callers, _ := strconv.Atoi(os.Getenv("USAGED_CLICKHOUSE_THROUGHPUT_CALLERS"))
	callers = cmp.Or(callers, 8)
	hour := time.Now().UTC().Truncate(time.Hour)
	batchOf := func(g, n, size int) []usage.Event {
		events := make([]usage.Event, size)
		for i := range events {
			events[i] = testEvent(fmt.Sprintf("org-%d", i%7), g*100_000_000+n*size+i, hour)
		}
		return events
	}
	// side is one of the two: its events and time over the rounds.
	type side struct {
		name    string
		workers int
		send    func(g, n int) (int, error)
		events  int64
		elapsed time.Duration
	}
	// run calls send from the side's workers for d, and reports events/s
	// and the process's CPU time per event.
	run := func(round int, sd *side) {
		var sent atomic.Int64
		var wg sync.WaitGroup
		var before, after syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		start := time.Now()
		for g := range sd.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; time.Since(start) < d; n++ {
					k, err := sd.send(round*1000+g, n)
					if err != nil {
						t.Error(err)
						return
					}
					sent.Add(int64(k))
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
		n := sent.Load()
		sd.events += n
		sd.elapsed += elapsed
		t.Logf("round %d, %-28s %9d events in %v: %7.0f events/s, client CPU %.1f µs per event", round+1,
			sd.name, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), float64(cpu.Microseconds())/float64(max(n, 1)))
	}
	base := openNode(t, testConfig(t))
	own := &side{name: "clickhouse's own insert", workers: clickhouse.BatchesInFlight, send: func(g, n int) (int, error) {
		events := batchOf(g, n, 20_000)
		return len(events), base.WriteUnprotected(context.Background(), fmt.Sprintf("bench-%d-%d", g, n), events)
	}}
	cfg := testConfig(t)
	cfg.GroupCommit = 0 // the default, not the suites' short gathering
	s := openNode(t, cfg)
	proto := &side{name: fmt.Sprintf("usaged's protocol, %d callers", callers), workers: callers, send: func(g, n int) (int, error) {
		events := batchOf(g, n, 5_000)
		_, err := s.Append(context.Background(), events, hour.Add(-24*time.Hour))
		return len(events), err
	}}
	for r := range rounds {
		run(r, own)
		run(r, proto)
	}
	// Where a batch's time went, step by step.
	for step, st := range stepsTimed(t, s) {
		t.Logf("step %-8s %4d batches, mean %6.1f ms", step, st.batches, 1000*st.seconds/float64(max(st.batches, 1)))
	}
	rate := func(sd *side) float64 { return float64(sd.events) / sd.elapsed.Seconds() }
	t.Logf("over %d rounds: clickhouse's own insert %.0f events/s, usaged's protocol %.0f events/s: the protocol takes %.2f× what ClickHouse's own insert takes; %+v",
		rounds, rate(own), rate(proto), rate(proto)/rate(own), s.Stats())
}

// The environment of a child process that appends killEvents at a
// failpoint: the database and the failpoint.
const (
	envKillDatabase  = "USAGED_TEST_KILL_DATABASE"
	envKillFailpoint = "USAGED_TEST_KILL_FAILPOINT"
)

func killEvents() []usage.Event {
	hour := time.Now().UTC().Truncate(time.Hour)
	events := make([]usage.Event, 400)
	for i := range events {
		events[i] = testEvent(fmt.Sprintf("org-k%d", i%2), i, hour.Add(-time.Duration(i%2)*time.Hour))
	}
	return events
}

// TestKillChild is the process TestAppendSurvivesAKillAtEveryStep kills:
// it runs only as that test's child.
func TestKillChild(t *testing.T) {
	db := os.Getenv(envKillDatabase)
	if db == "" {
		t.Skip("runs as the child of TestAppendSurvivesAKillAtEveryStep")
	}
	cfg := testConfig(t)
	cfg.Database, cfg.Failpoint = db, os.Getenv(envKillFailpoint)
	s, err := clickhouse.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Append(context.Background(), killEvents(), time.Now().Add(-24*time.Hour))
	t.Fatalf("the failpoint %s did not stop the process; Append answered %v", cfg.Failpoint, err)
}

func TestAppendSurvivesAKillAtEveryStep(t *testing.T) {
	steps := []string{"after-claim", "after-journal", "after-commit", "after-limits", "after-counts", "after-published", "after-settle"}
	for i, step := range steps {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.Lease = time.Second
			cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envKillDatabase+"="+cfg.Database, envKillFailpoint+"="+step)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 86 {
				t.Fatalf("the child answered %v, want exit status 86:\n%s", err, out)
			}
			events := killEvents()
			want := oracle{}
			want.add(events, map[[2]string]bool{})
			s := openNode(t, cfg)
			outs, err := s.Append(context.Background(), events, time.Now().Add(-24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			// Killed before its commit, the batch is aborted and its events
			// accepted again; after, they are its own.
			wantAccepted := 0
			if i < 2 {
				wantAccepted = len(events)
			}
			if a, _ := outcomes(outs); a != wantAccepted {
				t.Errorf("the retry accepted %d events, want %d", a, wantAccepted)
			}
			awaitCounts(t, cfg, want)
		})
	}
}

// A node paused after its commit, past its lease, finds its batch
// recovered by another when it wakes; it then writes the same blocks,
// which ClickHouse drops: the counts are there once.
func TestAppendWritesTheSameBlocksAsARecovery(t *testing.T) {
	cfg := testConfig(t)
	cfg.Lease = time.Second
	paused, wake := make(chan struct{}), make(chan struct{})
	slow, err := clickhouse.OpenWithHook(context.Background(), cfg, func(step string) bool {
		if step == "after-commit" {
			close(paused)
			<-wake
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	hour := time.Now().UTC().Truncate(time.Hour)
	events := make([]usage.Event, 600)
	for i := range events {
		// Three organizations, two months: several blocks per table.
		events[i] = testEvent(fmt.Sprintf("org-s%d", i%3), i, hour.Add(-time.Duration(i%2)*40*24*time.Hour))
	}
	want := oracle{}
	want.add(events, map[[2]string]bool{})
	done := make(chan error)
	go func() {
		outs, err := slow.Append(context.Background(), events, hour.Add(-60*24*time.Hour))
		if a, _ := outcomes(outs); err == nil && a != len(events) {
			err = fmt.Errorf("%d of %d accepted", a, len(events))
		}
		done <- err
	}()
	<-paused
	other := openNode(t, cfg)
	awaitCounts(t, cfg, want)
	close(wake)
	if err := <-done; err != nil {
		t.Fatalf("the slow node's call: %v", err)
	}
	checkCounts(t, cfg, want)

	conn, err := ch.Open(&ch.Options{Addr: cfg.Replicas[:1]})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	f := func(table string, want uint64) {
		t.Helper()
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+cfg.Database+"."+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s has %d rows, want %d", table, n, want)
		}
	}
	f("events", 600)
	f("published", 3*2)  // organizations × hours
	f("client_names", 3) // an organization's events have one client (both follow i%3)
	awaitRecovered(t, other)
}

// A node paused after its commit for longer than its window to publish (6
// leases) inserts nothing when it wakes: a recovery finished the batch, and
// blocks inserted again that late might be past ClickHouse's deduplication.
// Its call fails; the events are counted once, and Duplicate when retried.
func TestAZombiePastItsWindowDoesNotPublish(t *testing.T) {
	cfg := testConfig(t)
	cfg.Lease = 500 * time.Millisecond // a window of 3 s
	paused := make(chan struct{})
	var once sync.Once
	slow, err := clickhouse.OpenWithHook(context.Background(), cfg, func(step string) bool {
		if step == "after-commit" {
			once.Do(func() {
				close(paused)
				time.Sleep(4 * time.Second)
			})
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	hour := time.Now().UTC().Truncate(time.Hour)
	events := make([]usage.Event, 300)
	for i := range events {
		events[i] = testEvent(fmt.Sprintf("org-z%d", i%3), i, hour)
	}
	want := oracle{}
	want.add(events, map[[2]string]bool{})
	done := make(chan error)
	go func() {
		_, err := slow.Append(context.Background(), events, hour.Add(-24*time.Hour))
		done <- err
	}()
	<-paused
	other := openNode(t, cfg)
	awaitCounts(t, cfg, want)
	if err := <-done; err == nil {
		t.Fatal("the node paused past its window to publish published its batch when it woke; want its call to fail")
	}
	checkCounts(t, cfg, want)
	// An operator sees it on /metrics.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(slow)
	if n := gathered(t, reg, "usaged_cluster_batches_past_window_total"); n != 1 {
		t.Errorf("usaged_cluster_batches_past_window_total = %v, want 1", n)
	}
	outs, err := other.Append(context.Background(), events, hour.Add(-24*time.Hour))
	if a, d := outcomes(outs); err != nil || a != 0 || d != len(events) {
		t.Fatalf("the retry: %d accepted, %d duplicates, %v; want all %d Duplicate", a, d, err, len(events))
	}
	checkCounts(t, cfg, want)
}

func TestAppendActivityOnceAcrossNodes(t *testing.T) {
	cfg := testConfig(t)
	cfg.Lease = 2 * time.Second
	nodes := []*clickhouse.Store{openNode(t, cfg), openNode(t, cfg), openNode(t, cfg)}
	service := usage.NewGUID()
	at := time.Now().UTC().Truncate(time.Hour)
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		wg   sync.WaitGroup
	)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 2))
			for round := range 4 {
				acts := make([]usage.Activity, 300)
				for i := range acts {
					n := r.IntN(1000)
					acts[i] = usage.Activity{ID: fmt.Sprintf("act-%d", n), Time: at.Add(time.Duration(n) * time.Second),
						Kind: usage.ActivityFeature, User: usage.GUID{byte(n)}, Feature: usage.FeatureSecureForms}
				}
				for attempt := 0; ; attempt++ {
					_, err := nodes[(g+round+attempt)%len(nodes)].AppendActivity(context.Background(), service, acts, at.Add(-time.Hour))
					if err == nil {
						break
					}
					if usage.KindOf(err) != usage.KindUnavailable || attempt == 20 {
						t.Errorf("goroutine %d, round %d: %v", g, round, err)
						return
					}
				}
				mu.Lock()
				for _, a := range acts {
					seen[a.ID] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, addr := range cfg.Replicas {
		conn, err := ch.Open(&ch.Options{Addr: []string{addr}})
		if err != nil {
			t.Fatal(err)
		}
		var rows, distinct uint64
		// The journal through the published batches, as readers see it.
		if err := conn.QueryRow(context.Background(), "SELECT count(), uniqExact(activity_id) FROM "+cfg.Database+
			".activity WHERE service = ? AND batch_id IN (SELECT batch_id FROM "+cfg.Database+".published WHERE scope = ?)",
			service.String(), "a:"+service.String()).Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if rows != uint64(len(seen)) || distinct != uint64(len(seen)) {
			t.Errorf("replica %s: %d published rows of %d activity IDs, want %d once each", addr, rows, distinct, len(seen))
		}
	}
}

// TestSettledKeysAreNeverTakenOver: a settled batch's claims keep their
// pending value and its record is deleted; a node that read a claim before
// the batch settled and then found no record must not take the key over,
// since the batch's mark says it committed.
func TestSettledKeysAreNeverTakenOver(t *testing.T) {
	cfg := testConfig(t)
	s := openNode(t, cfg)
	ctx := t.Context()
	now := time.Now().UTC()
	ev := testEvent("org-t", 1, now)
	if outs, err := s.Append(ctx, []usage.Event{ev}, now.Add(-time.Hour)); err != nil || outs[0] != usage.Accepted {
		t.Fatalf("Append = %v, %v", outs, err)
	}
	key, value, err := s.ClaimOf(ctx, ev.OrganizationID, ev.ID)
	owner, _, ok := strings.Cut(strings.TrimPrefix(value, "p|"), "|")
	if err != nil || !ok {
		t.Fatalf("the claim of %s is %q, %v; want claimed by its batch", ev.ID, value, err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if marked, err := s.Marked(ctx, owner); err != nil || marked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %s did not settle within 5 s", owner)
		}
	}
	if took, err := s.TakeOver(ctx, owner, key, value); err != nil || took {
		t.Fatalf("took over a key of settled batch %s: %v, %v", owner, took, err)
	}
	if outs, err := s.Append(ctx, []usage.Event{ev}, now.Add(-time.Hour)); err != nil || outs[0] != usage.Duplicate {
		t.Fatalf("Append again = %v, %v; want Duplicate", outs, err)
	}
	// The negative control: a key pending for a batch without a mark is
	// taken over from the value seen.
	if took, err := s.TakeOver(ctx, "unsettled", key, value); err != nil || !took {
		t.Fatalf("took over a key pending for an unmarked batch: %v, %v; want true", took, err)
	}
}

// TestClaimsAcrossGenerations claims an id in one generation of the claim
// hashes and again in the next: the second finds the first's value, and a
// take-over moves the claim into the current generation, so that it
// expires with it and an id keeps one value.
func TestClaimsAcrossGenerations(t *testing.T) {
	// The first node fixes the cluster's generation length, its window + 4 h:
	// a window that puts now in its generation's second hour, so that a
	// claim two hours ago is in the one before, and within the window.
	now := time.Now()
	window := 24 * time.Hour
	for into := func() time.Duration {
		return time.Duration(now.UnixMilli()%(window+4*time.Hour).Milliseconds()) * time.Millisecond
	}; into() < time.Hour || into() >= 2*time.Hour; {
		window += time.Hour
	}
	cfg := testConfig(t)
	cfg.DedupeWindow = window
	s := openNode(t, cfg)
	ctx := t.Context()
	rdb := redisClient(t, cfg)
	if _, gen, err := s.ClaimIDs(ctx, "org-g", []string{"first"}, now, now.Add(-window)); err != nil || gen != window+4*time.Hour {
		t.Fatalf("generation length %s, %v; want the window %s + 4 h", gen, err, window)
	}
	before := now.Add(-2 * time.Hour)
	if vals, _, err := s.ClaimIDs(ctx, "org-g", []string{"a", "b"}, before, before.Add(-window)); err != nil || vals[0] != "" || vals[1] != "" {
		t.Fatalf("claims two hours ago = %q, %v; want both new", vals, err)
	}
	old, value, err := s.ClaimOf(ctx, "org-g", "a")
	if err != nil {
		t.Fatal(err)
	}
	vals, _, err := s.ClaimIDs(ctx, "org-g", []string{"a", "c"}, now, now.Add(-window))
	if err != nil || vals[0] != value || vals[1] != "" {
		t.Fatalf("claims now = %q, %v; want a's value of the generation before %q, then new", vals, err, value)
	}
	cur, _, err := s.ClaimOf(ctx, "org-g", "c")
	if err != nil || cur.Key() == old.Key() {
		t.Fatalf("c, claimed now, is in %s, %v; want another generation than a's %s", cur.Key(), err, old.Key())
	}
	owner, _, _ := strings.Cut(strings.TrimPrefix(value, "p|"), "|")
	if took, err := s.TakeOver(ctx, owner, old, value); err != nil || !took {
		t.Fatalf("take-over of a = %v, %v", took, err)
	}
	moved, now2, err := s.ClaimOf(ctx, "org-g", "a")
	if err != nil || !strings.HasPrefix(now2, "p|taker|") || moved.Key() == old.Key() {
		t.Fatalf("a after its take-over: %q in %s, %v; want the taker's, moved out of %s", now2, moved.Key(), err, old.Key())
	}
	if n, err := rdb.HExists(ctx, old.Key(), old.Field()).Result(); err != nil || n {
		t.Fatalf("a is still in %s after its take-over (%v, %v)", old.Key(), n, err)
	}
}

// TestClaimsOfAnEarlierVersionConverted writes claims as a usaged before
// the claim hashes did, a string key each, and opens the store again: the
// events they claimed are duplicates, committed or pending for a batch
// with a mark, their claims are in the hashes, and the keys are gone.
func TestClaimsOfAnEarlierVersionConverted(t *testing.T) {
	cfg := testConfig(t)
	ctx := t.Context()
	s := openNode(t, cfg)
	rdb := redisClient(t, cfg)
	now := time.Now().UTC()
	keyOf := func(id string) string {
		x := xxh3.HashString128Seed(id, s.Seed())
		h := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, x.Hi), uint32(x.Lo))
		return "usaged:" + cfg.Database + ":e:org-v1:" + hex.EncodeToString(h)
	}
	hour := strconv.FormatInt(now.Truncate(time.Hour).Unix(), 10)
	expiry := now.Add(48 * time.Hour).Truncate(time.Millisecond)
	evs := []usage.Event{testEvent("org-v1", 1, now), testEvent("org-v1", 2, now), testEvent("org-v1", 3, now)}
	old := map[string]string{
		keyOf(evs[0].ID): "c|" + hour,
		keyOf(evs[1].ID): "p|oldbatch|" + strconv.FormatInt(now.Add(time.Minute).UnixMilli(), 10) + "|" + hour,
	}
	for k, v := range old {
		if err := rdb.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.PExpireAt(ctx, k, expiry).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Set(ctx, "usaged:"+cfg.Database+":b:oldbatch", "c", time.Hour).Err(); err != nil { // its mark
		t.Fatal(err)
	}
	s.Close()

	s = openNode(t, cfg)
	outs, err := s.Append(ctx, evs, now.Add(-time.Hour))
	if err != nil || outs[0] != usage.Duplicate || outs[1] != usage.Duplicate || outs[2] != usage.Accepted {
		t.Fatalf("Append after the conversion = %v, %v; want the two claimed before Duplicate", outs, err)
	}
	for i, ev := range evs[:2] {
		if n, err := rdb.Exists(ctx, keyOf(ev.ID)).Result(); err != nil || n != 0 {
			t.Errorf("the key of %s is still there (%d, %v)", ev.ID, n, err)
		}
		c, v, err := s.ClaimOf(ctx, "org-v1", ev.ID)
		if err != nil || v != old[keyOf(evs[i].ID)] {
			t.Fatalf("claim of %s after the conversion: %q, %v; want %q", ev.ID, v, err, old[keyOf(evs[i].ID)])
		}
		if at, err := rdb.Do(ctx, "PEXPIRETIME", c.Key()).Int64(); err != nil || at < expiry.UnixMilli() {
			t.Errorf("the hash of %s expires at %d, %v; want no earlier than its key did, %d", ev.ID, at, err, expiry.UnixMilli())
		}
	}
}

// gathered returns the value of the metric named name that reg gathers.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s gathered", name)
	return 0
}

// TestBatchStepsOnMetrics: each step of every batch a node writes is timed
// on /metrics, so that an operator sees which server slow ingest waits for.
func TestBatchStepsOnMetrics(t *testing.T) {
	cfg := testConfig(t)
	s := openNode(t, cfg)
	hour := time.Now().UTC().Truncate(time.Hour)
	for b := range 3 {
		events := make([]usage.Event, 50)
		for i := range events {
			events[i] = testEvent("org-m", b*100+i, hour)
		}
		if _, err := s.Append(context.Background(), events, hour.Add(-24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// steps returns the number of batches timed, by step.
	steps := func() map[string]uint64 {
		got := map[string]uint64{}
		for step, st := range stepsTimed(t, s) {
			got[step] = st.batches
		}
		return got
	}
	want := map[string]uint64{"claim": 3, "journal": 3, "commit": 3, "limits": 3, "publish": 3, "settle": 3}
	deadline := time.Now().Add(5 * time.Second) // settling follows the answer
	for !maps.Equal(steps(), want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := steps(); !maps.Equal(got, want) {
		t.Errorf("batches timed by step: %v, want %v", got, want)
	}
}

// stepTimes is what usaged_cluster_batch_step_seconds holds for one step.
type stepTimes struct {
	batches uint64
	seconds float64
}

// stepsTimed reads s's usaged_cluster_batch_step_seconds, by step, as
// /metrics gathers it.
func stepsTimed(t *testing.T, s *clickhouse.Store) map[string]stepTimes {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]stepTimes{}
	for _, mf := range mfs {
		if mf.GetName() != "usaged_cluster_batch_step_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			got[m.GetLabel()[0].GetValue()] = stepTimes{h.GetSampleCount(), h.GetSampleSum()}
		}
	}
	return got
}
