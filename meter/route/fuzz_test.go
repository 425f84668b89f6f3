package route_test

import (
	"strings"
	"testing"

	"github.com/usaged/usaged/meter/route"
)

// FuzzMatch compiles a table of templates, one per line, and matches a
// path: Match must not panic, must answer the same every time, with one of
// the templates (as New names them) or the catch-all, and exactly as the
// reading of the rules in reference does.
func FuzzMatch(f *testing.F) {
	f.Add("/a/{x}/c\n/a/b/d\n/users/me\n/users/{id}", "/a/b/c")
	f.Add("/users/{id}\n/users/{userId}\n/users/me", "/users/me/")
	f.Add("/\n/x", "//")
	f.Add("/x/{y}", "/x/%7By%7D")
	f.Add("/p/{a}/{b}/x\n/p/q/{b}/y\n/p/q/r/z", "p//q/r/x")
	f.Add("{t}/users\n/caf%C3%A9", "/café")
	f.Fuzz(func(t *testing.T, list, path string) {
		var templates []string
		for _, l := range strings.Split(list, "\n") {
			if strings.TrimSpace(l) != "" { // New refuses empty templates
				templates = append(templates, l)
			}
		}
		const catchAll = "no route" // a space: no template can be it
		m, err := route.New(templates, route.Options{CatchAll: catchAll})
		if err != nil {
			return
		}
		if m.Len() > len(templates) {
			t.Fatalf("Len() = %d of %d templates", m.Len(), len(templates))
		}
		got := m.Match(path)
		if again := m.Match(path); again != got {
			t.Fatalf("Match(%q) = %q, then %q", path, got, again)
		}
		if want := reference(templates, catchAll, path); got != want {
			t.Fatalf("Match(%q) = %q, want %q", path, got, want)
		}
		if slashed := m.Match("/" + path + "/"); slashed != got {
			t.Fatalf("Match(%q) = %q but Match(%q) = %q", path, got, "/"+path+"/", slashed)
		}
		if got == catchAll {
			return
		}
		for _, tm := range templates {
			if name := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(tm), "/"), "/"); name == got || name == "" && got == "/" {
				return
			}
		}
		t.Fatalf("Match(%q) = %q, which is neither a template nor the catch-all", path, got)
	})
}

// FuzzTemplates reads a route document: Templates must not panic, and
// what it reads without error must compile, with every template matching
// itself (or a template of its shape named first).
func FuzzTemplates(f *testing.F) {
	f.Add(`{"openapi":"3.0.0","servers":[{"url":"/v1"}],"paths":{"/a/{b}":{},"/a/me":{}}}`)
	f.Add(`{"openapi":"3.1.0","servers":[{"url":"https://{h}.example.com/{v}","variables":{"h":{"default":"x"},"v":{"default":"v2"}}}],"paths":{"/a":{"servers":[{"url":"."}]},"x-y":1}}`)
	f.Add(`{"swagger":"2.0","basePath":"/x","paths":{"/y":{},"/":{}}}`)
	f.Add("/a\n# c\n/b/{c}\n\n{t}/d\r\n")
	f.Add("openapi: 3.0.0\npaths: {}\n")
	f.Add("openapi: 3.0.0\nservers:\n  - url: /v1\npaths:\n  /a/{b}: &p {get: {}}\n  /a/me: *p\n")
	f.Add("swagger: 2.0\nbasePath: /x\npaths:\n  /y: {}\n  200: {}\n  x-z: [1, .inf, null, true, !!binary aGk=]\n")
	f.Add(`{"openapi":"3.0.0","paths":{"/a":{}`)
	f.Fuzz(func(t *testing.T, doc string) {
		ts, err := route.Templates(strings.NewReader(doc))
		if err != nil {
			return
		}
		if len(ts) == 0 {
			t.Fatal("no error and no templates")
		}
		m, err := route.New(ts, route.Options{CatchAll: "no route"})
		if err != nil {
			t.Fatalf("Templates read %q, which New refuses: %v", ts, err)
		}
		for _, tm := range ts {
			tm = strings.TrimSpace(tm) // New's leniency, which a path does not have
			if got := m.Match(tm); shapeOf(got) != shapeOf(tm) {
				t.Fatalf("Match(%q) = %q, not a route of its shape", tm, got)
			}
		}
	})
}
