package httpmw_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/httpmw"
	"github.com/usaged/usaged/ratelimit"
	"github.com/usaged/usaged/usage"
)

func mustStack(t *testing.T, reg prometheus.Registerer, failed func() error) *httpmw.Stack {
	t.Helper()
	st, err := httpmw.New(httpmw.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg, Failed: failed})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func serve(h http.Handler, method, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

func TestCorrelationMetricsAndRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := mustStack(t, reg, nil)
	face := &httpmw.Face{Header: http.Header{"Cache-Control": {"no-store"}}}
	var seen string
	h := st.Wrap(face, httpmw.Route{Pattern: "GET /x"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = httpmw.CorrelationID(r.Context())
		if rt := httpmw.RouteOf(r.Context()); rt.Pattern != "GET /x" {
			t.Errorf("RouteOf = %+v", rt)
		}
		w.WriteHeader(http.StatusTeapot)
	}))
	st.Wrap(face, httpmw.Route{Pattern: "unmatched", Unlisted: true}, http.NotFoundHandler())
	st.Wrap(face, httpmw.Route{Pattern: "GET /x"}, http.NotFoundHandler()) // listed once
	w := serve(h, "GET", "/x")
	if id := w.Header().Get(httpmw.HeaderCorrelationID); id == "" || id != seen || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v, handler saw id %q", w.Header(), seen)
	}
	if n := requests(t, reg, "GET /x", "418"); n != 1 {
		t.Fatalf("requests counted %v, want 1", n)
	}
	if got := st.Routes(); !slices.Equal(got, []string{"GET /x"}) {
		t.Fatalf("Routes = %q", got)
	}
}

// requests returns the value of usaged_http_requests_total for route and
// code, gathered from reg.
func requests(t *testing.T, reg *prometheus.Registry, route, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "usaged_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series for %s %s", route, code)
	return 0
}

func TestRecovery(t *testing.T) {
	var failed error
	st := mustStack(t, nil, func() error { return failed })
	var answered error
	face := &httpmw.Face{Error: func(w http.ResponseWriter, r *http.Request, err error) {
		answered = err
		w.WriteHeader(599)
	}}
	boom := st.Wrap(face, httpmw.Route{Pattern: "GET /boom"}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret detail")
	}))
	f := func(want usage.Kind) {
		t.Helper()
		answered = nil
		if w := serve(boom, "GET", "/boom"); w.Code != 599 || usage.KindOf(answered) != want {
			t.Fatalf("got %d, error %v; want the face to answer a %v error", w.Code, answered, want)
		}
	}
	f(usage.KindInternal)
	failed = &usage.Error{Kind: usage.KindUnavailable, Message: "store failed"}
	f(usage.KindUnavailable)
	if !errors.Is(answered, failed) {
		t.Fatalf("answered %v, want the store's failure", answered)
	}

	// A panic carrying a failure a client may retry after is answered as
	// that, with a working store too.
	failed = nil
	unavailable := st.Wrap(face, httpmw.Route{Pattern: "GET /gone"}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(&usage.Error{Kind: usage.KindUnavailable, Message: "later"})
	}))
	if w := serve(unavailable, "GET", "/gone"); w.Code != 599 || usage.KindOf(answered) != usage.KindUnavailable {
		t.Fatalf("got %d, %v", w.Code, answered)
	}

	// Without an error writer of the face's: plain text.
	plain := st.Wrap(&httpmw.Face{}, httpmw.Route{Pattern: "GET /plain"}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret detail")
	}))
	if w := serve(plain, "GET", "/plain"); w.Code != 500 || strings.Contains(w.Body.String(), "secret") {
		t.Fatalf("got %d %q", w.Code, w.Body)
	}
}

func TestBudgetsByClass(t *testing.T) {
	st := mustStack(t, nil, nil)
	now := time.Date(2026, 6, 15, 12, 0, 30, 0, time.UTC)
	var refused []httpmw.Class
	b, err := httpmw.NewBudgets(httpmw.BudgetsConfig{
		Limits: httpmw.Limits{API: 1, Ingest: 2, Token: -1},
		Now:    func() time.Time { return now },
		Refuse: func(w http.ResponseWriter, r *http.Request, d auth.Decision) {
			refused = append(refused, httpmw.RouteOf(r.Context()).Class)
			w.WriteHeader(http.StatusTooManyRequests)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	face := &httpmw.Face{Budgets: b, Key: func(r *http.Request) (*http.Request, ratelimit.Key) { return r, "k" }}
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	api := st.Wrap(face, httpmw.Route{Pattern: "GET /a", Class: httpmw.ClassAPI}, ok)
	ingest := st.Wrap(face, httpmw.Route{Pattern: "POST /e", Class: httpmw.ClassIngest}, ok)
	token := st.Wrap(face, httpmw.Route{Pattern: "POST /t", Class: httpmw.ClassToken}, ok)
	var codes []int
	for _, h := range []http.Handler{api, api, ingest, ingest, ingest, token, token, token} {
		codes = append(codes, serve(h, "GET", "/").Code)
	}
	if want := []int{200, 429, 200, 200, 429, 200, 200, 200}; !slices.Equal(codes, want) {
		t.Fatalf("codes %v, want %v", codes, want)
	}
	if want := []httpmw.Class{httpmw.ClassAPI, httpmw.ClassIngest}; !slices.Equal(refused, want) {
		t.Fatalf("refused %v, want %v", refused, want)
	}
	if err := (httpmw.Limits{API: ratelimit.MaxLimit + 1}).Validate(); err == nil {
		t.Fatal("a limit over the maximum passed")
	}
}
