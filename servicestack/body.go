package servicestack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/usaged/usaged/usage"
)

// maxJSONBody bounds the JSON bodies DecodeJSON reads.
const maxJSONBody = 1 << 20

// DecodeJSON decodes the JSON body of r, a request to operation op, into v.
// Unknown properties are ignored and names match case-insensitively, as
// ServiceStack binds them; a body that is not JSON, or a value of the wrong
// type, cannot be bound.
func DecodeJSON(r *http.Request, op string, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" && mt != "text/json" {
			return usage.Errorf(usage.KindUnsupported, "Content-Type", "Content-Type %q is not supported: send application/json", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxJSONBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return usage.Errorf(usage.KindTooLarge, "", "request body is larger than %d bytes", maxJSONBody)
		}
		return usage.Errorf(usage.KindInvalid, "", "request body could not be read: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return BindError(op, pascal(te.Field), rawValue(body, te.Field, te.Value))
		}
		return BindError(op, "", Truncate(string(body), 64))
	}
	return nil
}

// rawValue returns the value the client sent at a dotted JSON path, as
// ServiceStack quotes it in binding errors ('twelve', not 'string'); def
// when it cannot be found. Keys match ignoring case, as decoding does.
func rawValue(body []byte, path, def string) string {
	raw := json.RawMessage(body)
	for _, key := range strings.Split(path, ".") {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return def
		}
		found := false
		for k, v := range obj {
			if strings.EqualFold(k, key) {
				raw, found = v, true
				break
			}
		}
		if !found {
			return def
		}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return Truncate(s, 64)
	}
	return Truncate(string(raw), 64)
}

// pascal turns a camelCase JSON path (contact.phoneNumber) into ServiceStack's
// PascalCase field name (Contact.PhoneNumber).
func pascal(field string) string {
	parts := strings.Split(field, ".")
	for i, p := range parts {
		parts[i] = upperFirst(p)
	}
	return strings.Join(parts, ".")
}

// Truncate shortens s to its first n bytes and an ellipsis, as messages
// quote what a client sent.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// BindGUID binds a GUID sent in a body field; empty is zero.
func BindGUID(op, field, s string) (usage.GUID, error) {
	if s == "" {
		return usage.GUID{}, nil
	}
	g, err := usage.ParseGUID(s)
	if err != nil {
		return usage.GUID{}, BindError(op, field, s)
	}
	return g, nil
}

// MaxLength is FluentValidation's MaximumLength rule.
func MaxLength(field, v string, n int) (FieldError, bool) {
	if l := utf8.RuneCountInString(v); l > n {
		return FieldError{ErrorCode: "MaximumLength", FieldName: field,
			Message: fmt.Sprintf("'%s' must be %d characters or fewer. You entered %d characters.", DisplayName(field), n, l)}, true
	}
	return FieldError{}, false
}
