package clickhouse_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/store/clickhouse"
	"github.com/usaged/usaged/usage"
)

// The cluster store keeps no measures yet: a query asking for one is
// refused before the store is touched, so this needs no cluster (the
// conformance suite checks the same against a live one).
func TestQueryRefusesMeasures(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, m := range usage.MeasureMetrics {
		q, err := usage.Query{OrganizationID: "o", Interval: usage.Interval{Start: start, End: start.Add(time.Hour)},
			Metrics: []usage.Metric{usage.MetricRequests, m}}.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		rows, err := new(clickhouse.Store).Query(t.Context(), q)
		var ue *usage.Error
		if !errors.As(err, &ue) || ue.Kind != usage.KindInvalid || ue.Field != "metrics" ||
			!strings.Contains(ue.Message, "cluster store does not keep latency and traffic measures yet") {
			t.Fatalf("Query asking for %v = %d rows, %v; want an invalid-query error on metrics", m, len(rows), err)
		}
	}
}
