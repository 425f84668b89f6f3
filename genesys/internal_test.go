package genesys

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/httpmw"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/usage"
)

// panicking serves h behind a stack whose store reports failed, as the
// face's route "test".
func panicking(t *testing.T, failed func() error) *httptest.ResponseRecorder {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := httpmw.New(httpmw.Config{Logger: discard, Failed: failed})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{log: discard}
	s.face = httpmw.Face{Error: s.writeError}
	h := st.Wrap(&s.face, httpmw.Route{Pattern: "test"}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret detail")
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v2/x", nil))
	return w
}

func TestPanicAnswers500(t *testing.T) {
	t.Parallel()
	w := panicking(t, func() error { return nil })
	var body errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if w.Code != 500 || body.Code != "internal.server.error" || body.ContextID != w.Header().Get(HeaderCorrelationID) ||
		strings.Contains(w.Body.String(), "secret detail") {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
}

// A panic while the store has failed is answered as the failure: 503 with
// Retry-After, which a client retries, not a 500 that hides it.
func TestPanicWhileStoreFailedAnswers503(t *testing.T) {
	t.Parallel()
	failed := &usage.Error{Kind: usage.KindUnavailable, Message: "the store stopped writing", RetryAfter: 10 * time.Second}
	w := panicking(t, func() error { return failed })
	var body errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if w.Code != 503 || body.Code != "service.unavailable" || w.Header().Get("Retry-After") != "10" ||
		body.ContextID != w.Header().Get(HeaderCorrelationID) || strings.Contains(w.Body.String(), "secret detail") {
		t.Fatalf("got %d %v %s", w.Code, w.Header(), w.Body)
	}
}

func TestKindTable(t *testing.T) {
	t.Parallel()
	for k, e := range kindStatus {
		if e.status == 0 || e.code == "" {
			t.Errorf("kind %d has no status or code", k)
		}
	}
}

func FuzzAggregateRequest(f *testing.F) {
	db, err := pebble.Open(pebble.Config{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	as, err := auth.New(f.Context(), auth.Config{Registry: db, AdminToken: strings.Repeat("a", 16),
		SigningKey: []byte(strings.Repeat("k", 32)), BcryptCost: bcrypt.MinCost})
	if err != nil {
		f.Fatal(err)
	}
	o, err := as.CreateOrganization(f.Context(), "A")
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{cfg: Config{Auth: as}}
	p := &auth.Principal{OrganizationID: o.ID, Permissions: []string{usage.PermOrganizationView}}
	for _, seed := range []string{
		`{"interval":"2026-01-01/2026-02-01","granularity":"Day","groupBy":["OAuthClientId"],"metrics":["Requests"]}`,
		`{"organizationId":"x","interval":"P1D/2026-01-01","filter":{"clientIds":["a"]}}`,
		`{"interval":5}`, `[]`, `{"interval":"/"}`, `{"a":1}`, ``, `{"interval":"2026-01-01/2026-02-01"} x`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/api/v2/usage/aggregate", strings.NewReader(body))
		var req aggregateRequest
		if err := decodeJSON(r, &req); err != nil {
			if usage.KindOf(err) == usage.KindInternal {
				t.Fatalf("decode %q: internal error %v", body, err)
			}
			return
		}
		q, err := s.aggregateQuery(p, &req)
		if err != nil {
			if k := usage.KindOf(err); k != usage.KindInvalid && k != usage.KindNotFound {
				t.Fatalf("query %q: error of kind %v: %v", body, k, err)
			}
			return
		}
		if q.OrganizationID != o.ID || !q.Interval.End.After(q.Interval.Start) {
			t.Fatalf("query %q: %+v", body, q)
		}
	})
}

// FuzzUsageRequests feeds the request parsers of the usage operations and
// jobs: whatever the body, the answer is a query of the caller's
// organization over a valid interval, or a client error.
func FuzzUsageRequests(f *testing.F) {
	s := &Server{cfg: Config{Now: func() time.Time { return time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC) }}}
	for _, seed := range []string{
		`{"interval":"2026-01-01/2026-02-01","granularity":"Day","groupBy":["OAuthClientId","UserId"],"metrics":["Requests"]}`,
		`{"interval":"P1D/2026-06-01","metrics":["Date","ClientName"],"oauthClientNames":["a"],"httpMethods":["get"],"templateUris":["/x"]}`,
		`{"interval":"2026-06-01/2026-06-10","sortBy":[{"fieldName":"Requests","order":"Desc"}],"groupBy":["Platform"],"platforms":["p"]}`,
		`{"interval":5}`, `[]`, `{"interval":"/"}`, `{"a":1}`, ``, `{"granularity":"Minute","interval":"2026-01"}`,
	} {
		f.Add(seed)
	}
	check := func(t *testing.T, body string, q usage.Query, err error) {
		t.Helper()
		if err != nil {
			if k := usage.KindOf(err); k != usage.KindInvalid && k != usage.KindUnsupported && k != usage.KindTooLarge {
				t.Fatalf("%q: error of kind %v: %v", body, k, err)
			}
			return
		}
		if q.OrganizationID != "o" || !q.Interval.End.After(q.Interval.Start) || len(q.Metrics) == 0 {
			t.Fatalf("%q: %+v", body, q)
		}
	}
	decode := func(body string, v any) error {
		return decodeJSON(httptest.NewRequest("POST", "/", strings.NewReader(body)), v)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var uq usageQueryRequest
		if err := decode(body, &uq); err == nil {
			q, err := usageQuery("o", &uq, orgGroupBy)
			check(t, body, q, err)
		}
		var ss simpleSearchRequest
		if err := decode(body, &ss); err == nil {
			q, err := simpleSearchQuery("o", &ss)
			check(t, body, q, err)
		}
		var oj organizationJobRequest
		if err := decode(body, &oj); err == nil {
			shared := oj.shared()
			q, _, err := s.jobQuery("o", &shared, &organizationJobs)
			if err == nil {
				q, err = q.Normalize()
			}
			check(t, body, q, err)
		}
	})
}

// FuzzCursor checks that a cursor decodes only to what encodeCursor made
// for the same execution.
func FuzzCursor(f *testing.F) {
	f.Add("exec-1", 100, encodeCursor("exec-1", 100))
	f.Add("exec-1", 0, "eHl6")
	f.Fuzz(func(t *testing.T, id string, offset int, cursor string) {
		if offset < 0 {
			offset = -offset
		}
		if offset < 0 { // math.MinInt
			return
		}
		r := httptest.NewRequest("GET", "/?after="+url.QueryEscape(encodeCursor(id, offset)), nil)
		if got, err := cursorParam(r, "after", id); err != nil || got != offset {
			t.Fatalf("round trip of %q %d: %d, %v", id, offset, got, err)
		}
		r = httptest.NewRequest("GET", "/?after="+url.QueryEscape(cursor), nil)
		if got, err := cursorParam(r, "after", id); err == nil && got < 0 {
			t.Fatalf("cursor %q gave offset %d", cursor, got)
		}
	})
}
