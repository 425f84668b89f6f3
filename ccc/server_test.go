package ccc

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The pattern that catches /api/services.csv also matches every other path
// of one segment under /api; those are answered as the mux would without
// it.
func TestSuffixedTopLevel(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	ccc := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ccc " + r.URL.Path)) })
	mux.Handle("/api/v2/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("v2")) }))
	mux.Handle("GET /api/x/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) }))
	mux.Handle("/api/{segment}", suffixedTopLevel(mux, ccc))
	f := func(method, target string, status int, want string) {
		t.Helper()
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(method, target, nil))
		got := w.Body.String()
		if status == http.StatusMovedPermanently {
			got = w.Header().Get("Location")
		}
		if w.Code != status || got != want {
			t.Errorf("%s %s: %d %q, want %d %q", method, target, w.Code, got, status, want)
		}
	}
	f("GET", "/api/services.csv", 200, "ccc /api/services.csv")
	f("POST", "/api/partners.XML", 200, "ccc /api/partners.XML")
	f("GET", "/api/apikeys.jsv", 200, "ccc /api/apikeys.jsv")
	f("GET", "/api/v2", 301, "/api/v2/")
	f("GET", "/api/v2?a=b", 301, "/api/v2/?a=b")
	f("GET", "/api/x", 301, "/api/x/")
	f("POST", "/api/x", 404, "404 page not found\n")
	f("GET", "/api/services-x.csv", 404, "404 page not found\n")
	f("GET", "/api/nothing", 404, "404 page not found\n")
}
