package ingest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"

	"github.com/valyala/fastjson"

	"github.com/usaged/usaged/usage"
)

// Default limits of one body.
const (
	// DefaultMaxEvents is the default limit on the events of one body. At
	// the largest realistic event size a full --max-body holds about this
	// many; it is there so that a small body of tiny elements ([1,1,…])
	// cannot make the server hold millions of them.
	DefaultMaxEvents = 100_000
	// DefaultMaxErrors is the default number of per-event errors an answer
	// lists; beyond it they are only counted. A thousand is enough to see
	// every kind of mistake a client makes, and keeps the answer under
	// about 200 KB.
	DefaultMaxErrors = 1_000
)

// Limits bound what one body may cost to decode and to answer. Zero fields
// take their defaults.
type Limits struct {
	// MaxEvents is the most elements (events, malformed or not) one body
	// may hold. A body with more is refused whole with a
	// usage.KindTooLarge error, before its elements are parsed, and nothing
	// of it is recorded. Default DefaultMaxEvents.
	MaxEvents int
	// MaxErrors is the most per-event errors a Result lists, the first by
	// position in the body; the others are counted in ErrorsOmitted.
	// Default DefaultMaxErrors.
	MaxErrors int
}

// Validate reports every problem with the limits.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxEvents < 0 {
		errs = append(errs, fmt.Errorf("ingest: Limits.MaxEvents must not be negative, got %d", l.MaxEvents))
	}
	if l.MaxErrors < 0 {
		errs = append(errs, fmt.Errorf("ingest: Limits.MaxErrors must not be negative, got %d", l.MaxErrors))
	}
	return errors.Join(errs...)
}

func (l Limits) withDefaults() Limits {
	if l.MaxEvents <= 0 {
		l.MaxEvents = DefaultMaxEvents
	}
	if l.MaxErrors <= 0 {
		l.MaxErrors = DefaultMaxErrors
	}
	return l
}

// tooManyEvents is the error for a body of more than max elements. The
// message names the flag, since only the operator can raise the limit.
func tooManyEvents(max int) error {
	return usage.Errorf(usage.KindTooLarge, "body",
		"body holds more than %d events, the limit per request (--max-events of usaged serve): send them in batches of at most %d", max, max)
}

// errorList keeps the first max per-event errors it is given, in order, and
// counts the others, so that a body of many bad elements costs no more
// memory than one of max.
type errorList struct {
	max     int
	list    []EventError
	omitted int
}

// full reports whether the next error will only be counted; callers check it
// to skip building a message no one will read.
func (l *errorList) full() bool { return len(l.list) >= l.max }

func (l *errorList) add(e EventError) {
	if l.full() {
		l.omitted++
		return
	}
	l.list = append(l.list, e)
}

// addf adds the error of element i, formatting its message only if it is
// kept.
func (l *errorList) addf(i int, code, format string, args ...any) {
	if l.full() {
		l.omitted++
		return
	}
	l.list = append(l.list, EventError{Index: i, Code: code, Message: fmt.Sprintf(format, args...)})
}

// result starts the Result of a batch from the errors of its decoding (the
// first of them and the count of the others) and those of its validation.
// Each list holds the first errors of its own kind by position, so the first
// max of the two together are among them.
func result(decoded []EventError, decodedOmitted int, checked *errorList) Result {
	res := Result{Errors: make([]EventError, 0, len(decoded)+len(checked.list))}
	res.Errors = append(append(res.Errors, decoded...), checked.list...)
	sortErrors(res.Errors)
	res.Rejected = len(decoded) + decodedOmitted + len(checked.list) + checked.omitted
	res.Errors = res.Errors[:min(len(res.Errors), checked.max)]
	res.ErrorsOmitted = res.Rejected - len(res.Errors)
	return res
}

