package genesys_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/usage"
)

// An organization at one of its execution limits is answered 429 with
// Retry-After and a message naming the limit, on every route that starts an
// execution; other organizations are not affected.
func TestExecutionLimitsAnswer429(t *testing.T) {
	t.Parallel()
	e := MustEnv(t, func(c *server.Config) {
		c.Query.ResultsTTL = time.Hour
		c.Query.MaxExecutionsPerOrg = 2
	})
	a, b := e.mustOrg("A"), e.mustOrg("B")
	perms := []string{usage.PermOrganizationView, usage.PermClientView, usage.PermSimpleSearchView}
	ca := e.mustClient(a.ID, 0, perms...)
	ta, tb := e.mustToken(ca), e.mustToken(e.mustClient(b.ID, 0, perms...))
	body := map[string]any{"interval": day}
	for range 2 {
		decode[map[string]any](t, e.do("POST", "/api/v2/usage/query", ta, body), 202)
	}
	e.clk.Advance(10 * time.Minute)
	for _, route := range []string{
		"/api/v2/usage/query",
		"/api/v2/usage/simplesearch",
		"/api/v2/usage/aggregates/query/jobs",
		"/api/v2/oauth/clients/" + ca.ID + "/usage/query",
	} {
		r := e.do("POST", route, ta, body)
		eb := wantError(t, r, http.StatusTooManyRequests, "too.many.requests.retry.after", "keeps 2 query executions, its limit")
		if got := r.header.Get("Retry-After"); got != "3000" {
			t.Fatalf("%s: Retry-After %q, want 3000 (when the first expires)", route, got)
		}
		if eb.MessageParams["limit"] != "stored executions" || eb.MessageParams["maxValue"] != "2" || eb.MessageParams["retryAfter"] != "3000" {
			t.Fatalf("%s: messageParams %v", route, eb.MessageParams)
		}
	}
	r := e.do("GET", "/api/v2/oauth/clients/"+ca.ID+"/usage/summary", ta, nil)
	wantError(t, r, http.StatusTooManyRequests, "too.many.requests.retry.after", "keeps 2")
	decode[map[string]any](t, e.do("POST", "/api/v2/usage/query", tb, body), 202)
	// Reads are not refused, and the limit lifts when the first expires.
	e.clk.Advance(50 * time.Minute)
	decode[map[string]any](t, e.do("POST", "/api/v2/usage/query", ta, body), 202)
}

// maxWriter is a ResponseWriter that keeps the size of the largest single
// write, and the body.
type maxWriter struct {
	*httptest.ResponseRecorder
	largest int
}

func (w *maxWriter) Write(b []byte) (int, error) {
	w.largest = max(w.largest, len(b))
	return w.ResponseRecorder.Write(b)
}

// The aggregate answers at most the legacy query's 100,000 rows, counted as
// an oracle independent of the store expects, and writes its answer in
// pieces rather than as one document built in memory.
func TestAggregateRowLimitAndStreaming(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("records 110,000 events")
	}
	e := MustEnv(t)
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))

	// 110,000 events of 100,000 users, some users with two: the oracle
	// counts each user's events.
	const limit = 100_000
	want := map[string]int64{}
	var events []usage.Event
	for i := range 110_000 {
		user := fmt.Sprintf("u%d", (i*7919)%limit)
		want[user]++
		events = append(events, usage.Event{ID: fmt.Sprint(i), OrganizationID: a.ID, ClientID: "c", ClientName: "C",
			Time: start.Add(-time.Duration(i%600) * time.Minute), TemplateURI: "api/v2/x", HTTPMethod: "GET", Status: 200, UserID: user})
	}
	if len(want) != limit {
		t.Fatalf("the oracle has %d users", len(want))
	}
	if _, err := e.db.Append(t.Context(), events, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// The answer is written in pieces no larger than a buffer, though it
	// takes megabytes, and holds the oracle's rows.
	req := map[string]any{"interval": day, "groupBy": []string{"UserId"}}
	hr := httptest.NewRequest("POST", "/api/v2/usage/aggregate", strings.NewReader(mustJSON(req)))
	hr.Header.Set("Authorization", "Bearer "+tok)
	hr.Header.Set("Content-Type", "application/json")
	w := &maxWriter{ResponseRecorder: httptest.NewRecorder()}
	e.handler.ServeHTTP(w, hr)
	if w.Code != 200 || w.Body.Len() < 10<<20 || w.largest > 64<<10 {
		t.Fatalf("status %d, %d bytes, largest write %d bytes; want 200, over 10 MiB in writes of at most 64 KiB", w.Code, w.Body.Len(), w.largest)
	}
	agg := decode[aggregate](t, reply{status: w.Code, header: w.Header(), body: w.Body.Bytes()}, 200)
	if len(agg.Results) != len(want) {
		t.Fatalf("%d rows, want %d", len(agg.Results), len(want))
	}
	for _, r := range agg.Results {
		if n, ok := want[*r.UserID]; !ok || *r.Requests != n {
			t.Fatalf("row %s: want %d requests", mustJSON(r), n)
		}
		delete(want, *r.UserID)
	}

	// One more user is one row too many: the request fails before any row
	// is written, naming the limit, as a legacy query's execution does.
	if _, err := e.db.Append(t.Context(), []usage.Event{{ID: "one-more", OrganizationID: a.ID, ClientID: "c", Time: start,
		TemplateURI: "api/v2/x", HTTPMethod: "GET", Status: 200, UserID: "one-more"}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.do("POST", "/api/v2/usage/aggregate", tok, req), 400, "bad.request", "the query has more than 100000 rows")
	// Fewer groups still answer.
	agg = e.aggregate(tok, map[string]any{"interval": day, "groupBy": []string{"TemplateUri"}})
	if len(agg.Results) != 1 || *agg.Results[0].Requests != 110_001 {
		t.Fatalf("rows %s", mustJSON(agg))
	}
}
