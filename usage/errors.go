package usage

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error so that each face can map it to its own status
// codes with one table. The set is small and closed on purpose.
type Kind int

const (
	KindInternal     Kind = iota // a bug or an unavailable dependency; details are logged, not shown
	KindInvalid                  // the caller sent something malformed or out of range
	KindNotFound                 // the thing does not exist, or the caller may not know that it does
	KindUnauthorized             // no credentials, or credentials that are not valid
	KindForbidden                // valid credentials without the needed permission
	KindConflict                 // the request conflicts with the current state
	KindTooLarge                 // the request body exceeds a configured limit
	KindUnsupported              // an unsupported media type or encoding
	KindUnavailable              // shutting down or overloaded; retry later
)

var kindNames = [...]string{"internal", "invalid", "not_found", "unauthorized", "forbidden", "conflict", "too_large", "unsupported", "unavailable"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is an error with a kind, an optional field it concerns and a message
// fit to show to the client.
type Error struct {
	Kind    Kind
	Field   string // the request field or parameter at fault, if any
	Message string
	Err     error // the underlying cause, for logs; never shown to clients
	// RetryAfter, when positive, is how long the client should wait before
	// trying again; the faces send it as a Retry-After header.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return e.Err.Error()
	}
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k concerning field.
func Errorf(k Kind, field, format string, args ...any) *Error {
	return &Error{Kind: k, Field: field, Message: fmt.Sprintf(format, args...)}
}

// KindOf reports the kind of err: the kind of the first *Error in its chain,
// or KindInternal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// RetryAfterOf returns the RetryAfter of the first *Error in err's chain,
// or 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ErrNotFound is returned by stores and services for a missing entity.
var ErrNotFound = &Error{Kind: KindNotFound, Message: "not found"}
