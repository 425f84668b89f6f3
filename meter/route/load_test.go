package route_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/usaged/usaged/meter/route"
)

func TestLoad(t *testing.T) {
	f := func(file string, want ...string) {
		t.Helper()
		got, err := route.Load(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) { // in the document's order
			t.Errorf("%s: %q, want %q", file, got, want)
		}
		if _, err := route.New(got, route.Options{}); err != nil {
			t.Errorf("%s: New: %v", file, err)
		}
	}
	// OpenAPI 3, an absolute server URL: its path is the prefix. An
	// extension among the paths is skipped.
	f("openapi3.json", "/api/v2/users", "/api/v2/users/me", "/api/v2/users/{userId}", "/api/v2/users/{id}",
		"/api/v2/users/{userId}/presences/{sourceId}")
	// OpenAPI 3, a relative server URL, and a path with its own server,
	// whose variables take their defaults.
	f("openapi3-relative.json", "/api/v2/conversations/{conversationId}", "/api/v2/analytics/conversations/details/query",
		"/health/status")
	f("swagger2.json", "/api/v2/conversations", "/api/v2/conversations/{conversationId}", "/api/v2/")
	f("templates.txt", "/api/v2/users/{userId}", "api/v2/users", "/api/v2/users/me/", "/")

	// YAML states the same as JSON, and gives the same templates in the
	// same order.
	for yml, js := range map[string]string{"openapi3.yaml": "openapi3.json", "openapi3-relative.yaml": "openapi3-relative.json", "swagger2.yml": "swagger2.json"} {
		want, err := route.Load(filepath.Join("testdata", js))
		if err != nil {
			t.Fatal(err)
		}
		f(yml, want...)
		b, err := os.ReadFile(filepath.Join("testdata", yml))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := route.Templates(bytes.NewReader(b)); err != nil || !slices.Equal(got, want) {
			t.Errorf("Templates(%s): %q, %v; want %q", yml, got, err, want)
		}
	}

	// Of the OpenAPI paths that differ only in parameter names, the first
	// in the document names the route.
	ts, err := route.Load("testdata/openapi3.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := mustMatcher(t, ts...).Match("/api/v2/users/42"); got != "api/v2/users/{userId}" {
		t.Errorf("Match = %q, want the first name, api/v2/users/{userId}", got)
	}

	if _, err := route.Load("testdata/no-such-file"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestTemplates(t *testing.T) {
	f := func(doc string, want ...string) {
		t.Helper()
		got, err := route.Templates(strings.NewReader(doc))
		if err != nil {
			t.Fatalf("Templates(%q): %v", doc, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Templates(%q) = %q, want %q", doc, got, want)
		}
	}
	f(`{"openapi":"3.0.0","paths":{"/a":{}}}`, "/a") // no servers: no prefix
	f(`{"openapi":"3.0.0","servers":[],"paths":{"/a":{}}}`, "/a")
	f(`{"openapi":"3.0.0","servers":[{"url":"https://h.example.com"}],"paths":{"/a":{}}}`, "/a")
	f(`{"openapi":"3.0.0","servers":[{"url":"https://h.example.com/"}],"paths":{"/a":{}}}`, "/a")
	f(`{"openapi":"3.0.0","servers":[{"url":"/"}],"paths":{"/a":{}}}`, "/a")
	f(`{"openapi":"3.0.0","servers":[{"url":"."}],"paths":{"/a":{}}}`, "/a") // relative to the document
	f(`{"openapi":"3.0.0","servers":[{"url":"v1/"}],"paths":{"/a":{}}}`, "/v1/a")
	f(`{"openapi":"3.0.0","servers":[{"url":"https://h.example.com:8443/x/v1?q=1"}],"paths":{"/a":{}}}`, "/x/v1/a")
	f(`{"openapi":"3.0.0","servers":[{"url":"https://{h}.example.com/{v}","variables":{"h":{"default":"eu"},"v":{"default":"v3"}}}],"paths":{"/a":{}}}`, "/v3/a")
	f(`{"swagger":"2.0","paths":{"/a":{}}}`, "/a") // no basePath
	f(`{"swagger":"2.0","basePath":"/","paths":{"/a":{}}}`, "/a")
	f(`{"swagger":"2.0","basePath":"/v2/","paths":{"/a/{id}":{},"/b":{}}}`, "/v2/a/{id}", "/v2/b")
	f(`{"swagger":"2.0","basePath":"/v2","paths":{"/a":{"servers":[{"url":"/ignored"}]}}}`, "/v2/a") // servers are OpenAPI 3's
	f("\uFEFF{\"openapi\":\"3.0.0\",\"paths\":{\"/a\":{}}}", "/a")                                   // a byte-order mark
	f("  \n{\n\"openapi\":\"3.0.0\",\"paths\":{\"/a\":{}}}", "/a")
	f("{tenant}/users\n{tenant}/users/{userId}\n", "{tenant}/users", "{tenant}/users/{userId}") // a list, though it starts with a brace
	f("/a\r\n/b\r\n", "/a", "/b")
	f("/a\n# /b\n\n  /c  \n/d", "/a", "/c", "/d")
	f("/", "/")
	// YAML, told by its version key.
	f("openapi: 3.0.0\npaths:\n  /a: {}\n  /b/{id}:\n    get: {}\n", "/a", "/b/{id}")
	f("---\n\"openapi\" : 3.1.0\nservers: [{url: /v1}]\npaths: {/a: {}}\n", "/v1/a")
	f("swagger: '2.0'\nbasePath: /v2\npaths:\n  /z: {}\n  /a: {}\n", "/v2/z", "/v2/a") // the document's order
	f("swagger: 2.0\npaths: {/a: {}}\n", "/a")                                         // an unquoted version is a YAML number, taken as written
	f("# a comment first\nopenapi: 3.0.0\npaths:\n  /a:\n    x: &x {y: 1}\n  /b:\n    x: *x\n", "/a", "/b")
	f("\uFEFFopenapi: 3.0.0\r\npaths:\r\n  /a: {}\r\n", "/a")
}

// TestTemplatesRejects reads the malformed documents of testdata/bad: each
// error must say what is wrong and where.
func TestTemplatesRejects(t *testing.T) {
	want := map[string][]string{
		"not-openapi.yaml":     {"neither OpenAPI 3", `"openapi": "3.x"`},
		"yaml-syntax.yaml":     {"not valid YAML", "yaml: line"},
		"truncated.json":       {"not valid JSON", "ends early"},
		"syntax.json":          {"not valid JSON", "line 5"},
		"version.json":         {`OpenAPI "2.0"`, "only OpenAPI 3.x and Swagger 2.0"},
		"swagger-version.json": {`Swagger "1.2"`, "only OpenAPI 3.x and Swagger 2.0"},
		"neither.json":         {"neither OpenAPI 3", `"openapi": "3.x"`},
		"no-paths.json":        {"no paths", `"paths" object`},
		"only-extensions.json": {"has no paths"},
		"paths-array.json":     {"no paths", `"paths" object`},
		"partial-param.json":   {`paths["/files/{name}.json"]`, "whole segment", `paths["/users/{id"]`, "unbalanced brace"},
		"relative-path.json":   {`paths["users"]`, "must begin with /"},
		"path-item.json":       {`paths["/users"]`, "must be an object"},
		"server-variable.json": {"servers[0].url", "{region}", "no default"},
		"servers-object.json":  {"servers is a JSON object"},
		"list.txt":             {"line 2:", "white space", "line 3:", "empty segment"},
		"empty.txt":            {"no route templates"},
	}
	files, err := os.ReadDir("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	for _, fi := range files {
		name := fi.Name()
		inErr, ok := want[name]
		if !ok {
			t.Errorf("testdata/bad/%s: no expected error listed", name)
			continue
		}
		delete(want, name)
		path := filepath.Join("testdata", "bad", name)
		_, err := route.Load(path)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		for _, s := range append(inErr, path) {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %v\nwant an error with %s", name, err, s)
			}
		}
	}
	for name := range want {
		t.Errorf("testdata/bad/%s is missing", name)
	}

	f := func(doc string, inErr string) {
		t.Helper()
		_, err := route.Templates(strings.NewReader(doc))
		if err == nil || !strings.Contains(err.Error(), inErr) {
			t.Errorf("Templates(%q): %v, want an error with %q", doc, err, inErr)
		}
	}
	f("", "no route templates")
	f("{}", "neither OpenAPI 3")
	f(`{"openapi":3.0,"paths":{}}`, "openapi is a JSON number")
	f(`{"openapi":"3.0.0","paths":{}}`, "has no paths")
	f(`{"openapi":"3.0.0","paths":{"/a":{}}} {}`, "not valid JSON")
	f(`{"openapi":"3.1.0","servers":[{"url":"http://[::1"}],"paths":{"/a":{}}}`, "servers[0].url")
	f(`{"openapi":"3.1.0","servers":[{"url":"/{v"}],"paths":{"/a":{}}}`, "unbalanced brace")
	f(`{"openapi":"3.1.0","paths":{"/a":{"servers":[{"url":"/{v}"}]}}}`, `paths["/a"].servers[0].url`)
	f(`{"openapi":"3.1.0","paths":{"/a":null}}`, "must be an object")
	f(`{"openapi":"3.1.0","paths":{"/a/{x...}":{}}}`, "greedy")
	f("swagger: '2.0'\nbasePath: /v2\n", `no paths: it needs a "paths" object`)
	f("---\n\"openapi\" : 3.1.0\n", `no paths: it needs a "paths" object`)
	f("openapi: 3.0.0\npaths:\n  <<: {/a: {}}\n", "merge keys")
	f("openapi: 3.0.0\npaths:\n  ? [a]\n  : {}\n", "not a scalar")
	f("openapi: 2.0\npaths: {/a: {}}\n", `OpenAPI "2.0"`)
	f("openapi: 3.0.0\npaths:\n  /a/{x...}: {}\n", "greedy")
	// Aliases expand within the size limit.
	laughs := "openapi: 3.0.0\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 1; i < 10; i++ {
		laughs += fmt.Sprintf("a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	f(laughs+"paths: {/a: {}}\n", "expand beyond any real document")
	f("/a\n/b/{c\n", "line 2: route template \"/b/{c\": unbalanced brace")
	f(strings.Repeat("/a b\n", 100), "and 80 more problems")
	f(strings.Repeat("x", 64<<20+1), "larger than")

	if _, err := route.Templates(iotest.ErrReader(errors.New("disk on fire"))); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Templates of a failing reader: %v", err)
	}
}
