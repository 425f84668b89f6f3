package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// sampleLimit returns a limit of org with every field set.
func sampleLimit(org, id string, n int) usage.Limit {
	at := time.Date(2026, 3, 11, 10, 20, 30, 123_000_000, time.UTC)
	return usage.Limit{
		ID: id, OrganizationID: org, Name: "limit " + id,
		Scope: usage.ScopeClient, ClientID: "c" + id,
		Filter: usage.LimitFilter{UserIDs: []string{"u1"}, TemplateURIs: []string{"api/v2/users", "api/v2/users/{userId}"}, HTTPMethods: []string{"GET"}},
		Metric: usage.LimitErrorRate, Value: 0.05 * float64(n),
		Window:     usage.Window{Type: usage.WindowDay, TimeZone: "Europe/Berlin"},
		Thresholds: []int{50, 80, 100 + n}, Enforced: n%2 == 0, Version: int64(n),
		Created: at, Updated: at.Add(time.Duration(n) * time.Minute),
	}
}

// checkLimit compares a limit read back with the one stored: every field,
// times as instants.
func checkLimit(t *testing.T, what string, got, want usage.Limit) {
	t.Helper()
	if !got.Created.Equal(want.Created) || !got.Updated.Equal(want.Updated) {
		t.Errorf("%s: times %v, %v; want %v, %v", what, got.Created, got.Updated, want.Created, want.Updated)
	}
	got.Created, got.Updated, want.Created, want.Updated = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// checkLimits checks that org's limits are want, in order.
func checkLimits(t *testing.T, s store.Limits, org string, want ...usage.Limit) {
	t.Helper()
	got, err := s.Limits(ctx(t), org)
	if err != nil {
		t.Fatalf("Limits(%s): %v", org, err)
	}
	if len(got) != len(want) {
		t.Fatalf("Limits(%s) = %d limits %+v, want %d", org, len(got), got, len(want))
	}
	for i := range want {
		checkLimit(t, "Limits("+org+")", got[i], want[i])
		one, err := s.Limit(ctx(t), org, want[i].ID)
		if err != nil {
			t.Fatalf("Limit(%s, %s): %v", org, want[i].ID, err)
		}
		checkLimit(t, "Limit("+org+", "+want[i].ID+")", one, want[i])
	}
}

// testLimits checks store.Limits: records read back whole, lists by
// organization in ID order, replacement, deletion, and that one
// organization's limits are out of another's reach, the same ID included.
func testLimits(t *testing.T, b MetadataBackend) {
	s := b.Open(t)
	defer s.Close()
	c := ctx(t)
	if _, err := s.Limit(c, "o1", "missing"); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("missing limit: %v, want not found", err)
	}
	checkLimits(t, s, "o1")
	// Put out of order; "shared" exists in both organizations.
	a, shared, z := sampleLimit("o1", "a", 1), sampleLimit("o1", "shared", 2), sampleLimit("o1", "z", 3)
	other := sampleLimit("o2", "shared", 4)
	other.Scope, other.ClientID, other.Filter, other.Thresholds = usage.ScopeEachClient, "", usage.LimitFilter{}, nil
	other.Metric, other.Value, other.Window = usage.LimitRequests, 1e15, usage.Window{Type: usage.WindowMonth}
	for _, l := range []usage.Limit{z, other, a, shared} {
		if err := s.PutLimit(c, l); err != nil {
			t.Fatal(err)
		}
	}
	checkLimits(t, s, "o1", a, shared, z)
	checkLimits(t, s, "o2", other)
	checkLimits(t, s, "o3")
	if _, err := s.Limit(c, "o2", "a"); usage.KindOf(err) != usage.KindNotFound {
		t.Errorf("another organization's limit: %v, want not found", err)
	}

	// Replacement keeps the ID and changes every field.
	shared2 := sampleLimit("o1", "shared", 5)
	shared2.Name, shared2.Metric, shared2.Value, shared2.Scope, shared2.ClientID = "renamed", usage.LimitStatus429, 7, usage.ScopeOrganization, ""
	if err := s.PutLimit(c, shared2); err != nil {
		t.Fatal(err)
	}
	checkLimits(t, s, "o1", a, shared2, z)
	checkLimits(t, s, "o2", other)

	if err := s.DeleteLimit(c, "o2", "a"); usage.KindOf(err) != usage.KindNotFound {
		t.Errorf("delete of another organization's limit: %v, want not found", err)
	}
	if err := s.DeleteLimit(c, "o2", "shared"); err != nil {
		t.Fatal(err)
	}
	checkLimits(t, s, "o1", a, shared2, z)
	checkLimits(t, s, "o2")
	if err := s.DeleteLimit(c, "o2", "shared"); usage.KindOf(err) != usage.KindNotFound {
		t.Errorf("second delete: %v, want not found", err)
	}
	if err := s.DeleteLimit(c, "o1", "a"); err != nil {
		t.Fatal(err)
	}
	checkLimits(t, s, "o1", shared2, z)
}

