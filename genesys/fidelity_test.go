package genesys_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// pollRaw posts body to path and polls the results URI until the
// execution is final, returning the final answer as sent.
func (e *env) pollRaw(token, method, path string, body any) reply {
	e.t.Helper()
	ex := decode[executionResult](e.t, e.do(method, path, token, body), 202)
	for range 200 {
		r := e.do("GET", ex.ResultsURI, token, nil)
		if r.status != 200 || !strings.Contains(string(r.body), `"Running"`) {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("%s never finished", ex.ResultsURI)
	return reply{}
}

// An execution without rows answers "results": [], not an absent field:
// the SDKs type ApiUsageQueryResult.results as an array.
func TestEmptyResultsArePresent(t *testing.T) {
	e := MustEnv(t)
	a := e.mustOrg("A")
	quiet := e.mustClient(a.ID, 0)
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView, usage.PermClientView, usage.PermSimpleSearchView))
	const iv = "2026-06-10/2026-06-11"
	for _, c := range []struct{ method, path string }{
		{"POST", "/api/v2/usage/query"},
		{"POST", "/api/v2/usage/simplesearch"},
		{"POST", "/api/v2/oauth/clients/" + quiet.ID + "/usage/query"},
		{"GET", "/api/v2/oauth/clients/" + quiet.ID + "/usage/summary?days=2"},
	} {
		var body any
		if c.method == "POST" {
			body = map[string]any{"interval": iv}
		}
		r := e.pollRaw(tok, c.method, c.path, body)
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &fields); err != nil || r.status != 200 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, r.status, r.body)
		}
		if string(fields["queryStatus"]) != `"Complete"` || string(fields["results"]) != "[]" {
			t.Errorf("%s %s: %s, want Complete with \"results\":[]", c.method, c.path, r.body)
		}
	}
}
