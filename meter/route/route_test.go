package route_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/usaged/usaged/meter/route"
)

func mustMatcher(tb testing.TB, templates ...string) *route.Matcher {
	tb.Helper()
	m, err := route.New(templates, route.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestMatch(t *testing.T) {
	m := mustMatcher(t,
		"/api/v2/users", "/api/v2/users/me", "/api/v2/users/{userId}", "api/v2/users/{userId}/presences/{sourceId}",
		"/a/{x}/c", "/a/b/d", "/", "/files/{id}/content",
		"/api/v2/users/{otherName}", // the same route as users/{userId}: the first name stays
	)
	f := func(path, want string) {
		t.Helper()
		if got := m.Match(path); got != want {
			t.Errorf("Match(%q) = %q, want %q", path, got, want)
		}
	}
	f("/api/v2/users/8f1c2b3a/presences/purecloud", "api/v2/users/{userId}/presences/{sourceId}")
	f("/api/v2/users/me", "api/v2/users/me")                                        // a literal beats a parameter
	f("/api/v2/users/mee", "api/v2/users/{userId}")                                 //
	f("/api/v2/users/me/presences/x", "api/v2/users/{userId}/presences/{sourceId}") // back from a dead-end literal
	f("/a/b/c", "a/{x}/c")
	f("/a/b/d", "a/b/d")
	f("/a/z/d", route.DefaultCatchAll)
	f("/api/v2/users/", "api/v2/users")  // trailing slash
	f("api/v2/users", "api/v2/users")    // no leading slash
	f("//api//v2/users", "api/v2/users") // empty segments
	f("/api/v2/users/a%2Fb", "api/v2/users/{userId}")
	f("/api/v2", route.DefaultCatchAll) // a prefix of a route is not the route
	f("/api/v2/users/1/presences", route.DefaultCatchAll)
	f("/api/v2/users/1/presences/x/y", route.DefaultCatchAll) // longer than any route
	f("/", "/")
	f("", "/")
	if m.Len() != 8 {
		t.Errorf("Len() = %d, want 8", m.Len())
	}
	c, err := route.New([]string{"/x"}, route.Options{CatchAll: "other"})
	if err != nil || c.Match("/y") != "other" || c.Match("/") != "other" {
		t.Errorf("catch-all option: %v %q", err, c.Match("/y"))
	}
}

func TestNewRejects(t *testing.T) {
	f := func(tmpl, inErr string) {
		t.Helper()
		_, err := route.New([]string{"/ok", tmpl}, route.Options{})
		if err == nil || !strings.Contains(err.Error(), inErr) {
			t.Errorf("New(%q): %v, want an error with %q", tmpl, err, inErr)
		}
	}
	f("/a//b", "empty segment")
	f("/a/{}", "without a name")
	f("/a/x{id}", "whole segment")
	f("/a/{id", "whole segment")
	f("/a/{{id}}", "unbalanced")
}

func TestTemplates(t *testing.T) {
	f := func(file string, want ...string) {
		t.Helper()
		got, err := route.Load("testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", file, got, want)
		}
	}
	f("openapi3.json", "/api/v2/users", "/api/v2/users/me", "/api/v2/users/{userId}", "/api/v2/users/{userId}/presences/{sourceId}")
	f("swagger2.json", "/api/v2/conversations", "/api/v2/conversations/{conversationId}")
	f("templates.txt", "/api/v2/users/{userId}", "api/v2/users")

	bad := func(doc, inErr string) {
		t.Helper()
		_, err := route.Templates(strings.NewReader(doc))
		if err == nil || !strings.Contains(err.Error(), inErr) {
			t.Errorf("Templates(%q): %v, want an error with %q", doc, err, inErr)
		}
	}
	bad(`{"openapi":"3.0.0","paths":`, "not valid JSON")
	bad(`{"paths":{"/a":{}}}`, "neither OpenAPI 3")
	bad(`{"openapi":"3.1.0","paths":{}}`, "no paths")
	bad(`{"openapi":"3.1.0","servers":[{"url":"http://[::1"}],"paths":{"/a":{}}}`, "servers[0].url")
	bad("# only a comment\n\n", "no route templates")
}

// genesysLike returns n templates shaped like a large REST API: resources
// nested up to four deep, parameters at every depth, and literal siblings of
// parameters (users/me beside users/{userId}); and paths that hit them.
func genesysLike(n int) (templates, paths []string) {
	r := rand.New(rand.NewPCG(1, 2))
	nouns := []string{"users", "groups", "queues", "conversations", "routing", "analytics", "flows", "outbound", "messages", "presences", "skills", "wrapupcodes", "teams", "locations", "stations", "webchats", "scripts", "documents", "recordings", "quality"}
	seen := map[string]bool{}
	for len(templates) < n {
		depth := 1 + r.IntN(4)
		t, p := "/api/v2", "/api/v2"
		for d := 0; d < depth; d++ {
			noun := nouns[r.IntN(len(nouns))]
			t += "/" + noun
			p += "/" + noun
			if r.IntN(3) > 0 {
				if r.IntN(8) == 0 {
					t, p = t+"/me", p+"/me"
				} else {
					t += fmt.Sprintf("/{%sId}", noun[:len(noun)-1])
					p += fmt.Sprintf("/%08x", r.Uint32())
				}
			}
		}
		if !seen[t] {
			seen[t] = true
			templates = append(templates, t)
			paths = append(paths, p)
		}
	}
	for i := 0; i < n/4; i++ { // a quarter of the traffic matches nothing
		paths = append(paths, fmt.Sprintf("/api/v2/nothing/%d/here", i))
	}
	r.Shuffle(len(paths), func(i, j int) { paths[i], paths[j] = paths[j], paths[i] })
	return templates, paths
}

// BenchmarkMatch: go test -run XXX -bench Match -cpu 1 ./meter/route
func BenchmarkMatch(b *testing.B) {
	templates, paths := genesysLike(1000)
	m := mustMatcher(b, templates...)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Match(paths[i%len(paths)])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "matches/s")
}

