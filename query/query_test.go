package query_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/fakeclock"
	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/memory"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/usage"
)

var now = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

// gate is a store.EventQuerier whose queries wait until released, so that tests
// can hold an execution in the Running state.
type gate struct {
	store.EventQuerier
	entered chan string
	release chan struct{}
}

func (g *gate) Query(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	g.entered <- q.OrganizationID
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.EventQuerier.Query(ctx, q)
}

// mustPebble opens the pebble store in dir, for the tests that close it
// and open it again; the others keep their events and executions in
// memory.
func mustPebble(t *testing.T, dir string) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(pebble.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// mustEvents records n events of client "c1" at distinct times on 2026-06-15.
func mustEvents(t *testing.T, db store.EventAppender, org string, n int) {
	t.Helper()
	var evs []usage.Event
	for i := range n {
		evs = append(evs, usage.Event{ID: fmt.Sprint(i), OrganizationID: org, ClientID: fmt.Sprintf("c%d", i%3),
			Time: now.Add(-time.Duration(i) * time.Minute), TemplateURI: "api/v2/x", HTTPMethod: "GET", Status: 200 + 100*(i%4)})
	}
	if _, err := db.Append(t.Context(), evs, time.Time{}); err != nil {
		t.Fatal(err)
	}
}

func mustQuery(t *testing.T, org string) usage.Query {
	t.Helper()
	q, err := usage.Query{OrganizationID: org, Interval: usage.Interval{Start: now.Add(-24 * time.Hour), End: now.Add(time.Hour)},
		GroupBy: []usage.Dimension{usage.DimClientID}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestSubmitAnswersAndStores(t *testing.T) {
	db := memory.New()
	defer db.Close()
	mustEvents(t, db, "o1", 30)
	s, err := query.New(t.Context(), query.Config{Events: db, Executions: db, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, err := s.Submit(t.Context(), usage.Execution{OrganizationID: "o1", Operation: "op", Query: mustQuery(t, "o1"),
		Sort: []usage.SortKey{{Field: "Requests", Desc: true}, {Field: "OAuthClientId", Desc: true}}, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != usage.ExecutionQueued || !e.Expires.Equal(now.Add(query.DefaultTTL)) {
		t.Fatalf("submitted %+v", e)
	}
	e, err = s.Wait(t.Context(), query.ScopeOf(e), e.ID)
	if err != nil || e.Status != usage.ExecutionComplete || e.RowCount != 2 || !e.Truncated {
		t.Fatalf("finished %+v, %v", e, err)
	}
	rows, err := s.Rows(t.Context(), query.ScopeOf(e), e.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	// 30 events over c0, c1, c2: 10 each; ties broken by client id descending.
	if len(rows) != 2 || rows[0].ClientID != "c2" || rows[1].ClientID != "c1" || rows[0].Requests != 10 {
		t.Fatalf("rows %+v", rows)
	}
	// Only the scope that started an execution reaches it: another
	// organization, another operation or a client's API finds nothing.
	for _, other := range []query.Scope{
		{OrganizationID: "o2", Operation: "op"},
		{OrganizationID: "o1"},
		{OrganizationID: "o1", Operation: "op", ClientID: "c1"},
	} {
		if _, err := s.Execution(t.Context(), other, e.ID); usage.KindOf(err) != usage.KindNotFound {
			t.Errorf("Execution in %+v: %v, want not found", other, err)
		}
		if _, err := s.Rows(t.Context(), other, e.ID, 0, 10); usage.KindOf(err) != usage.KindNotFound {
			t.Errorf("Rows in %+v: %v, want not found", other, err)
		}
		if _, err := s.Wait(t.Context(), other, e.ID); usage.KindOf(err) != usage.KindNotFound {
			t.Errorf("Wait in %+v: %v, want not found", other, err)
		}
		if _, err := s.Cancel(t.Context(), other, e.ID); usage.KindOf(err) != usage.KindNotFound {
			t.Errorf("Cancel in %+v: %v, want not found", other, err)
		}
	}
	// An execution counts the events of the organization that owns it.
	if _, err := s.Submit(t.Context(), usage.Execution{OrganizationID: "o1", Query: mustQuery(t, "o2")}); err == nil {
		t.Fatal("an execution counting another organization was accepted")
	}
}

func TestFailedExecution(t *testing.T) {
	db := memory.New()
	defer db.Close()
	mustEvents(t, db, "o1", 30)
	s, err := query.New(t.Context(), query.Config{Events: db, Executions: db})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := mustQuery(t, "o1")
	q.MaxRows = 2 // three clients: too many groups
	e, err := s.Submit(t.Context(), usage.Execution{OrganizationID: "o1", Query: q})
	if err != nil {
		t.Fatal(err)
	}
	e, err = s.Wait(t.Context(), query.ScopeOf(e), e.ID)
	if err != nil || e.Status != usage.ExecutionFailed || e.Error == nil || e.Error.Kind != usage.KindInvalid {
		t.Fatalf("finished %+v, %v", e, err)
	}
}

func TestResumeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	db := mustPebble(t, dir)
	mustEvents(t, db, "o1", 30)
	g := &gate{EventQuerier: db, entered: make(chan string, 10), release: make(chan struct{})}
	s, err := query.New(t.Context(), query.Config{Events: g, Executions: db, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	running, err := s.Submit(t.Context(), usage.Execution{OrganizationID: "o1", Query: mustQuery(t, "o1")})
	if err != nil {
		t.Fatal(err)
	}
	<-g.entered
	if e, _ := s.Execution(t.Context(), query.ScopeOf(running), running.ID); e.Status != usage.ExecutionRunning {
		t.Fatalf("status %v, want Running", e.Status)
	}
	queued, err := s.Submit(t.Context(), usage.Execution{OrganizationID: "o1", Query: mustQuery(t, "o1")})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Execution(t.Context(), query.ScopeOf(queued), queued.ID); e.Status != usage.ExecutionQueued {
		t.Fatalf("status %v, want Queued", e.Status)
	}
	// Stopping interrupts the running execution; both survive a reopen of
	// the store and are answered by the next service.
	s.Close()
	db.Close()
	db = mustPebble(t, dir)
	defer db.Close()
	s, err = query.New(t.Context(), query.Config{Events: db, Executions: db})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range []string{running.ID, queued.ID} {
		e, err := s.Wait(t.Context(), o1, id)
		if err != nil || e.Status != usage.ExecutionComplete || e.RowCount != 3 {
			t.Fatalf("after restart %+v, %v", e, err)
		}
	}
}

func TestCancelAndExpire(t *testing.T) {
	db := memory.New()
	defer db.Close()
	mustEvents(t, db, "o1", 30)
	g := &gate{EventQuerier: db, entered: make(chan string, 10), release: make(chan struct{})}
	clk := fakeclock.New(now)
	s, err := query.New(t.Context(), query.Config{Events: g, Executions: db, Workers: 1, QueueLimit: 1, TTL: time.Hour,
		Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	running, _ := s.Submit(t.Context(), usage.Execution{OrganizationID: "o1", Query: mustQuery(t, "o1")})
	<-g.entered
	queued, _ := s.Submit(t.Context(), usage.Execution{OrganizationID: "o1", Query: mustQuery(t, "o1")})
	// The queue holds one: the next is refused as unavailable.
	if _, err := s.Submit(t.Context(), usage.Execution{OrganizationID: "o1", Query: mustQuery(t, "o1")}); usage.KindOf(err) != usage.KindUnavailable {
		t.Fatalf("over the queue limit: %v", err)
	}
	for _, id := range []string{running.ID, queued.ID} {
		e, err := s.Cancel(t.Context(), o1, id)
		if err != nil || e.Status != usage.ExecutionCancelled {
			t.Fatalf("cancel: %+v, %v", e, err)
		}
		if e, _ := s.Wait(t.Context(), o1, id); e.Status != usage.ExecutionCancelled {
			t.Fatalf("after cancel: %v", e.Status)
		}
	}
	// A cancelled query never runs: the next one does. The queued one keeps
	// its place in the queue until the worker drops it, so the next is
	// refused until then, as "retry later" says.
	close(g.release)
	var next usage.Execution
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		next, err = s.Submit(t.Context(), usage.Execution{OrganizationID: "o1", Query: mustQuery(t, "o1")})
		if usage.KindOf(err) != usage.KindUnavailable || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Wait(t.Context(), query.ScopeOf(next), next.ID); e.Status != usage.ExecutionComplete {
		t.Fatalf("status %v", e.Status)
	}
	// Expired executions are gone at once for readers and deleted by Expire.
	clk.Advance(time.Hour)
	if _, err := s.Execution(t.Context(), query.ScopeOf(next), next.ID); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("expired: %v", err)
	}
	if err := s.Expire(t.Context()); err != nil {
		t.Fatal(err)
	}
	n := 0
	db.ExecutionsBy(t.Context(), func(usage.Execution) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d executions left after expiry", n)
	}
}

func TestArrange(t *testing.T) {
	rows := []usage.Row{
		{ClientID: "a", ClientName: "Zed", Counts: usage.Counts{Requests: 2}},
		{ClientID: "b", ClientName: "Amy", Counts: usage.Counts{Requests: 2}},
		{ClientID: "c", ClientName: "Max", Counts: usage.Counts{Requests: 5}},
	}
	f := func(keys []usage.SortKey, limit int, want string, wantTruncated bool) {
		t.Helper()
		truncated := false
		got := ""
		for _, r := range query.Arrange(slices.Clone(rows), keys, limit, &truncated) {
			got += r.ClientID
		}
		if got != want || truncated != wantTruncated {
			t.Fatalf("Arrange(%v, %d) = %s, %v; want %s, %v", keys, limit, got, truncated, want, wantTruncated)
		}
	}
	f(nil, 0, "abc", false)
	f([]usage.SortKey{{Field: "ClientName"}}, 0, "bca", false)
	f([]usage.SortKey{{Field: "Requests", Desc: true}}, 0, "cab", false) // ties keep their order
	f([]usage.SortKey{{Field: "Requests"}, {Field: "ClientName", Desc: true}}, 2, "ab", true)
	f([]usage.SortKey{{Field: "OAuthClientId", Desc: true}}, 3, "cba", false)
	f([]usage.SortKey{{Field: "Nonsense"}}, 0, "abc", false)
}

// countingRows counts the reads of execution rows from its store.
type countingRows struct {
	*memory.DB
	reads int
}

func (c *countingRows) ExecutionRows(ctx context.Context, id string, offset, limit int) ([]usage.Row, error) {
	c.reads++
	return c.DB.ExecutionRows(ctx, id, offset, limit)
}

// The rows of an execution this service finished are read from memory, page
// for page what the store holds; after a restart they come from the store.
func TestRowsOfAFinishedExecution(t *testing.T) {
	db := &countingRows{DB: memory.New()}
	defer db.Close()
	mustEvents(t, db, "o1", 30)
	q := mustQuery(t, "o1")
	q.Granularity = usage.GranularityHour
	s, err := query.New(t.Context(), query.Config{Events: db, Executions: db, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Submit(t.Context(), usage.Execution{OrganizationID: "o1", Operation: "op", Query: q})
	if err == nil {
		e, err = s.Wait(t.Context(), query.ScopeOf(e), e.ID)
	}
	if err != nil || e.Status != usage.ExecutionComplete || e.RowCount < 3 {
		t.Fatalf("finished %+v, %v", e, err)
	}
	pages := [][2]int{{0, e.RowCount}, {0, 1}, {1, 2}, {e.RowCount - 1, 10}, {e.RowCount, 5}, {1 << 62, 1 << 62}, {0, 0}, {2, 1 << 62}}
	check := func(s *query.Service, wantReads int) {
		t.Helper()
		for _, p := range pages {
			got, err := s.Rows(t.Context(), query.ScopeOf(e), e.ID, p[0], p[1])
			want, werr := db.DB.ExecutionRows(t.Context(), e.ID, p[0], p[1])
			if err != nil || werr != nil || !slices.Equal(got, want) {
				t.Fatalf("Rows(%d, %d) = %v, %v; the store holds %v, %v", p[0], p[1], got, err, want, werr)
			}
		}
		if db.reads != wantReads {
			t.Fatalf("the store's rows were read %d times, want %d", db.reads, wantReads)
		}
	}
	check(s, 0)
	if _, err := s.Rows(t.Context(), query.ScopeOf(e), e.ID, -1, 2); usage.KindOf(err) != usage.KindInvalid {
		t.Fatalf("Rows at offset -1: %v, want invalid", err)
	}
	s.Close()
	db.reads = 0
	if s, err = query.New(t.Context(), query.Config{Events: db, Executions: db, Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, len(pages))
}
