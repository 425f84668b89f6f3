package route_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
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
		"/a/{x}/c", "/a/b/d", "/", "/files/{id}/content", "/caf%C3%A9/menu/",
		"/api/v2/users/{otherName}",              // the route of users/{userId}: the first name stays
		"/api/v2/users/me",                       // a duplicate
		"/p/{a}/{b}/x", "/p/q/{b}/y", "/p/q/r/z", // backtracking over two levels
	)
	f := func(path, want string) {
		t.Helper()
		if got := m.Match(path); got != want {
			t.Errorf("Match(%q) = %q, want %q", path, got, want)
		}
	}
	const none = route.DefaultCatchAll

	f("/api/v2/users/8f1c2b3a/presences/purecloud", "api/v2/users/{userId}/presences/{sourceId}")
	f("/api/v2/users/me", "api/v2/users/me") // a literal beats a parameter
	f("/api/v2/users/mee", "api/v2/users/{userId}")
	f("/api/v2/users/m", "api/v2/users/{userId}")
	f("/api/v2/users/me/presences/x", "api/v2/users/{userId}/presences/{sourceId}") // back from a dead-end literal
	f("/api/v2/users/{userId}", "api/v2/users/{userId}")                            // braces in a path are a segment like any other

	f("/a/b/c", "a/{x}/c") // backtracking: a/b dead-ends on c
	f("/a/b/d", "a/b/d")
	f("/a/z/c", "a/{x}/c")
	f("/a/z/d", none)
	f("/p/q/r/x", "p/{a}/{b}/x") // back two levels
	f("/p/q/r/y", "p/q/{b}/y")   // back one level
	f("/p/q/r/z", "p/q/r/z")
	f("/p/q/r/w", none)

	// Longest match: a template matches a whole path, never a prefix of it.
	f("/api/v2", none)
	f("/api/v2/users/1/presences", none)
	f("/api/v2/users/1/presences/x/y", none)
	f("/files/1", none)
	f("/files/1/content/more", none)

	f("/api/v2/users/", "api/v2/users") // trailing slash
	f("/api/v2/users//", "api/v2/users")
	f("api/v2/users", "api/v2/users") // no leading slash
	f("//api//v2///users", "api/v2/users")
	f("/", "/")
	f("", "/")
	f("///", "/")

	// Percent-encoding is compared as given.
	f("/api/v2/users/a%2Fb", "api/v2/users/{userId}")
	f("/api/v2/users/a%2Fb/presences/c", "api/v2/users/{userId}/presences/{sourceId}")
	f("/api/v2/users/m%65", "api/v2/users/{userId}") // not decoded into "me"
	f("/caf%C3%A9/menu", "caf%C3%A9/menu")
	f("/café/menu", none)
	f("/CAF%C3%A9/menu", none) // case matters, in escapes too

	f("/nowhere", none)
	f("/api/v2/users?x=1", none) // a query is not part of a path; strip it first
}

func TestMatchCatchAll(t *testing.T) {
	f := func(catchAll, path, want string) {
		t.Helper()
		m, err := route.New([]string{"/x", "/x/{id}"}, route.Options{CatchAll: catchAll})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Match(path); got != want {
			t.Errorf("CatchAll %q: Match(%q) = %q, want %q", catchAll, path, got, want)
		}
	}
	f("", "/y", route.DefaultCatchAll)
	f("other", "/y", "other")
	f("other", "/", "other") // no root route
	f("other", "", "other")
	f("/other", "/x/1/2", "other") // named without a leading slash, as templates are
	f("other", "/x/1", "x/{id}")
}

func TestNewRejects(t *testing.T) {
	f := func(tmpl string, inErr ...string) {
		t.Helper()
		m, err := route.New([]string{"/ok", tmpl}, route.Options{})
		if err == nil || m != nil {
			t.Fatalf("New(%q) = %v, %v; want an error and no Matcher", tmpl, m, err)
		}
		for _, s := range append(inErr, fmt.Sprintf("%.40q", tmpl)) { // named, if long by its start
			if !strings.Contains(err.Error(), s) {
				t.Errorf("New(%q): %v, want an error with %s", tmpl, err, s)
			}
		}
	}
	f("/a//b", "empty segment")
	f("//a", "empty segment")
	f("/a//", "empty segment")
	f("/a/{}", "has no name")
	f("/a/x{id}", "whole segment")
	f("/a/{id}.json", "whole segment")
	f("/a/{id}:cancel", "whole segment")
	f("/a/{id", "unbalanced brace")
	f("/a/id}", "unbalanced brace")
	f("/a/{{id}}", "one pair of braces")
	f("/a/{x}{y}", "one pair of braces")
	f("/files/{path...}", "greedy")
	f("/files/{path*}", "greedy")
	f("/files/{+path}", "greedy")
	f("/files/{$}", "end of a net/http pattern")
	f("GET /a", "white space", "without a method")
	f("/a\tb", "control characters")
	f("/a/\xff", "invalid UTF-8")
	f("/a?b=1", "query")
	f("/"+strings.Repeat("a", 1025), "1025 bytes", "at most 1024")
	f("/unmatched", "is the catch-all")

	_, err := route.New([]string{""}, route.Options{})
	if err == nil || !strings.Contains(err.Error(), `the root route is written "/"`) {
		t.Errorf(`New(""): %v, want an error pointing to "/"`, err)
	}
	// Every problem is reported, not only the first.
	_, err = route.New([]string{"/a//b", "/ok", "/c/{d"}, route.Options{})
	if err == nil || !strings.Contains(err.Error(), `"/a//b"`) || !strings.Contains(err.Error(), `"/c/{d"`) {
		t.Errorf("New: %v, want both bad templates named", err)
	}
	for _, c := range []string{"/", "//", "\x01"} {
		if _, err := route.New([]string{"/a"}, route.Options{CatchAll: c}); err == nil || !strings.Contains(err.Error(), "catch-all") {
			t.Errorf("New with CatchAll %q: %v, want an error about the catch-all", c, err)
		}
	}
}

