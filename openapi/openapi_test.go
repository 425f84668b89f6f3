package openapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// mustDocument parses the document as a tree of maps.
func mustDocument(tb testing.TB) map[string]any {
	tb.Helper()
	b, err := JSON()
	if err != nil {
		tb.Fatalf("the document does not parse: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		tb.Fatal(err)
	}
	return doc
}

// TestDocumentIsValid checks the document's structure: an OpenAPI 3.0
// document whose every operation has responses and a unique id, declares
// each parameter of its path, and whose every $ref resolves.
func TestDocumentIsValid(t *testing.T) {
	doc := mustDocument(t)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.0.") {
		t.Errorf("openapi = %q, want 3.0.x", v)
	}
	info, _ := doc["info"].(map[string]any)
	if info["title"] == "" || info["version"] == "" {
		t.Errorf("info lacks a title or version: %v", info)
	}
	paths, _ := doc["paths"].(map[string]any)
	if len(paths) < 40 {
		t.Fatalf("only %d paths", len(paths))
	}
	ids := map[string]string{}
	param := regexp.MustCompile(`\{(\w+)\}`)
	for path, v := range paths {
		item := v.(map[string]any)
		if !strings.HasPrefix(path, "/") {
			t.Errorf("path %q does not start with /", path)
		}
		declared := func(op map[string]any) map[string]bool {
			names := map[string]bool{}
			for _, list := range []any{item["parameters"], op["parameters"]} {
				ps, _ := list.([]any)
				for _, p := range ps {
					p := resolve(t, doc, p.(map[string]any))
					if p["in"] == "path" {
						names[p["name"].(string)] = true
					}
				}
			}
			return names
		}
		n := 0
		for _, m := range methods {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			n++
			where := strings.ToUpper(m) + " " + path
			if rs, _ := op["responses"].(map[string]any); len(rs) == 0 {
				t.Errorf("%s has no responses", where)
			}
			if id, _ := op["operationId"].(string); id == "" {
				t.Errorf("%s has no operationId", where)
			} else if other, dup := ids[id]; dup {
				t.Errorf("%s and %s share operationId %s", where, other, id)
			} else {
				ids[id] = where
			}
			have := declared(op)
			for _, m := range param.FindAllStringSubmatch(path, -1) {
				if !have[m[1]] {
					t.Errorf("%s does not declare its path parameter %s", where, m[1])
				}
			}
		}
		if n == 0 {
			t.Errorf("path %s has no operation", path)
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				lookup(t, doc, ref)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
}

// lookup returns what ref, a local JSON pointer, points at.
func lookup(tb testing.TB, doc map[string]any, ref string) map[string]any {
	tb.Helper()
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		tb.Errorf("$ref %q is not local", ref)
		return nil
	}
	var cur any = doc
	for _, seg := range strings.Split(rest, "/") {
		m, _ := cur.(map[string]any)
		if cur, ok = m[seg]; !ok {
			tb.Errorf("$ref %q does not resolve", ref)
			return nil
		}
	}
	m, _ := cur.(map[string]any)
	return m
}

// resolve returns v, or what it refers to.
func resolve(tb testing.TB, doc, v map[string]any) map[string]any {
	if ref, ok := v["$ref"].(string); ok {
		return lookup(tb, doc, ref)
	}
	return v
}

func TestServed(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux)
	for _, path := range []string{"/openapi.json", "/openapi.yaml"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var v any
		if rec.Code != 200 || yaml.Unmarshal(rec.Body.Bytes(), &v) != nil {
			t.Errorf("GET %s: %d", path, rec.Code)
		}
	}
	ops, err := Operations()
	if err != nil || len(ops) < 50 {
		t.Fatalf("%d operations, %v", len(ops), err)
	}
}
