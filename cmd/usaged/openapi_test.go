package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/usaged/usaged/openapi"
	"github.com/usaged/usaged/usage"
)

// routeMissing reports whether an answer says that no route serves the
// request: a 405, the mux's plain 404, or the 404 of the Genesys or the
// service-usage face for an unknown path. A 404 for a missing entity is an
// answer of a route that exists.
func routeMissing(status int, body string) bool {
	if status == http.StatusMethodNotAllowed {
		return true
	}
	return status == http.StatusNotFound &&
		(strings.Contains(body, "404 page not found") || strings.Contains(body, "No resource found for") || strings.Contains(body, "no such route"))
}

// TestOpenAPIRoutesAnswer checks the document against a running server:
// every operation it lists is served. Requests carry the admin token, since
// the service-usage face authenticates before it routes; path parameters
// are made-up ids, whose 404 is still a route's answer.
func TestOpenAPIRoutesAnswer(t *testing.T) {
	const token = "openapi-admin-token"
	srv := mustServe(t, "--data", t.TempDir(), "--admin-token", token)
	ops, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	guid := usage.NewGUID().String()
	param := regexp.MustCompile(`\{\w+\}`)
	send := func(method, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.base+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The check itself tells a missing route from an answer: a negative
	// control.
	for _, op := range []string{"GET /api/v2/nonesuch", "GET /api/services/" + guid + "/nonesuch", "GET /nonesuch", "PATCH /api/v2/usage/query"} {
		method, path, _ := strings.Cut(op, " ")
		if status, body := send(method, path); !routeMissing(status, body) {
			t.Errorf("%s answered %d %s; the check does not see a missing route", op, status, body)
		}
	}
	for _, op := range ops {
		method, path, _ := strings.Cut(op, " ")
		path = param.ReplaceAllString(path, guid)
		if status, body := send(method, path); routeMissing(status, body) {
			t.Errorf("%s is documented, but answered %d: %.200s", op, status, body)
		}
	}
}

// TestOpenAPIDocumentsEveryRoute checks the other direction: every route
// the faces register is documented. The routes are read from the
// registering code.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	ops, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	routes := registeredRoutes(t)
	if len(routes) < 50 {
		t.Fatalf("found only %d registered routes: %v", len(routes), routes)
	}
	for _, r := range routes {
		if !slices.Contains(ops, r) {
			t.Errorf("%s is served but not documented in openapi/openapi.yaml", r)
		}
	}
}

// registeredRoutes returns the "METHOD /path" patterns that the genesys,
// ccc, dashboard and openapi packages and serve register, from their
// source. The dashboard's page and assets are not API.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	pattern := regexp.MustCompile(`(?:r\.api|r\.handle|route|mux\.HandleFunc|mux\.Handle)\("((?:GET|POST|PUT|DELETE|PATCH) /[^"]*)"`)
	var routes []string
	for _, glob := range []string{"../../genesys/*.go", "../../ccc/server.go", "../../dashboard/dashboard.go", "../../openapi/openapi.go", "serve.go"} {
		files, err := filepath.Glob(glob)
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v", glob, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range pattern.FindAllStringSubmatch(string(b), -1) {
				if m[1] != "GET /{$}" && m[1] != "GET /assets/{file}" {
					routes = append(routes, m[1])
				}
			}
		}
	}
	slices.Sort(routes)
	return slices.Compact(routes)
}
