package genesys

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/usage"
)

// A results document streamed with its rows converted and appended by hand
// is byte for byte what encoding/json writes of the rows converted first,
// in every state.
func TestResultsBodyIsEncodingJSON(t *testing.T) {
	q := usage.Query{Granularity: usage.GranularityDay, Metrics: []usage.Metric{usage.MetricRequests, usage.MetricStatus200, usage.MetricStatus429}}
	row := usage.Row{Date: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), ClientID: "c", ClientName: "<n>", OrganizationID: "o",
		Counts: usage.Counts{Requests: 3, Status200: 2, Status400: 1, Status429: 1}}
	for _, res := range []resultsBody{
		{doc: queryResult{QueryStatus: "Running"}},
		{doc: queryResult{QueryStatus: "Complete"}, complete: true},
		{doc: queryResult{QueryStatus: "Complete"}, complete: true, rows: []usage.Row{row, row}},
		{doc: queryResult{QueryStatus: "Complete", Cursors: &wire.Cursors{After: "a", Before: "b"}}, complete: true, rows: []usage.Row{row}},
		{doc: queryResult{QueryStatus: "Failed", ErrorBody: &wire.ErrorBody{Status: 400, Code: "bad.request", Message: "no"}}},
	} {
		res.q = &q
		doc := res.doc
		if res.complete {
			doc.Results = []wire.UsageRow{}
			for i := range res.rows {
				doc.Results = append(doc.Results, rowOf(&res.rows[i], &q, &dateText{}))
			}
		}
		want, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := res.stream(&got); err != nil || !bytes.Equal(got.Bytes(), want) {
			t.Errorf("stream(%+v) = %s, %v\nwant %s", res, got.Bytes(), err, want)
		}
	}
}
