// Package route maps raw request paths to route templates
// ("/api/v2/users/8f1c…/presences/purecloud" →
// "api/v2/users/{userId}/presences/{sourceId}"), so that usage is recorded
// per route and the number of distinct templates stays bounded: a path no
// template matches is recorded under a catch-all, never as itself.
package route

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultCatchAll is the template of paths no template matches.
const DefaultCatchAll = "unmatched"

// Options configure a Matcher.
type Options struct {
	CatchAll string // the template of unmatched paths; default DefaultCatchAll
}

// Matcher maps paths to templates. It is immutable once built and safe for
// concurrent use.
type Matcher struct {
	root     node
	catchAll string
	n        int
}

// node is one segment position of the trie. Literal children are looked up
// by segment; a parameter child matches any one segment.
type node struct {
	literal  map[string]*node
	param    *node
	template string // non-empty when a route ends here
}

// New compiles templates such as "/api/v2/users/{userId}" (the leading
// slash is optional, a parameter is a whole segment in braces). Templates
// that differ only in their parameter names are the same route: the first
// one given names it.
func New(templates []string, opt Options) (*Matcher, error) {
	m := &Matcher{catchAll: opt.CatchAll}
	if m.catchAll == "" {
		m.catchAll = DefaultCatchAll
	}
	var errs []error
	for _, t := range templates {
		segs, err := parse(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n := &m.root
		for _, s := range segs {
			if isParam(s) {
				if n.param == nil {
					n.param = &node{}
				}
				n = n.param
				continue
			}
			if n.literal == nil {
				n.literal = map[string]*node{}
			}
			c := n.literal[s]
			if c == nil {
				c = &node{}
				n.literal[s] = c
			}
			n = c
		}
		if n.template == "" {
			n.template = strings.Join(segs, "/")
			if n.template == "" {
				n.template = "/" // the root route; a template is never empty
			}
			m.n++
		}
	}
	return m, errors.Join(errs...)
}

// parse splits a template into segments, checking each.
func parse(t string) ([]string, error) {
	p := strings.Trim(strings.TrimSpace(t), "/")
	if p == "" {
		return nil, nil
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		switch {
		case s == "":
			return nil, fmt.Errorf("route template %q has an empty segment", t)
		case isParam(s) && len(s) == 2:
			return nil, fmt.Errorf("route template %q has a parameter without a name", t)
		case !isParam(s) && strings.ContainsAny(s, "{}"):
			return nil, fmt.Errorf("route template %q: a parameter must be a whole segment in braces, got %q", t, s)
		case isParam(s) && strings.ContainsAny(s[1:len(s)-1], "{}"):
			return nil, fmt.Errorf("route template %q: unbalanced braces in %q", t, s)
		}
	}
	return segs, nil
}

func isParam(s string) bool { return len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' }

// Match returns the template path matches, or the catch-all. The path may
// have a leading and a trailing slash or not; empty segments ("//") are
// skipped; percent-encoded segments are compared as they are. At every
// segment a literal wins over a parameter, falling back to the parameter
// when the literal branch does not lead to a whole match.
func (m *Matcher) Match(path string) string {
	if t := m.root.match(path, 0); t != "" {
		return t
	}
	return m.catchAll
}

// match matches the rest of path from byte i. It allocates nothing: map
// lookups with a substring key do not copy it.
func (n *node) match(path string, i int) string {
	for i < len(path) && path[i] == '/' {
		i++
	}
	if i == len(path) {
		return n.template
	}
	j := i
	for j < len(path) && path[j] != '/' {
		j++
	}
	if c := n.literal[path[i:j]]; c != nil {
		if t := c.match(path, j); t != "" {
			return t
		}
	}
	if n.param != nil {
		return n.param.match(path, j)
	}
	return ""
}

// Len is the number of distinct routes.
func (m *Matcher) Len() int { return m.n }
