package client_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

func mustClient(tb testing.TB, h http.Handler) *client.Client {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	c, err := client.New(client.Config{Server: srv.URL, Token: "tok"})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestErrorShapesAndKinds(t *testing.T) {
	f := func(status int, header http.Header, body string, wantKind usage.Kind, wantCode, wantMsg string, wantRetry time.Duration) {
		t.Helper()
		c := mustClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range header {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			io.WriteString(w, body)
		}))
		_, err := c.Organizations(context.Background())
		var ce *client.Error
		if !errors.As(err, &ce) {
			t.Fatalf("%d: error %v is not a *client.Error", status, err)
		}
		if ce.Code != wantCode || ce.Message != wantMsg {
			t.Errorf("%d: code %q message %q, want %q %q", status, ce.Code, ce.Message, wantCode, wantMsg)
		}
		if k := usage.KindOf(err); k != wantKind {
			t.Errorf("%d: kind %v, want %v", status, k, wantKind)
		}
		if ra := usage.RetryAfterOf(err); ra != wantRetry {
			t.Errorf("%d: RetryAfter %s, want %s", status, ra, wantRetry)
		}
	}
	f(400, nil, `{"message":"bad interval","code":"bad.request","status":400,"contextId":"c1","details":[],"errors":[]}`, usage.KindInvalid, "bad.request", "bad interval", 0)
	f(401, nil, `{"error":"invalid_client","error_description":"no such client"}`, usage.KindUnauthorized, "invalid_client", "no such client", 0)
	f(404, nil, `{"responseStatus":{"errorCode":"NotFound","message":"Service x not found","errors":[]}}`, usage.KindNotFound, "NotFound", "Service x not found", 0)
	f(429, http.Header{"Retry-After": {"7"}}, `{"message":"slow down","code":"too.many.requests","status":429}`, usage.KindUnavailable, "too.many.requests", "slow down", 7*time.Second)
	f(413, nil, "too big", usage.KindTooLarge, "", "too big", 0)
	f(500, nil, "", usage.KindInternal, "", "", 0)
	f(501, nil, `{"message":"keeps only counts","code":"not.implemented","status":501}`, usage.KindUnsupported, "not.implemented", "keeps only counts", 0)
}

// TestEvents checks the query Events sends and the page it decodes.
func TestEvents(t *testing.T) {
	c := mustClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method != "GET" || r.URL.Path != client.EventsPath || q.Get("interval") != "2026-06-01/2026-06-02" ||
			strings.Join(q["clientId"], ",") != "c1,c2" || strings.Join(q["httpMethod"], ",") != "GET" || q.Has("userId") ||
			q.Get("pageSize") != "2" || q.Get("cursor") != "next" {
			t.Errorf("request %s %s", r.Method, r.URL)
		}
		io.WriteString(w, `{"entities":[{"id":"e1","time":"2026-06-01T10:00:00.000000001Z","organizationId":"o","clientId":"c1","clientName":"",`+
			`"userId":"","templateUri":"t","httpMethod":"GET","status":200,"platform":"","durationMs":5,"requestBytes":0,"responseBytes":7}],"pageSize":2,"cursor":"more"}`)
	}))
	page, err := c.Events(context.Background(), client.EventsQuery{Interval: "2026-06-01/2026-06-02", ClientIDs: []string{"c1", "c2"},
		HTTPMethods: []string{"GET"}, PageSize: 2, Cursor: "next"})
	if err != nil {
		t.Fatal(err)
	}
	want := wire.Event{ID: "e1", Time: time.Date(2026, 6, 1, 10, 0, 0, 1, time.UTC), OrganizationID: "o", ClientID: "c1",
		TemplateURI: "t", HTTPMethod: "GET", Status: 200, DurationMs: 5, ResponseBytes: 7}
	if len(page.Entities) != 1 || page.Entities[0] != want || page.PageSize != 2 || page.Cursor != "more" {
		t.Fatalf("page %+v", page)
	}
}

func TestRetryable(t *testing.T) {
	if client.Retryable(context.Canceled) || !client.Retryable(errors.New("connection refused")) {
		t.Error("a transport error is retryable, a canceled context is not")
	}
}

// TestSendEventsHalvesAndRetries checks the shipper's policy: a 413 sends
// halves, a 503 is tried again after its Retry-After.
func TestSendEventsHalvesAndRetries(t *testing.T) {
	var posts, unavailable atomic.Int32
	c := mustClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		if r.URL.Path != client.EventsPath || r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("%s %s, %v", r.Method, r.URL.Path, r.Header)
		}
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Error(err)
			return
		}
		b, _ := io.ReadAll(zr)
		n := strings.Count(string(b), "\n")
		switch {
		case n > 2:
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		case unavailable.Add(1) == 1:
			w.Header().Set("Retry-After", "0")
			http.Error(w, "restarting", http.StatusServiceUnavailable)
		default:
			json.NewEncoder(w).Encode(ingest.Result{Accepted: n})
		}
	}))
	evs := make([]usage.Event, 8)
	for i := range evs {
		evs[i] = usage.Event{ID: fmt.Sprint("e", i), Time: time.Now(), OrganizationID: "o", ClientID: "c", TemplateURI: "/x", HTTPMethod: "GET", Status: 200}
	}
	res, err := c.SendEvents(context.Background(), evs, client.Retry{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Attempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	// 8 → 4+4 → 2+2+2+2, one of which is refused once.
	if res.Accepted != 8 || posts.Load() != 1+2+4+1 {
		t.Errorf("accepted %d in %d posts, want 8 in 8", res.Accepted, posts.Load())
	}
}

func TestQueryPolls(t *testing.T) {
	var polls atomic.Int32
	c := mustClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case client.OrganizationQueryPath:
			json.NewEncoder(w).Encode(wire.ExecutionResult{ExecutionID: "x", ResultsURI: "/api/v2/usage/query/x/results"})
		case "/api/v2/usage/query/x/results":
			if polls.Add(1) < 3 {
				json.NewEncoder(w).Encode(wire.QueryResult{QueryStatus: wire.QueryRunning})
				return
			}
			json.NewEncoder(w).Encode(wire.QueryResult{QueryStatus: wire.QueryComplete, Results: []wire.UsageRow{{ClientID: "a", Requests: 3}, {ClientID: "b"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	iv := "2026-01-01/2026-01-02"
	ex, err := c.Query(context.Background(), client.OrganizationQueryPath, wire.UsageQueryRequest{Interval: &iv}, client.Poll{Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ex.Results()
	if err != nil || ex.Rows != 2 || res.Results[0].Requests != 3 {
		t.Errorf("rows %d, results %+v, %v", ex.Rows, res, err)
	}
}