// merge returns r, the outcome of ingesting the decoded elements of a body,
// as the outcome of the body: the index of each of r's errors, a position in
// the decoded elements, becomes the element's position in the body (index),
// and the errors of decoding (the first of them and the count of the others)
// join them, the first max of all listed.
func merge(decoded []EventError, decodedOmitted int, index []int, max int, r Result) Result {
	checked := errorList{max: cmp.Or(max, DefaultMaxErrors), list: make([]EventError, len(r.Errors)), omitted: r.ErrorsOmitted}
	for i, e := range r.Errors {
		e.Index = index[e.Index]
		checked.list[i] = e
	}
	res := result(decoded, decodedOmitted, &checked)
	res.Accepted, res.Duplicates = r.Accepted, r.Duplicates
	return res
}

// countJSONEvents counts the elements of a JSON body as walk will see them:
// those of a top-level array, or of the "events" array of a top-level object
// (its first "events" member, as fastjson's Get takes). It reads only the
// structure, without building values, and stops once it has counted more
// than max. A body that is not well-formed is counted as far as it goes; the
// parser rejects it afterwards.
func countJSONEvents(body []byte, max int) int {
	i := skipSpace(body, 0)
	if i == len(body) {
		return 0
	}
	switch body[i] {
	case '[':
		return countArray(body, i, max)
	case '{':
		i = skipSpace(body, i+1)
		for i < len(body) && body[i] == '"' {
			end := skipString(body, i)
			if end < 0 {
				return 0
			}
			key := body[i:end]
			i = skipSpace(body, end)
			if i == len(body) || body[i] != ':' {
				return 0
			}
			i = skipSpace(body, i+1)
			if isEventsKey(key) {
				if i < len(body) && body[i] == '[' {
					return countArray(body, i, max)
				}
				return 0 // walk refuses a non-array "events"
			}
			if i = skipValue(body, i); i < 0 {
				return 0
			}
			i = skipSpace(body, i)
			if i == len(body) || body[i] != ',' {
				return 0
			}
			i = skipSpace(body, i+1)
		}
	}
	return 0
}

// countLines counts the non-blank lines of an NDJSON body, stopping once it
// has counted more than max.
func countLines(body []byte, max int) int {
	n := 0
	for len(body) > 0 && n <= max {
		line := body
		if j := bytes.IndexByte(body, '\n'); j >= 0 {
			line, body = body[:j], body[j+1:]
		} else {
			body = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
	}
	return n
}

// isEventsKey reports whether the quoted key is "events", escapes and all.
func isEventsKey(key []byte) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return string(key) == `"events"`
	}
	v, err := fastjson.ParseBytes(key) // rare: only escaped keys get here
	if err != nil {
		return false
	}
	s, err := v.StringBytes()
	return err == nil && string(s) == "events"
}

// countArray counts the elements of the array opening at body[i], stopping
// past max.
func countArray(body []byte, i, max int) int {
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == ']' {
		return 0
	}
	n := 0
	for i < len(body) {
		n++
		if n > max {
			return n
		}
		if i = skipValue(body, i); i < 0 {
			return n
		}
		i = skipSpace(body, i)
		if i == len(body) || body[i] != ',' {
			return n
		}
		i = skipSpace(body, i+1)
	}
	return n
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string opening at b[i], or -1
// if it does not end.
func skipString(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexAny(b[i:], `"\`)
		if j < 0 {
			return -1
		}
		i += j
		if b[i] == '"' {
			return i + 1
		}
		i += 2 // a backslash and the byte it escapes
		if i > len(b) {
			return -1
		}
	}
}

// skipValue returns the index just past the value starting at b[i], or -1 if
// it does not end. Nested arrays and objects are skipped by counting
// brackets, without recursion, so that deep nesting costs no stack.
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			if i = skipString(b, i); i < 0 {
				return -1
			}
			if depth == 0 {
				return i
			}
			continue
		case '[', '{':
			depth++
		case ']', '}':
			if depth == 0 {
				return i // the end of a scalar, closing its container
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i // the end of a scalar
			}
		}
		i++
	}
	if depth == 0 {
		return i // a scalar at the end of the body
	}
	return -1
}
