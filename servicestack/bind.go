package servicestack

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/usaged/usaged/usage"
)

// queryPair is one parameter of a query string. semicolon marks a pair
// holding a raw ';'.
type queryPair struct {
	key, value string
	semicolon  bool
}

// queryPairs is a query string's parameters in the order the client sent
// them, which url.Values forgets: with keys matched ignoring case, order
// decides between pageSize=1&PageSize=2.
type queryPairs []queryPair

// parseQuery splits a raw query string as url.ParseQuery does, but keeps
// the order. Like it, it skips pairs that do not unescape. Pairs holding a
// raw ';' are kept but marked: other servers split on ';', and get passes
// them over, so that a proxy and usaged never bind different parameters; only
// a JSONP callback reads them (callback).
func parseQuery(raw string) queryPairs {
	var q queryPairs
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		semicolon := strings.Contains(pair, ";")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		q = append(q, queryPair{k, v, semicolon})
	}
	return q
}

// get returns the first non-empty value of the parameter name, its key
// matched ignoring case (pageSize = PageSize = PAGESIZE), as ServiceStack
// binds. An empty value counts as absent, so that ?PageSize= keeps the
// default rather than failing. Pairs holding a raw ';' are passed over.
func (q queryPairs) get(name string) string {
	for _, p := range q {
		if p.value != "" && !p.semicolon && strings.EqualFold(p.key, name) {
			return p.value
		}
	}
	return ""
}

// callback returns the JSONP callback name as sent, "" when absent. Unlike
// get, it takes a value holding a raw ';' (callback=cb;alert(1)), as
// ASP.NET, which does not split on ';', hands it to ServiceStack:
// sanitizeCallback then replaces the ';' as it replaces every character a
// name may not hold, rather than the request silently losing its callback.
// A ';' in the key (x;callback=cb) still hides the pair: a server splitting
// on ';' would read a different key.
func (q queryPairs) callback() string {
	for _, p := range q {
		if p.value != "" && strings.EqualFold(p.key, "callback") {
			return p.value
		}
	}
	return ""
}

// Params binds the path and query parameters of a request to operation op.
// A parameter is found by name among the path values of the route
// ({ServiceGuid}) and then among the query keys, ignoring case. The first
// value that cannot be bound is kept, and Err reports it as a BindError, so
// that a handler binds everything and checks once. Not safe for concurrent
// use.
type Params struct {
	r     *http.Request
	op    string
	query queryPairs
	first error
}

// Bind returns the parameters of r for operation op.
func Bind(r *http.Request, op string) *Params {
	return &Params{r: r, op: op, query: parseQuery(r.URL.RawQuery)}
}

// Value returns the parameter name's value, "" when absent.
func (p *Params) Value(name string) string {
	if v := p.r.PathValue(name); v != "" {
		return v
	}
	return p.query.get(name)
}

// Fail records that value could not be bound to name, unless an earlier
// parameter failed already. hint, when not empty, says what the parameter
// takes (use one of Daily, Monthly), after ServiceStack's own message.
func (p *Params) Fail(name, value, hint string) {
	p.failWith(BindErrorHint(p.op, name, value, hint))
}

// failWith records err, unless an earlier parameter failed already.
func (p *Params) failWith(err error) {
	if p.first == nil {
		p.first = err
	}
}

// GUID binds a required GUID in any form usage.ParseGUID accepts; a missing
// or invalid one fails, and returns the zero GUID.
func (p *Params) GUID(name string) usage.GUID {
	v := p.Value(name)
	g, err := usage.ParseGUID(v)
	if err != nil {
		p.Fail(name, v, "")
	}
	return g
}

// OptGUID binds an optional GUID: the zero GUID when absent; an invalid one
// fails.
func (p *Params) OptGUID(name string) usage.GUID {
	if p.Value(name) == "" {
		return usage.GUID{}
	}
	return p.GUID(name)
}

// Int binds a decimal integer in [min, max]: def when absent. One that
// is not an integer fails to bind, naming the range; one out of range fails
// validation as FluentValidation's GreaterThanOrEqual or LessThanOrEqual
// rule would, naming the limit. Either returns def.
func (p *Params) Int(name string, def, min, max int) int {
	v := p.Value(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		p.Fail(name, v, fmt.Sprintf("use a whole number from %d to %d", min, max))
	case n < min:
		p.failWith(ValidationError(FieldError{ErrorCode: "GreaterThanOrEqual", FieldName: name,
			Message: fmt.Sprintf("'%s' must be greater than or equal to '%d'; got %d.", DisplayName(name), min, n)}))
	case n > max:
		p.failWith(ValidationError(FieldError{ErrorCode: "LessThanOrEqual", FieldName: name,
			Message: fmt.Sprintf("'%s' must be less than or equal to '%d'; got %d.", DisplayName(name), max, n)}))
	default:
		return n
	}
	return def
}

// dateHint is what a date parameter takes, for its bind error.
const dateHint = "use yyyy-MM-dd, ISO-8601 such as 2026-03-04T05:06:07Z, or /Date(ms)/, from 0001-01-01 to 9999-12-31"

// Date binds a date in any form ParseDate accepts, in UTC. ok is false when
// the parameter is absent or fails.
func (p *Params) Date(name string) (t time.Time, ok bool) {
	v := p.Value(name)
	if v == "" {
		return time.Time{}, false
	}
	t, err := ParseDate(v)
	if err != nil {
		p.Fail(name, v, dateHint)
		return time.Time{}, false
	}
	return t, true
}

// Err returns the first parameter that could not be bound, as a BindError,
// or nil.
func (p *Params) Err() error { return p.first }

// OptEnum binds an optional enum with its parse function from usage
// (usage.ParsePeriodType…, which ignore case, as ServiceStack does), whose
// values are allowed, for the message of a value that is not one. ok is
// false when the parameter is absent or fails; then the zero E is returned.
func OptEnum[E fmt.Stringer](p *Params, name string, parse func(string) (E, error), allowed ...E) (E, bool) {
	var zero E
	v := p.Value(name)
	if v == "" {
		return zero, false
	}
	e, err := parse(v)
	if err != nil {
		names := make([]string, len(allowed))
		for i, a := range allowed {
			names[i] = a.String()
		}
		p.Fail(name, v, "use one of "+strings.Join(names, ", "))
		return zero, false
	}
	return e, true
}