func TestGeneratedTableMatchesItsPaths(t *testing.T) {
	templates, paths := genesysLike(1000)
	m := mustMatcher(t, templates...)
	known := map[string]bool{route.DefaultCatchAll: true}
	for _, tm := range templates {
		known[strings.TrimPrefix(tm, "/")] = true
	}
	hits := 0
	for _, p := range paths {
		got := m.Match(p)
		if !known[got] {
			t.Fatalf("Match(%q) = %q, which is not a template", p, got)
		}
		if got != route.DefaultCatchAll {
			hits++
		}
	}
	if hits < 1000 {
		t.Fatalf("only %d of the 1000 generated paths matched", hits)
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("/a/{x}/c\n/a/b/d\n/users/me\n/users/{id}", "/a/b/c")
	f.Add("/", "//")
	f.Add("/x/{y}", "/x/%7By%7D")
	f.Fuzz(func(t *testing.T, list, path string) {
		m, err := route.New(strings.Split(list, "\n"), route.Options{})
		if err != nil {
			return
		}
		got := m.Match(path)
		if got != m.Match(path) {
			t.Fatal("Match is not deterministic")
		}
		if got == route.DefaultCatchAll {
			return
		}
		for _, tm := range strings.Split(list, "\n") {
			if n := strings.Trim(strings.TrimSpace(tm), "/"); n == got || n == "" && got == "/" || sameShape(n, got) {
				return
			}
		}
		t.Fatalf("Match(%q) = %q, which is neither a template nor the catch-all", path, got)
	})
}

// sameShape reports whether two templates differ only in parameter names.
func sameShape(a, b string) bool {
	x, y := strings.Split(a, "/"), strings.Split(b, "/")
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		px := strings.HasPrefix(x[i], "{") && strings.HasSuffix(x[i], "}")
		py := strings.HasPrefix(y[i], "{") && strings.HasSuffix(y[i], "}")
		if px != py || !px && x[i] != y[i] {
			return false
		}
	}
	return true
}

func FuzzTemplates(f *testing.F) {
	f.Add(`{"openapi":"3.0.0","servers":[{"url":"/v1"}],"paths":{"/a/{b}":{}}}`)
	f.Add(`{"swagger":"2.0","basePath":"/x","paths":{"/y":{}}}`)
	f.Add("/a\n# c\n/b/{c}\n")
	f.Fuzz(func(t *testing.T, doc string) {
		ts, err := route.Templates(strings.NewReader(doc))
		if err != nil {
			return
		}
		if len(ts) == 0 {
			t.Fatal("no error and no templates")
		}
		route.New(ts, route.Options{})
	})
}
