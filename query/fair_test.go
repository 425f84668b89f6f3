package query_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/memory"
	"github.com/usaged/usaged/usage"
)

// held is a store.EventQuerier whose queries of organization slow each wait for
// one value on release, and which records the organization of every query
// in the order they start.
type held struct {
	store.EventQuerier
	slow    string
	release chan struct{}

	mu     sync.Mutex
	starts []string
	moved  chan struct{} // signalled at every start
}

func (h *held) Query(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	h.mu.Lock()
	h.starts = append(h.starts, q.OrganizationID)
	h.mu.Unlock()
	select {
	case h.moved <- struct{}{}:
	default:
	}
	if q.OrganizationID == h.slow {
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.EventQuerier.Query(ctx, q)
}

func (h *held) started() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.starts...)
}

// A tenant that fills the queue delays another tenant's query by at most
// about one of its own executions per worker: the workers serve the
// organizations' queues in turn, not one queue in arrival order. Progress is
// measured in executions started, never in time.
func TestNoisyTenantDoesNotStarveAnother(t *testing.T) {
	const workers, noisy = 2, 30
	db := memory.New()
	defer db.Close()
	mustEvents(t, db, "noisy", 30)
	mustEvents(t, db, "quiet", 1)
	h := &held{EventQuerier: db, slow: "noisy", release: make(chan struct{}), moved: make(chan struct{}, 1)}
	s, err := query.New(t.Context(), query.Config{Events: h, Executions: db, Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer close(h.release) // lets the held queries finish before Close

	for range noisy {
		if _, err := s.Submit(t.Context(), usage.Execution{OrganizationID: "noisy", Query: mustQuery(t, "noisy")}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(2 * time.Minute) // liveness only
	for len(h.started()) < workers {
		select {
		case <-h.moved:
		case <-deadline:
			t.Fatalf("started %v, want %d noisy executions running", h.started(), workers)
		}
	}
	quiet, err := s.Submit(t.Context(), usage.Execution{OrganizationID: "quiet", Query: mustQuery(t, "quiet")})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan usage.Execution, 1)
	go func() {
		e, _ := s.Wait(context.Background(), query.ScopeOf(quiet), quiet.ID)
		done <- e
	}()
	// Let the noisy executions finish one at a time until the quiet one has.
	var e usage.Execution
	for released := 0; ; released++ {
		select {
		case e = <-done:
		case h.release <- struct{}{}:
			continue
		case <-deadline:
			t.Fatalf("the quiet execution did not finish; started %v", h.started())
		}
		break
	}
	if e.Status != usage.ExecutionComplete || e.RowCount != 1 {
		t.Fatalf("quiet execution %+v", e)
	}
	starts := h.started()
	before := 0 // noisy executions started after the quiet one was submitted and before it started
	for _, org := range starts[workers:] {
		if org == "quiet" {
			break
		}
		before++
	}
	if before > workers+1 {
		t.Fatalf("%d noisy executions started between the quiet one's submission and its start, want at most %d; order %s",
			before, workers+1, fmt.Sprint(starts))
	}
}
