package ccc

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/usaged/usaged/usage"
)

// queryPairs is a query string's parameters in the order the client sent
// them, which url.Values forgets: with keys matched ignoring case, order
// decides between pageSize=1&PageSize=2.
type queryPairs []struct{ key, value string }

// parseQuery splits a raw query string as url.ParseQuery does, but keeps
// the order. Like it, it skips pairs that do not unescape and pairs holding
// a raw ';', which other servers split on: a proxy and usaged must not see
// different parameters.
func parseQuery(raw string) queryPairs {
	var q queryPairs
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		q = append(q, struct{ key, value string }{k, v})
	}
	return q
}

// get returns the first non-empty value of the parameter name, its key
// matched ignoring case (pageSize = PageSize = PAGESIZE), as ServiceStack
// binds. An empty value counts as absent, so that ?PageSize= keeps the
// default rather than failing.
func (q queryPairs) get(name string) string {
	for _, p := range q {
		if p.value != "" && strings.EqualFold(p.key, name) {
			return p.value
		}
	}
	return ""
}

// params binds the path and query parameters of a request to operation op.
// A parameter is found by name among the path values of the route
// ({ServiceGuid}) and then among the query keys, ignoring case. The first
// value that cannot be bound is kept, and err reports it as a bindError, so
// that a handler binds everything and checks once. Not safe for concurrent
// use.
type params struct {
	r     *http.Request
	op    string
	query queryPairs
	first error
}

// bindParams returns the parameters of r for operation op.
func bindParams(r *http.Request, op string) *params {
	return &params{r: r, op: op, query: parseQuery(r.URL.RawQuery)}
}

// value returns the parameter name's value, "" when absent.
func (p *params) value(name string) string {
	if v := p.r.PathValue(name); v != "" {
		return v
	}
	return p.query.get(name)
}

// fail records that value could not be bound to name, unless an earlier
// parameter failed already.
func (p *params) fail(name, value string) {
	if p.first == nil {
		p.first = bindError(p.op, name, value)
	}
}

// guid binds a required GUID in any form usage.ParseGUID accepts; a missing
// or invalid one fails, and returns the zero GUID.
func (p *params) guid(name string) usage.GUID {
	v := p.value(name)
	g, err := usage.ParseGUID(v)
	if err != nil {
		p.fail(name, v)
	}
	return g
}

// optGUID binds an optional GUID: the zero GUID when absent; an invalid one
// fails.
func (p *params) optGUID(name string) usage.GUID {
	if p.value(name) == "" {
		return usage.GUID{}
	}
	return p.guid(name)
}

// integer binds a decimal integer in [min, max]: def when absent; one that
// is not an integer, or out of range, fails and returns def.
func (p *params) integer(name string, def, min, max int) int {
	v := p.value(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		p.fail(name, v)
		return def
	}
	return n
}

// date binds a date in any form parseDate accepts, in UTC. ok is false when
// the parameter is absent or fails.
func (p *params) date(name string) (t time.Time, ok bool) {
	v := p.value(name)
	if v == "" {
		return time.Time{}, false
	}
	t, err := parseDate(v)
	if err != nil {
		p.fail(name, v)
		return time.Time{}, false
	}
	return t, true
}

// str returns the parameter name as sent, "" when absent.
func (p *params) str(name string) string { return p.value(name) }

// err returns the first parameter that could not be bound, as a bindError,
// or nil.
func (p *params) err() error { return p.first }

// optEnum binds an optional enum with its parse function from usage
// (usage.ParsePeriodType…, which ignore case, as ServiceStack does). ok is
// false when the parameter is absent or fails; then the zero E is returned.
func optEnum[E any](p *params, name string, parse func(string) (E, error)) (E, bool) {
	var zero E
	v := p.value(name)
	if v == "" {
		return zero, false
	}
	e, err := parse(v)
	if err != nil {
		p.fail(name, v)
		return zero, false
	}
	return e, true
}
