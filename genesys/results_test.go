package genesys

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/usaged/usaged/genesys/wire"
)

// A results document streamed with its rows appended by hand is byte for
// byte what encoding/json writes, in every state.
func TestResultsBodyIsEncodingJSON(t *testing.T) {
	row := wire.UsageRow{ClientID: "c", ClientName: "<n>", OrganizationID: "o", Requests: 3, Status200: 2, Status429: 1, Date: "2026-03-01T00:00:00Z"}
	for _, res := range []queryResult{
		{QueryStatus: "Running"},
		{QueryStatus: "Complete", Results: []wire.UsageRow{}},
		{QueryStatus: "Complete", Results: []wire.UsageRow{row, row}},
		{QueryStatus: "Complete", Results: []wire.UsageRow{row}, Cursors: &wire.Cursors{After: "a", Before: "b"}},
		{QueryStatus: "Failed", ErrorBody: &wire.ErrorBody{Status: 400, Code: "bad.request", Message: "no"}},
	} {
		want, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := (*resultsBody)(&res).stream(&got); err != nil || !bytes.Equal(got.Bytes(), want) {
			t.Errorf("stream(%+v) = %s, %v\nwant %s", res, got.Bytes(), err, want)
		}
	}
}