// testUpdateLimit checks that UpdateLimit replaces a limit only at the
// version given, and that of many updates from the same version at once
// exactly one wins and its limit is the one stored.
func testUpdateLimit(t *testing.T, b MetadataBackend) {
	s := b.Open(t)
	defer s.Close()
	c := ctx(t)
	l := sampleLimit("o1", "l", 1)
	if err := s.UpdateLimit(c, l, l.Version); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("update of a missing limit: %v, want not found", err)
	}
	if err := s.PutLimit(c, l); err != nil {
		t.Fatal(err)
	}
	elsewhere := l
	elsewhere.OrganizationID = "o2"
	if err := s.UpdateLimit(c, elsewhere, l.Version); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("update of another organization's limit: %v, want not found", err)
	}
	checkLimits(t, s, "o2")
	next := l
	next.Name, next.Version = "stale", l.Version+1
	if err := s.UpdateLimit(c, next, l.Version+1); usage.KindOf(err) != usage.KindConflict {
		t.Fatalf("update from a version not stored: %v, want conflict", err)
	}
	checkLimits(t, s, "o1", l)

	const writers = 16
	for round := range 20 {
		from := l.Version
		var wg sync.WaitGroup
		errs := make([]error, writers)
		start := make(chan struct{})
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := l
				u.Name, u.Version = fmt.Sprintf("round %d writer %d", round, i), from+1
				<-start
				errs[i] = s.UpdateLimit(c, u, from)
			}()
		}
		close(start)
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Fatalf("round %d: writers %d and %d both updated from version %d", round, won, i, from)
			case err == nil:
				won = i
			case usage.KindOf(err) != usage.KindConflict:
				t.Fatalf("round %d: writer %d: %v, want a conflict", round, i, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no writer updated from version %d: %v", round, from, errs)
		}
		l.Name, l.Version = fmt.Sprintf("round %d writer %d", round, won), from+1
		checkLimits(t, s, "o1", l)
	}
}

// testLimitsReopen checks that limits, their replacements and deletions
// survive a reopen.
func testLimitsReopen(t *testing.T, b MetadataBackend) {
	s := b.Open(t)
	c := ctx(t)
	a, x, y := sampleLimit("o1", "a", 1), sampleLimit("o1", "x", 2), sampleLimit("o2", "y", 3)
	for _, l := range []usage.Limit{a, x, y} {
		if err := s.PutLimit(c, l); err != nil {
			t.Fatal(err)
		}
	}
	s = b.Reopen(t, s)
	checkLimits(t, s, "o1", a, x)
	checkLimits(t, s, "o2", y)
	x.Name, x.Version = "changed", x.Version+1
	if err := s.PutLimit(c, x); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLimit(c, "o1", "a"); err != nil {
		t.Fatal(err)
	}
	s = b.Reopen(t, s)
	defer s.Close()
	checkLimits(t, s, "o1", x)
	checkLimits(t, s, "o2", y)
}