func TestLen(t *testing.T) {
	f := func(want int, templates ...string) {
		t.Helper()
		if got := mustMatcher(t, templates...).Len(); got != want {
			t.Errorf("Len() of %q = %d, want %d", templates, got, want)
		}
	}
	f(0)
	f(1, "/a")
	f(1, "/a", "a", "/a/", " /a ")                   // the same template, written four ways
	f(1, "/u/{id}", "/u/{userId}")                   // differing only in parameter names
	f(3, "/u/{id}", "/u/me", "/u/{id}/x")            //
	f(2, "/", "/x")                                  // the root is a route
	f(4, "/a/{x}/c", "/a/b/d", "/a/{y}/d", "/a/b/c") // same prefix, different shapes
}

// TestMatchAllocs pins that matching allocates nothing, on hits and misses,
// through small and large fan-outs and while backtracking.
func TestMatchAllocs(t *testing.T) {
	templates, paths := genesysLike(1000)
	m := mustMatcher(t, append(templates, "/a/{x}/c", "/a/b/d")...)
	for _, p := range slices.Concat(paths[:100], paths[len(templates):len(templates)+200], []string{"/a/b/c", "/a/b/d", "/nowhere", "", "/"}) {
		if n := testing.AllocsPerRun(10, func() { m.Match(p) }); n != 0 {
			t.Errorf("Match(%q) allocates %.0f times", p, n)
		}
	}
}

// TestMatchAgreesWithReference checks the trie against the plain reading of
// the rules (reference) over a generated table and its traffic.
func TestMatchAgreesWithReference(t *testing.T) {
	templates, paths := genesysLike(1000)
	m := mustMatcher(t, templates...)
	hits := 0
	for _, p := range paths {
		got, want := m.Match(p), reference(templates, route.DefaultCatchAll, p)
		if got != want {
			t.Fatalf("Match(%q) = %q, want %q", p, got, want)
		}
		if got != route.DefaultCatchAll {
			hits++
		}
	}
	// The hits come twice, first in order and then among the misses.
	if hits != 2*len(templates) {
		t.Errorf("%d of the %d generated hits matched", hits, 2*len(templates))
	}
	for i, tm := range templates {
		if got := m.Match(paths[i]); got != strings.TrimPrefix(tm, "/") {
			t.Errorf("Match(%q) = %q, want its own template %q", paths[i], got, tm)
		}
	}
}

func TestMatchConcurrent(t *testing.T) {
	templates, paths := genesysLike(500)
	m := mustMatcher(t, templates...)
	want := make([]string, len(paths))
	for i, p := range paths {
		want[i] = m.Match(p)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range paths {
				i := (i + g*97) % len(paths)
				if got := m.Match(paths[i]); got != want[i] {
					t.Errorf("concurrent Match(%q) = %q, want %q", paths[i], got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

// reference is Match as its documentation reads, without a trie: among the
// templates of the path's length whose every literal segment equals the
// path's, the one with a literal where the others have a parameter at the
// first segment they differ; of those of one shape, the first given.
func reference(templates []string, catchAll, path string) string {
	var segs []string
	for s := range strings.SplitSeq(path, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	best, bestSegs := "", []string(nil)
	for _, t := range templates {
		name := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(t), "/"), "/")
		var ts []string
		if name == "" {
			name = "/"
		} else {
			ts = strings.Split(name, "/")
		}
		if len(ts) != len(segs) || !matches(ts, segs) {
			continue
		}
		if best == "" || before(ts, bestSegs) {
			best, bestSegs = name, ts
		}
	}
	if best == "" {
		return strings.TrimLeft(catchAll, "/")
	}
	return best
}

func matches(template, segs []string) bool {
	for i, s := range template {
		if !isParam(s) && s != segs[i] {
			return false
		}
	}
	return true
}

// before reports whether template a wins over b: a literal where b has a
// parameter, at the first segment where they differ in that.
func before(a, b []string) bool {
	for i := range a {
		if pa, pb := isParam(a[i]), isParam(b[i]); pa != pb {
			return !pa
		}
	}
	return false
}

func isParam(s string) bool { return strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") }
