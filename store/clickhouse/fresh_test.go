package clickhouse_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// TestAcknowledgedIsVisibleOnEveryNode checks the freshness the cluster
// promises: an event acknowledged by one node is counted by a query on
// another at once (its counts are on a quorum of replicas before the call
// returns), and in any case within a second. It logs how long the other
// node took to see each of 50 appends.
func TestAcknowledgedIsVisibleOnEveryNode(t *testing.T) {
	cfg := testConfig(t)
	a, b := openNode(t, cfg), openNode(t, cfg)
	hour := time.Now().UTC().Truncate(time.Hour)
	q := usage.Query{OrganizationID: "fresh", Interval: usage.Interval{Start: hour, End: hour.Add(time.Hour)}, MaxRows: 10}
	var lags []time.Duration
	for i := range 50 {
		ev := testEvent("fresh", i, hour)
		ev.Time = hour // one group
		if _, err := a.Append(context.Background(), []usage.Event{ev}, hour.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		for polls := 0; ; polls++ {
			rows, err := b.Query(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) == 1 && rows[0].Requests == int64(i+1) {
				lags = append(lags, time.Since(acked))
				if polls > 0 {
					t.Errorf("append %d: the other node saw it after %d queries, not at once", i, polls+1)
				}
				break
			}
			if time.Since(acked) > time.Second {
				t.Fatalf("append %d: not counted by the other node within 1 s of its acknowledgement: %v", i, rows)
			}
		}
	}
	slices.Sort(lags)
	t.Logf("acknowledged on one node → counted by a query on another: p50 %v, p99 %v, max %v (the query's own time included)",
		lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1])
}
