package usage

import (
	"fmt"
	"strings"
)

// enum prints and parses the values of one enumerated type. Every enum of
// the domain goes through one, so that all of them read their names in any
// case and fail alike: with a KindInvalid *Error naming the field and the
// names to use.
type enum[E ~int] struct {
	what  string   // a value in the error message, with its article: "a service status"
	field string   // the request field that carries a value, for Error.Field
	first E        // the value names[0] names; values run from first to first+len(names)-1
	names []string // "" names a value that is written as nothing, such as GranularityNone
}

// name returns v's name, or unknown(v) for a value that is not one.
func (e *enum[E]) name(v E) string {
	if i := int(v - e.first); i >= 0 && i < len(e.names) {
		return e.names[i]
	}
	return fmt.Sprintf("unknown(%d)", int(v))
}

// parse returns the value named s, ignoring case.
func (e *enum[E]) parse(s string) (E, error) {
	for i, n := range e.names {
		if strings.EqualFold(n, s) {
			return e.first + E(i), nil
		}
	}
	var use []string
	for _, n := range e.names {
		if n != "" {
			use = append(use, n)
		}
	}
	return 0, Errorf(KindInvalid, e.field, "%q is not %s: use one of %s", s, e.what, strings.Join(use, ", "))
}
