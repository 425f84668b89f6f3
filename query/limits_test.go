package query_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/fakeclock"
	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/store/memory"
	"github.com/usaged/usaged/usage"
)

// wantLimit fails unless err is a *query.LimitError of limit, of kind
// unavailable, with retry and a message holding inMessage.
func wantLimit(t *testing.T, err error, limit string, retry time.Duration, inMessage string) {
	t.Helper()
	var le *query.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want a LimitError of %s", err, limit)
	}
	if le.Limit != limit || le.After != retry || usage.KindOf(err) != usage.KindUnavailable || !strings.Contains(err.Error(), inMessage) {
		t.Fatalf("got %+v (%v, kind %v), want limit %q, retry %s, message with %q", le, err, usage.KindOf(err), limit, retry, inMessage)
	}
}

func submit(t *testing.T, s *query.Service, org string) (usage.Execution, error) {
	t.Helper()
	return s.Submit(t.Context(), usage.Execution{OrganizationID: org, Query: mustQuery(t, org)})
}

// o1 is the scope of organization o1's executions of no operation.
var o1 = query.Scope{OrganizationID: "o1"}

func mustSubmit(t *testing.T, s *query.Service, org string) usage.Execution {
	t.Helper()
	e, err := submit(t, s, org)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustWait(t *testing.T, s *query.Service, submitted usage.Execution) usage.Execution {
	t.Helper()
	id := submitted.ID
	e, err := s.Wait(t.Context(), query.ScopeOf(submitted), id)
	if err != nil || !e.Status.Done() {
		t.Fatalf("wait %s: %+v, %v", id, e, err)
	}
	return e
}

func TestPendingLimitPerOrganization(t *testing.T) {
	db := memory.New()
	defer db.Close()
	mustEvents(t, db, "o1", 30)
	h := &held{EventQuerier: db, slow: "o1", release: make(chan struct{}), moved: make(chan struct{}, 1)}
	s, err := query.New(t.Context(), query.Config{Events: h, Executions: db, Workers: 1, MaxPendingPerOrg: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer close(h.release)
	first := mustSubmit(t, s, "o1")
	mustSubmit(t, s, "o1")
	_, err = submit(t, s, "o1")
	wantLimit(t, err, "pending executions", 5*time.Second, "2 query executions queued or running")
	// Another organization is not held back by o1's limit.
	mustSubmit(t, s, "o2")
	// A finished execution frees its place.
	h.release <- struct{}{}
	mustWait(t, s, first)
	queued := mustSubmit(t, s, "o1")
	_, err = submit(t, s, "o1")
	wantLimit(t, err, "pending executions", 5*time.Second, "retry when one has finished")
	// So does a cancelled one.
	if _, err := s.Cancel(t.Context(), query.ScopeOf(queued), queued.ID); err != nil {
		t.Fatal(err)
	}
	mustSubmit(t, s, "o1")
	_, err = submit(t, s, "o1")
	wantLimit(t, err, "pending executions", 5*time.Second, "or cancel one")
}

func TestStoredExecutionsLimitPerOrganization(t *testing.T) {
	dir := t.TempDir()
	db := mustPebble(t, dir)
	mustEvents(t, db, "o1", 30)
	clk := fakeclock.New(now)
	// o1's first query runs to its end; its second waits until cancelled,
	// or it could be complete before the cancel.
	h := &held{EventQuerier: db, slow: "o1", release: make(chan struct{}, 1)}
	h.release <- struct{}{}
	cfg := query.Config{Events: h, Executions: db, TTL: time.Hour, MaxExecutionsPerOrg: 2, Now: clk.Now}
	s, err := query.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, s, mustSubmit(t, s, "o1"))
	clk.Advance(10 * time.Minute)
	cancelled, err := s.Cancel(t.Context(), o1, mustSubmit(t, s, "o1").ID)
	if err != nil || cancelled.Status != usage.ExecutionCancelled {
		t.Fatalf("cancel: %+v, %v", cancelled, err)
	}
	// Finished or cancelled, an execution is kept until it expires: the
	// first one in 50 minutes.
	_, err = submit(t, s, "o1")
	wantLimit(t, err, "stored executions", 50*time.Minute, "keeps 2 query executions, its limit")
	mustWait(t, s, mustSubmit(t, s, "o2"))

	// The count survives a restart: it is rebuilt from the stored records.
	s.Close()
	db.Close()
	db = mustPebble(t, dir)
	defer db.Close()
	cfg.Events, cfg.Executions = db, db
	if s, err = query.New(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clk.Advance(20 * time.Minute)
	_, err = submit(t, s, "o1")
	wantLimit(t, err, "stored executions", 30*time.Minute, "Retry in 1800 seconds")
	// Once the first has expired there is room again, before the sweep
	// deletes it.
	clk.Advance(30 * time.Minute)
	e := mustWait(t, s, mustSubmit(t, s, "o1"))
	if e.Status != usage.ExecutionComplete {
		t.Fatalf("after expiry %+v", e)
	}
	_, err = submit(t, s, "o1")
	wantLimit(t, err, "stored executions", 10*time.Minute, "keeps 2")
}

func TestResultBytesLimitPerOrganization(t *testing.T) {
	// The three rows of mustEvents grouped by client: each counts its
	// client id (2 bytes) and 7 numbers of 8 bytes.
	const resultBytes = 3 * (2 + 7*8)
	open := func(t *testing.T, dir string, limit int64, clk *fakeclock.Clock) (*query.Service, func()) {
		t.Helper()
		db := mustPebble(t, dir)
		s, err := query.New(t.Context(), query.Config{Events: db, Executions: db, TTL: time.Hour, MaxResultBytesPerOrg: limit, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return s, func() { s.Close(); db.Close() }
	}
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		db := mustPebble(t, dir)
		mustEvents(t, db, "o1", 30)
		db.Close()
		return dir
	}

	t.Run("reached", func(t *testing.T) {
		dir, clk := setup(t), fakeclock.New(now)
		s, closeAll := open(t, dir, resultBytes, clk)
		e := mustWait(t, s, mustSubmit(t, s, "o1"))
		if e.Status != usage.ExecutionComplete || e.ResultBytes != resultBytes {
			t.Fatalf("first %+v, want complete with %d result bytes", e, resultBytes)
		}
		_, err := submit(t, s, "o1")
		wantLimit(t, err, "stored result bytes", time.Hour, "take 174 bytes, its limit is 174")
		mustSubmit(t, s, "o2")
		// After a restart the bytes are counted again from the records.
		closeAll()
		s, closeAll = open(t, dir, resultBytes, clk)
		defer closeAll()
		clk.Advance(time.Minute)
		_, err = submit(t, s, "o1")
		wantLimit(t, err, "stored result bytes", 59*time.Minute, "Retry in 3540 seconds")
	})
	t.Run("would exceed", func(t *testing.T) {
		s, closeAll := open(t, setup(t), resultBytes+100, fakeclock.New(now))
		defer closeAll()
		mustWait(t, s, mustSubmit(t, s, "o1"))
		e := mustWait(t, s, mustSubmit(t, s, "o1"))
		if e.Status != usage.ExecutionFailed || e.Error == nil || e.Error.Kind != usage.KindUnavailable ||
			!strings.Contains(e.Error.Message, "already take 174 of its limit of 274 bytes") || e.RowCount != 0 {
			t.Fatalf("second %+v (%+v), want failed for the limit", e, e.Error)
		}
		// The failed one stored nothing: there is still room.
		mustSubmit(t, s, "o1")
	})
	t.Run("alone too large", func(t *testing.T) {
		s, closeAll := open(t, setup(t), resultBytes-1, fakeclock.New(now))
		defer closeAll()
		e := mustWait(t, s, mustSubmit(t, s, "o1"))
		if e.Status != usage.ExecutionFailed || e.Error == nil || e.Error.Kind != usage.KindTooLarge ||
			!strings.Contains(e.Error.Message, "takes 174 bytes, more than the limit of 173 bytes") {
			t.Fatalf("%+v (%+v), want failed as too large", e, e.Error)
		}
	})
}

func TestResultBytes(t *testing.T) {
	f := func(rows []usage.Row, want int64) {
		t.Helper()
		if got := query.ResultBytes(rows); got != want {
			t.Fatalf("ResultBytes(%+v) = %d, want %d", rows, got, want)
		}
	}
	f(nil, 0)
	f([]usage.Row{{}}, 56)
	f([]usage.Row{{ClientID: "a", ClientName: "bc", OrganizationID: "def", UserID: "g", TemplateURI: "api/v2/x", HTTPMethod: "GET", Platform: "é",
		Date: now, Counts: usage.Counts{Requests: 1 << 40}}}, 56+1+2+3+1+8+3+2)
}
