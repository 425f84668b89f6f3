package genesys

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/usage"
)

// Genesys error codes this face sends beyond the defaults of kindStatus.
const (
	codeAuthenticationRequired = "authentication.required"
	codeInvalidValue           = "invalid.value"
	codeInvalidDate            = "invalid.date"
	codeNotAuthorized          = "not.authorized"
	codeMethodNotAllowed       = "method.not.allowed"
	codeConstraintValidation   = "constraint.validation"
	codeInvalidQueryParam      = "invalid.query.param.value"
)

// kindStatus is the one table from error kind to HTTP status and default
// Genesys error code. A handler refines the code, never the status, with
// withCode.
var kindStatus = [...]struct {
	status int
	code   string
}{
	usage.KindInternal:     {http.StatusInternalServerError, "internal.server.error"},
	usage.KindInvalid:      {http.StatusBadRequest, "bad.request"},
	usage.KindNotFound:     {http.StatusNotFound, "not.found"},
	usage.KindUnauthorized: {http.StatusUnauthorized, "bad.credentials"},
	usage.KindForbidden:    {http.StatusForbidden, "missing.any.permissions"},
	usage.KindConflict:     {http.StatusConflict, "request.conflict"},
	usage.KindTooLarge:     {http.StatusRequestEntityTooLarge, "request.entity.too.large"},
	usage.KindUnsupported:  {http.StatusUnsupportedMediaType, "unsupported.media.type"},
	usage.KindUnavailable:  {http.StatusServiceUnavailable, "service.unavailable"},
}

// internalMessage is all a client learns of an internal error; the error
// itself is logged with the context id the client is shown.
const internalMessage = "The server encountered an internal error. Quote the contextId when reporting it."

// apiError refines a domain error with the Genesys code and message
// parameters this face reports for it.
type apiError struct {
	err    error
	code   string
	params map[string]string
	// template, when set, is the message with {name} placeholders for
	// params, as Genesys sends it in messageWithParams; the message is
	// then the template filled in.
	template string
	status   int // set only for statuses outside the kind table, such as 405
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

// withCode returns err to be reported with Genesys code instead of its
// kind's default. A nil err stays nil.
func withCode(err error, code string) error {
	if err == nil {
		return nil
	}
	return &apiError{err: err, code: code}
}

// errorDetail is one entry of ErrorBody.details.
type errorDetail = wire.ErrorDetail

// errorBody is the Genesys ErrorBody.
type errorBody = wire.ErrorBody

// errorResponse returns the status and body that report err. internal is
// true when err is not the client's doing and must be logged.
func errorResponse(err error, contextID string) (body errorBody, internal bool) {
	kind := usage.KindOf(err)
	if int(kind) < 0 || int(kind) >= len(kindStatus) {
		kind = usage.KindInternal
	}
	body = errorBody{
		Status:    kindStatus[kind].status,
		Code:      kindStatus[kind].code,
		ContextID: contextID,
		Details:   []errorDetail{},
		Errors:    []errorBody{},
	}
	var ae *apiError
	if errors.As(err, &ae) {
		if ae.code != "" {
			body.Code = ae.code
		}
		if ae.status != 0 {
			body.Status = ae.status
		}
		body.MessageParams = ae.params
	}
	var ue *usage.Error
	if errors.As(err, &ue) && kind != usage.KindInternal {
		body.Message = ue.Message
		for _, f := range fieldsOf(err) {
			body.Details = append(body.Details, errorDetail{ErrorCode: body.Code, FieldName: f})
		}
	}
	if ae != nil && ae.template != "" {
		body.MessageWithParams = ae.template
		body.Message = fill(ae.template, ae.params)
	}
	if body.Message == "" {
		body.Message = defaultMessage(kind)
	}
	// A refusal answered 4xx, such as an organization's limit, is not the
	// server failing.
	return body, kind == usage.KindInternal || (kind == usage.KindUnavailable && body.Status >= 500)
}

// fieldsOf returns the fields err concerns: its first *usage.Error's, or,
// for errors joined with errors.Join (a validation reporting every
// problem), the first's of each part, without repeats.
func fieldsOf(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		// A walk of the tree errors.As walks, to reach every part of a
		// join rather than the first.
		switch e := err.(type) {
		case *usage.Error:
			if e.Field != "" && !slices.Contains(out, e.Field) {
				out = append(out, e.Field)
			}
		case interface{ Unwrap() []error }:
			for _, part := range e.Unwrap() {
				walk(part)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// defaultMessage is shown for errors that carry no message fit for clients.
func defaultMessage(k usage.Kind) string {
	switch k {
	case usage.KindInvalid:
		return "The request could not be understood by the server due to malformed syntax."
	case usage.KindNotFound:
		return "The requested resource was not found."
	case usage.KindUnauthorized:
		return "Authentication failed."
	case usage.KindForbidden:
		return "You are not authorized to perform the requested action."
	case usage.KindConflict:
		return "The request conflicts with the current state of the resource."
	case usage.KindTooLarge:
		return "The request is too large."
	case usage.KindUnsupported:
		return "The request media type is not supported."
	case usage.KindUnavailable:
		return "The service is currently unavailable. Retry later."
	}
	return internalMessage
}

// paramError returns an error of kind about field, reported with code and
// with message template filled in with params.
func paramError(kind usage.Kind, field, code, template string, params map[string]string) error {
	return &apiError{
		err:      usage.Errorf(kind, field, "%s", fill(template, params)),
		code:     code,
		params:   params,
		template: template,
	}
}

// fill replaces each {name} of template with params[name].
func fill(template string, params map[string]string) string {
	pairs := make([]string, 0, 2*len(params))
	for k, v := range params {
		pairs = append(pairs, "{"+k+"}", v)
	}
	return strings.NewReplacer(pairs...).Replace(template)
}

// forbiddenPrefix opens Genesys' messages for missing permissions.
const forbiddenPrefix = "Unable to perform the requested action. "

// missingPermissions is the error for a principal holding none of perms.
func missingPermissions(perms ...string) error {
	return paramError(usage.KindForbidden, "", "",
		forbiddenPrefix+"You must have at least one of the following permissions assigned: {permissions}",
		map[string]string{"permissions": strings.Join(perms, ", ")})
}

// errAdminOnly answers a client token on an operator route.
var errAdminOnly = withCode(usage.Errorf(usage.KindForbidden, "", "This operation requires the admin token."), codeNotAuthorized)

// errNoToken answers a request without a bearer token.
var errNoToken = withCode(usage.Errorf(usage.KindUnauthorized, "", "No authentication bearer token specified in authorization header."), codeAuthenticationRequired)
