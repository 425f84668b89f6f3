// Package route maps raw request paths to route templates
// ("/api/v2/users/8f1c…/presences/purecloud" →
// "api/v2/users/{userId}/presences/{sourceId}"), so that usage is recorded
// per route and the number of distinct templates stays bounded: a path no
// template matches is recorded under a catch-all, never as itself.
//
// Templates are written as usaged's events carry them, without a leading
// slash; the root route alone is written "/", as it has no other name.
// A parameter ({name}) stands for exactly one whole segment. Greedy
// parameters that would swallow the rest of a path ({path...}, {path*},
// {+path}) are not supported: with them a single route could stand for
// paths of any shape, and no API described by OpenAPI needs them, as
// OpenAPI has no way to write them either.
package route

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/usaged/usaged/usage"
)

// DefaultCatchAll is the template of paths no template matches.
const DefaultCatchAll = "unmatched"

// smallFanout is the most literal children a node keeps in a slice; with
// more, a map. Comparing a few strings by length and bytes beats hashing
// the segment, and most nodes of a real API have only a few children.
const smallFanout = 8

// Options configure a Matcher.
type Options struct {
	// CatchAll is the template of paths no template matches; default
	// DefaultCatchAll. Like a template, it is named without a leading
	// slash. It must differ from every template, or unmatched traffic
	// would be counted as that route's.
	CatchAll string
}

// Matcher maps raw request paths to templates. It is immutable once built
// and safe for concurrent use.
type Matcher struct {
	root     node
	catchAll string
	n        int
}

// node is one segment position of the trie: a node at depth d is only ever
// compared with a path's d-th segment, so a match visits each node at most
// once however much it backtracks.
type node struct {
	// Literal children: keys[i] leads to kids[i] when there are few, lits
	// when there are many; never both.
	keys     []string
	kids     []*node
	lits     map[string]*node
	param    *node  // the child for any one segment
	template string // the route that ends here; "" when none does
}

