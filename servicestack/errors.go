package servicestack

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/usaged/usaged/usage"
)

// ResponseStatus is ServiceStack's ResponseStatus: what every failed
// operation answers, inside its response DTO. Errors is always written,
// [] when no field is at fault, as ServiceStack's CreateResponseStatus
// always sets it: clients iterate it without a null check.
type ResponseStatus struct {
	ErrorCode string       `json:"errorCode"`
	Message   string       `json:"message,omitzero"`
	Errors    []FieldError `json:"errors"`
}

// xmlDeclarationOrder keeps ResponseStatus's XML members in declaration
// order: ServiceStack gives them DataMember orders, which beat the
// alphabetical order of other DTOs.
func (ResponseStatus) xmlDeclarationOrder() {}

// FieldError is ServiceStack's ResponseError: one field's problem.
type FieldError struct {
	ErrorCode string `json:"errorCode"`
	FieldName string `json:"fieldName"`
	Message   string `json:"message"`
}

// xmlName is the element ServiceStack's XML names a list item after.
func (FieldError) xmlName() string { return "ResponseError" }

// errorResponse is the response DTO of a failed operation: only its
// ResponseStatus. Since every CCC response DTO has responseStatus (omitted
// on success), this is any operation's DTO on failure.
type errorResponse struct {
	ResponseStatus ResponseStatus `json:"responseStatus"`
}

// apiError is an error with its HTTP status and the ResponseStatus the
// client sees.
type apiError struct {
	status int
	rs     ResponseStatus
}

// Error returns the status, code, message and field errors, for logs.
func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.status, e.rs.ErrorCode)
	if e.rs.Message != "" {
		b.WriteString(": " + e.rs.Message)
	}
	for _, f := range e.rs.Errors {
		fmt.Fprintf(&b, "; %s: %s", f.FieldName, f.Message)
	}
	return b.String()
}

// BindError reports a parameter value that cannot be bound to field of
// operation op as ServiceStack does: 400 SerializationException,
// "Unable to bind to request '<op>'", and one entry naming field and value.
// An empty field (a body that is not JSON at all) leaves the entry out.
func BindError(op, field, value string) error { return BindErrorHint(op, field, value, "") }

// BindErrorHint is BindError with what the field takes added to its entry's
// message after a colon: "'Weekly' is an Invalid value for 'PeriodType':
// use one of Daily, Monthly". ServiceStack's own text comes first, so that
// clients matching it still do.
func BindErrorHint(op, field, value, hint string) error {
	e := &apiError{status: http.StatusBadRequest, rs: ResponseStatus{
		ErrorCode: "SerializationException",
		Message:   fmt.Sprintf("Unable to bind to request '%s'", op),
	}}
	if field != "" {
		msg := fmt.Sprintf("'%s' is an Invalid value for '%s'", value, field)
		if hint != "" {
			msg += ": " + hint
		}
		e.rs.Errors = []FieldError{{ErrorCode: "SerializationException", FieldName: field, Message: msg}}
	}
	return e
}

// ValidationError reports failed validation rules as ServiceStack's
// validation feature does: 400, one entry per problem, and the first
// entry's code and message for the whole. Without entries (a caller's bug)
// it is a bare ValidationException.
func ValidationError(errs ...FieldError) error {
	e := &apiError{status: http.StatusBadRequest, rs: ResponseStatus{ErrorCode: "ValidationException", Message: "Validation failed"}}
	if len(errs) > 0 {
		e.rs = ResponseStatus{ErrorCode: errs[0].ErrorCode, Message: errs[0].Message, Errors: errs}
	}
	return e
}

// NotEmpty is FluentValidation's NotEmpty rule failing for the PascalCase
// field: 'Primary Domain' must not be empty.
func NotEmpty(field string) FieldError {
	return FieldError{ErrorCode: "NotEmpty", FieldName: field, Message: fmt.Sprintf("'%s' must not be empty.", DisplayName(field))}
}

// DisplayName is the name FluentValidation shows for a property in its
// messages, its SplitPascalCase: a space before each word's capital
// (PrimaryDomain → Primary Domain), acronyms kept together (URLName → URL
// Name), and the dot of a nested property dropped (Contact.Name → Contact
// Name).
func DisplayName(field string) string {
	rs := []rune(field)
	var b strings.Builder
	for i, c := range rs {
		if unicode.IsUpper(c) && (i > 1 && !unicode.IsUpper(rs[i-1]) || i+1 < len(rs) && !unicode.IsUpper(rs[i+1])) {
			b.WriteByte(' ')
		}
		if c != '.' || i+1 == len(rs) || !unicode.IsUpper(rs[i+1]) {
			b.WriteRune(c)
		}
	}
	return strings.TrimSpace(b.String())
}

