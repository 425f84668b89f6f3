package openapi_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/usaged/usaged/internal/apptest"
	"github.com/usaged/usaged/internal/servertest"
	"github.com/usaged/usaged/openapi"
	"github.com/usaged/usaged/server"
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

// TestRoutesAnswer checks the document against a running server: every
// operation it lists is served. Requests carry the admin token, since the
// service-usage face authenticates before it routes; path parameters are
// made-up ids, whose 404 is still a route's answer.
func TestRoutesAnswer(t *testing.T) {
	const token = "openapi-admin-token"
	srv := servertest.Start(t, func(cfg *server.Config) { cfg.Auth.AdminToken = token })
	ops, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	guid := usage.NewGUID().String()
	param := regexp.MustCompile(`\{\w+\}`)
	send := func(method, path string) (int, string) {
		t.Helper()
		resp, b, err := apptest.Send(method, srv.URL()+path, token, "application/json", []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
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
		if strings.HasSuffix(path, "/limits/stream") {
			// The admin's stream never ends; an unknown organization's
			// 404 is still the route's answer.
			path += "?organizationId=" + guid
		}
		if status, body := send(method, path); routeMissing(status, body) {
			t.Errorf("%s is documented, but answered %d: %.200s", op, status, body)
		}
	}
}

// TestEveryRouteDocumented checks the other direction: every route the
// server registers, as its Routes lists them, is documented. The
// dashboard's page and assets are not API.
func TestEveryRouteDocumented(t *testing.T) {
	ops, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	routes := servertest.Start(t).Routes()
	if len(routes) < 50 {
		t.Fatalf("the server lists only %d routes: %v", len(routes), routes)
	}
	for _, r := range routes {
		if r == "GET /{$}" || r == "GET /assets/{file}" {
			continue
		}
		if !slices.Contains(ops, r) {
			t.Errorf("%s is served but not documented in openapi/openapi.yaml", r)
		}
	}
}