// New compiles templates such as "/api/v2/users/{userId}" or
// "api/v2/users/{userId}": the leading slash is optional, a trailing one is
// dropped, and a parameter is a whole segment in braces. Duplicate
// templates are fine; templates that differ only in their parameter names
// ("users/{id}" and "users/{userId}") are the same route, named by the
// first of them. The error reports every template that is wrong, each by
// name, and no Matcher is returned with it.
func New(templates []string, opt Options) (*Matcher, error) {
	if opt.CatchAll == "" {
		opt.CatchAll = DefaultCatchAll
	}
	// Templates are named without their leading slash, as usaged stores
	// them; the catch-all is a template like any other.
	m := &Matcher{catchAll: strings.TrimLeft(opt.CatchAll, "/")}
	var errs []error
	switch {
	case m.catchAll == "":
		errs = append(errs, fmt.Errorf("route catch-all %q is empty without its leading slashes, and usaged refuses an empty template: name it, e.g. %q", opt.CatchAll, DefaultCatchAll))
	case len(m.catchAll) > usage.MaxTemplateLen:
		errs = append(errs, fmt.Errorf("route catch-all is %d bytes long; usaged accepts at most %d", len(m.catchAll), usage.MaxTemplateLen))
	case !printable(m.catchAll):
		errs = append(errs, fmt.Errorf("route catch-all %q holds control characters or invalid UTF-8", opt.CatchAll))
	}
	b := &builder{}
	for _, t := range templates {
		segs, err := parse(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		name := strings.Join(segs, "/")
		if name == "" {
			name = "/"
		}
		if name == m.catchAll {
			errs = append(errs, fmt.Errorf("route template %q is the catch-all: unmatched paths would count as this route; choose another catch-all", t))
			continue
		}
		if b.add(segs, name) {
			m.n++
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m.root = b.compile()
	return m, nil
}

// builder is a node under construction; compile freezes it into a node.
type builder struct {
	lits     map[string]*builder
	order    []string // the literals in the order they were added, for a deterministic layout
	param    *builder
	template string
}

// add adds the route segs named name; false when the route was there.
func (b *builder) add(segs []string, name string) bool {
	for _, s := range segs {
		if isParam(s) {
			if b.param == nil {
				b.param = &builder{}
			}
			b = b.param
			continue
		}
		c := b.lits[s]
		if c == nil {
			if b.lits == nil {
				b.lits = map[string]*builder{}
			}
			c = &builder{}
			b.lits[s] = c
			b.order = append(b.order, s)
		}
		b = c
	}
	if b.template != "" {
		return false
	}
	b.template = name
	return true
}

func (b *builder) compile() node {
	n := node{template: b.template}
	if b.param != nil {
		p := b.param.compile()
		n.param = &p
	}
	if len(b.order) > smallFanout {
		n.lits = make(map[string]*node, len(b.order))
	}
	for _, s := range b.order {
		c := b.lits[s].compile()
		if n.lits != nil {
			n.lits[s] = &c
		} else {
			n.keys = append(n.keys, s)
			n.kids = append(n.kids, &c)
		}
	}
	return n
}

// parse splits a template into its segments and checks each of them.
func parse(t string) ([]string, error) {
	p := strings.TrimSpace(t)
	if p == "" {
		return nil, errors.New(`route template is empty: the root route is written "/"`)
	}
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimSuffix(p, "/")
	switch {
	case len(p) > usage.MaxTemplateLen:
		return nil, fmt.Errorf("route template %.40q… is %d bytes long; usaged accepts at most %d", t, len(p), usage.MaxTemplateLen)
	case !printable(p):
		return nil, fmt.Errorf("route template %q holds control characters or invalid UTF-8", t)
	case strings.ContainsFunc(p, unicode.IsSpace):
		return nil, fmt.Errorf("route template %q contains white space; a template is a path alone, such as /api/v2/users/{userId}, without a method", t)
	case strings.ContainsRune(p, '?'):
		return nil, fmt.Errorf("route template %q has a query; a template is a path alone", t)
	case p == "":
		return nil, nil // the root route
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if err := checkSegment(s); err != nil {
			return nil, fmt.Errorf("route template %q: %w", t, err)
		}
	}
	return segs, nil
}

// checkSegment says what is wrong with one segment of a template.
func checkSegment(s string) error {
	open, closing := strings.Count(s, "{"), strings.Count(s, "}")
	switch {
	case s == "":
		return errors.New("empty segment (//); every segment needs a name or a {parameter}")
	case open == 0 && closing == 0:
		return nil
	case open != closing:
		return fmt.Errorf("unbalanced brace in segment %q", s)
	case !isParam(s):
		return fmt.Errorf("segment %q: a parameter must be a whole segment, such as {id}", s)
	case open > 1:
		return fmt.Errorf("segment %q: a parameter is one pair of braces around a name, such as {id}", s)
	case s == "{}":
		return errors.New("parameter {} has no name")
	case strings.HasSuffix(s, "...}") || strings.HasSuffix(s, "*}") || strings.HasPrefix(s, "{+"):
		return fmt.Errorf("parameter %s is greedy, which is not supported: a parameter stands for exactly one segment", s)
	case s == "{$}":
		return errors.New("{$} marks the end of a net/http pattern, which a template does not need: drop it")
	}
	return nil
}

// isParam reports whether a segment of a checked template is a parameter.
func isParam(s string) bool { return len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' }

// printable reports whether s is valid UTF-8 without control characters,
// as usaged requires of a template.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r >= 0x7f && r < 0xa0 })
}

// Match returns the template of path, or the catch-all when no template
// matches it; never the path itself. The path is a URL path without its
// query, with or without a leading slash; a trailing slash is ignored and
// empty segments ("//") are skipped. Segments are compared as given:
// percent-encoded bytes are not decoded, so "a%2Fb" is one segment.
//
// At each segment a literal wins over a parameter ("users/me" over
// "users/{userId}"); when the literal's branch does not lead to a route for
// the whole path, the parameter's is tried ("a/b/c" matches "a/{x}/c" even
// beside "a/b/d"). A template matches only a whole path, never a prefix of
// one: as a parameter stands for exactly one segment, every template that
// matches has as many segments as the path, so among them there is no
// longer one to prefer. Match allocates nothing.
func (m *Matcher) Match(path string) string {
	if t := m.root.match(path); t != "" {
		return t
	}
	return m.catchAll
}

// match returns the route that the rest of a path, path, leads to from n;
// "" when none does.
func (n *node) match(path string) string {
	i := 0
	for i < len(path) && path[i] == '/' {
		i++
	}
	if i == len(path) {
		return n.template
	}
	seg, rest := path[i:], ""
	if j := strings.IndexByte(seg, '/'); j >= 0 {
		seg, rest = seg[:j], seg[j:]
	}
	var c *node
	if n.lits != nil {
		c = n.lits[seg] // a substring key is not copied
	} else {
		for k, key := range n.keys {
			if key == seg {
				c = n.kids[k]
				break
			}
		}
	}
	if c != nil {
		if t := c.match(rest); t != "" {
			return t
		}
	}
	if n.param != nil {
		return n.param.match(rest)
	}
	return ""
}

// Len is the number of distinct routes: templates that differ only in
// their parameter names count once.
func (m *Matcher) Len() int { return m.n }