// NewError returns the error of a failure that no error kind describes,
// answered with status and a ResponseStatus of code and message: a 409
// whose code names the conflict, a 429.
func NewError(status int, code, message string) error {
	return &apiError{status: status, rs: ResponseStatus{ErrorCode: code, Message: message}}
}

// kindResponse is the one table from error kind to HTTP status, error code
// and the message shown when the error carries none.
var kindResponse = [...]struct {
	status  int
	code    string
	message string
}{
	usage.KindInternal:     {http.StatusInternalServerError, "InternalServerError", internalMessage},
	usage.KindInvalid:      {http.StatusBadRequest, "ArgumentException", "The request is not valid."},
	usage.KindNotFound:     {http.StatusNotFound, "NotFound", "Not Found"},
	usage.KindUnauthorized: {http.StatusUnauthorized, "Unauthorized", "Not Authenticated"},
	usage.KindForbidden:    {http.StatusForbidden, "Forbidden", "Forbidden"},
	usage.KindConflict:     {http.StatusConflict, "Conflict", "The request conflicts with the current state."},
	usage.KindTooLarge:     {http.StatusRequestEntityTooLarge, "RequestTooLarge", "The request is too large."},
	usage.KindUnsupported:  {http.StatusUnsupportedMediaType, "UnsupportedMediaType", "The request's media type is not supported."},
	usage.KindUnavailable:  {http.StatusServiceUnavailable, "ServiceUnavailable", "The service is unavailable. Retry later."},
}

// internalMessage is all a client learns of an internal error; the error
// itself goes to the log.
const internalMessage = "The server encountered an internal error. It has been logged."

// toAPIError maps err to what the client sees. An *apiError in err's chain
// is used as it is. Otherwise err's kind (usage.KindOf) picks the status and
// code from kindResponse, and a *usage.Error's Message is shown, or the
// kind's default when it has none. Internal errors, and anything that is not
// a *usage.Error, show only a generic message: their text is for the log.
//
// An invalid-argument error naming a Field also gets one errors entry,
// {ArgumentException, <Field in PascalCase>, <Message>}, as ServiceStack
// reports an ArgumentException with a ParamName; other kinds name no field
// (ServiceStack's NotFound and the like have none). A nil err is a caller's
// bug and maps to 500 too.
func toAPIError(err error) *apiError {
	if ae, ok := errors.AsType[*apiError](err); ok {
		return ae
	}
	kind := usage.KindOf(err)
	if int(kind) < 0 || int(kind) >= len(kindResponse) {
		kind = usage.KindInternal
	}
	k := kindResponse[kind]
	ae := &apiError{status: k.status, rs: ResponseStatus{ErrorCode: k.code, Message: k.message}}
	if kind == usage.KindInternal {
		return ae
	}
	ue, _ := errors.AsType[*usage.Error](err)
	if ue.Message != "" {
		ae.rs.Message = ue.Message
	}
	if kind == usage.KindInvalid && ue.Field != "" {
		ae.rs.Errors = []FieldError{{ErrorCode: k.code, FieldName: upperFirst(ue.Field), Message: ae.rs.Message}}
	}
	return ae
}

// RespondError writes err as the response DTO of op with only its
// responseStatus, in the negotiated format, with the status toAPIError maps
// it to (200 under JSONP). Server errors are logged with the request's
// method and path, the cause included; the client's own mistakes only at
// debug level. A nil log logs nothing.
func RespondError(w http.ResponseWriter, r *http.Request, op string, err error, log *slog.Logger) {
	ae := toAPIError(err)
	if log != nil {
		attrs := []any{"op", op, "method", r.Method, "path", r.URL.Path, "status", ae.status, "err", err}
		switch {
		case ae.status == http.StatusServiceUnavailable:
			// Logged where it arises (the store's failure, its reserve),
			// once; not once per refused request.
			log.Debug("request refused: unavailable", attrs...)
		case ae.status >= 500:
			log.Error("request failed", attrs...)
		default:
			log.Debug("request refused", attrs...)
		}
	}
	if d := usage.RetryAfterOf(err); d > 0 {
		// Whole seconds, rounded up: a client retrying sooner is refused again.
		w.Header().Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
	rs := ae.rs // a copy: ae may be shared
	if rs.Errors == nil {
		rs.Errors = []FieldError{}
	}
	Respond(w, r, op, ae.status, errorResponse{ResponseStatus: rs})
}
