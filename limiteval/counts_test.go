package limiteval

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// TestCrossed checks the thresholds one step of a kept value crosses:
// those met after and not before, compared exactly.
func TestCrossed(t *testing.T) {
	f := func(metric usage.LimitMetric, value float64, before, after Sum, want ...int) {
		t.Helper()
		l := usage.Limit{ID: "l", Metric: metric, Value: value, Thresholds: []int{50, 80, 100, 150}}
		var got []int
		for _, c := range Crossed(&l, usage.Interval{}, "", before, after) {
			got = append(got, c.Threshold)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%v of %v from %+v to %+v: crossed %v, want %v", metric, value, before, after, got, want)
		}
	}
	f(usage.LimitRequests, 10, Sum{}, Sum{N: 4})
	f(usage.LimitRequests, 10, Sum{}, Sum{N: 5}, 50)
	f(usage.LimitRequests, 10, Sum{N: 5}, Sum{N: 8}, 80)
	f(usage.LimitRequests, 10, Sum{N: 5}, Sum{N: 15}, 80, 100, 150)
	f(usage.LimitRequests, 10, Sum{N: 15}, Sum{N: 16})
	f(usage.LimitRequests, 3, Sum{N: 1}, Sum{N: 2}, 50) // 2·100 ≥ 3·50, < 3·80
	f(usage.LimitRequests, 1<<53, Sum{N: 1<<52 - 1}, Sum{N: 1 << 52}, 50)
	// An error rate: 2 of 4 is 50 %; falling back and rising again crosses again.
	f(usage.LimitErrorRate, 1, Sum{Requests: 3, Errors: 1}, Sum{Requests: 4, Errors: 2}, 50)
	f(usage.LimitErrorRate, 1, Sum{Requests: 4, Errors: 2}, Sum{Requests: 10, Errors: 2})
	f(usage.LimitErrorRate, 0.5, Sum{Requests: 10, Errors: 2}, Sum{Requests: 12, Errors: 4}, 50)
}

// TestMatcherAdds checks what a set of events adds to each window, against
// a hand count: the current and the next window only, the filters, the
// clients of a limit on each client and a limit on one client.
func TestMatcherAdds(t *testing.T) {
	now := time.Date(2026, 3, 10, 23, 30, 0, 0, time.UTC)
	day := usage.Window{Type: usage.WindowDay}
	limits := []usage.Limit{
		{ID: "org", OrganizationID: "a", Metric: usage.LimitRequests, Window: day, Value: 10, Thresholds: []int{100}},
		{ID: "each", OrganizationID: "a", Scope: usage.ScopeEachClient, Metric: usage.LimitStatus500, Window: day, Value: 10, Thresholds: []int{100}},
		{ID: "posts", OrganizationID: "a", Scope: usage.ScopeClient, ClientID: "c1", Metric: usage.LimitRequests, Window: day, Value: 10, Thresholds: []int{100},
			Filter: usage.LimitFilter{HTTPMethods: []string{"POST"}}},
		{ID: "rolling", OrganizationID: "a", Metric: usage.LimitRequests, Window: usage.Window{Type: usage.WindowRolling, Minutes: 5}, Value: 10, Thresholds: []int{100}},
		{ID: "other", OrganizationID: "b", Metric: usage.LimitRequests, Window: day, Value: 10, Thresholds: []int{100}},
	}
	ev := func(client, method string, status int, at time.Time) *usage.Event {
		return &usage.Event{OrganizationID: "a", ClientID: client, HTTPMethod: method, Status: status, Time: at}
	}
	events := []*usage.Event{
		ev("c1", "POST", 500, now.Add(-time.Hour)),     // today
		ev("c1", "GET", 200, now.Add(-time.Minute)),    // today
		ev("c2", "POST", 503, now.Add(-2*time.Minute)), // today
		ev("c1", "POST", 200, now.Add(time.Hour)),      // tomorrow, the next window
		ev("c2", "GET", 500, now.Add(-24*time.Hour)),   // yesterday: no window
		ev("c1", "GET", 200, now.Add(49*time.Hour)),    // past the next window: none
	}
	var got []string
	for _, c := range NewMatcher(limits).Adds(now, events) {
		got = append(got, fmt.Sprintf("%s %s %q %d", c.Limit.ID, c.Window.Start.Format("01-02"), c.ClientID, c.Sum.N))
	}
	want := []string{
		`each 03-10 "c1" 1`, `each 03-10 "c2" 1`, `each 03-11 "c1" 0`,
		`org 03-10 "" 3`, `org 03-11 "" 1`,
		`posts 03-10 "" 1`, `posts 03-11 "" 1`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("adds\n%q\nwant\n%q", got, want)
	}
}
