package genesys

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/usage"
)

func TestPanicAnswers500(t *testing.T) {
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), metrics: m}
	h := s.instrument("test", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret detail")
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v2/x", nil))
	var body errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if w.Code != 500 || body.Code != "internal.server.error" || body.ContextID != w.Header().Get(HeaderCorrelationID) ||
		strings.Contains(w.Body.String(), "secret detail") {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
}

func TestKindTable(t *testing.T) {
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
