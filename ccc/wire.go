package ccc

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/usaged/usaged/usage"
)

// format is a response format.
type format int

// The response formats. JSONP is JSON with a callback, not a format of its own.
const (
	formatJSON format = iota
	formatCSV
	formatXML
)

// String names f as ?format= does, for messages and tests.
func (f format) String() string {
	switch f {
	case formatCSV:
		return "csv"
	case formatXML:
		return "xml"
	}
	return "json"
}

// contentType is the Content-Type of a response in format f.
func (f format) contentType() string {
	switch f {
	case formatCSV:
		return "text/csv; charset=utf-8"
	case formatXML:
		return "application/xml; charset=utf-8"
	}
	return "application/json; charset=utf-8"
}

// formatNamed returns the format a ?format= value or route suffix names,
// ignoring case.
func formatNamed(name string) (format, bool) {
	switch strings.ToLower(name) {
	case "json":
		return formatJSON, true
	case "csv":
		return formatCSV, true
	case "xml":
		return formatXML, true
	}
	return formatJSON, false
}

// negotiate returns the response format for r, in ServiceStack's order:
//
//  1. a non-empty ?callback= asks for JSONP, which is JSON whatever else the
//     request says; the returned callback is already sanitised;
//  2. a non-empty ?format=json|csv|xml, ignoring case. Any other value
//     (ServiceStack's jsv or html, a typo) is refused before the operation
//     runs (formatError), and its 400 is JSON;
//  3. the route suffix .json, .csv or .xml that withSuffixes took off;
//  4. the Accept header: the supported media type with the highest q,
//     the earliest among equals. application/json, text/csv, application/xml
//     and text/xml name themselves; */*, application/* and text/html answer
//     JSON, which stands in for the HTML page stock ServiceStack would send.
//     Unsupported types are passed over, never refused with 406;
//  5. JSON.
//
// Query keys match ignoring case, as every ServiceStack parameter does.
func negotiate(r *http.Request) (f format, callback string) {
	q := parseQuery(r.URL.RawQuery)
	if cb := q.callback(); cb != "" {
		return formatJSON, sanitizeCallback(cb)
	}
	if name := q.get("format"); name != "" {
		f, _ := formatNamed(name) // JSON for an unknown name: formatError's answer
		return f, ""
	}
	if f, ok := r.Context().Value(suffixKey{}).(format); ok {
		return f, ""
	}
	if f, ok := acceptFormat(r.Header.Values("Accept")); ok {
		return f, ""
	}
	return formatJSON, ""
}

// formatError reports a ?format= that names no format usaged writes, as a
// 400 ArgumentException naming the formats it does, so that a client asking
// for jsv or a typo learns so rather than parsing JSON as something else.
// Under JSONP, ?format= is not looked at, as negotiate does not.
func formatError(r *http.Request) error {
	q := parseQuery(r.URL.RawQuery)
	if q.callback() != "" {
		return nil
	}
	name := q.get("format")
	if _, ok := formatNamed(name); ok || name == "" {
		return nil
	}
	return usage.Errorf(usage.KindInvalid, "Format", "Format '%s' is not supported: use json, csv or xml (or a .json, .csv or .xml suffix, or an Accept header).", name)
}

// acceptFormat picks the format of the preferred supported media range of
// Accept header values. It is lenient: a range it cannot read is skipped.
func acceptFormat(values []string) (format, bool) {
	best, bestQ, found := formatJSON, 0.0, false
	for _, v := range values {
		for mr := range strings.SplitSeq(v, ",") {
			mt, params, _ := strings.Cut(mr, ";")
			f, ok := mediaFormat(strings.ToLower(strings.TrimSpace(mt)))
			if !ok {
				continue
			}
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				k, val, _ := strings.Cut(p, "=")
				if strings.EqualFold(strings.TrimSpace(k), "q") {
					var err error
					if q, err = strconv.ParseFloat(strings.TrimSpace(val), 64); err != nil {
						q = 0
					}
				}
			}
			if q > bestQ { // q = 0 means "not acceptable"; NaN never wins
				best, bestQ, found = f, q, true
			}
		}
	}
	return best, found
}

// mediaFormat maps a lowercased media range to the format that serves it.
func mediaFormat(mt string) (format, bool) {
	switch mt {
	case "application/json", "*/*", "application/*", "text/html":
		return formatJSON, true
	case "text/csv":
		return formatCSV, true
	case "application/xml", "text/xml":
		return formatXML, true
	}
	return formatJSON, false
}

// sanitizeCallback replaces every character of a JSONP callback name
// outside [A-Za-z0-9._] with '_', as ServiceStack does, so that the name
// cannot close the call and inject script. It works per rune, as .NET does
// per char: a multi-byte rune becomes one '_', and so does each byte of
// invalid UTF-8.
func sanitizeCallback(cb string) string {
	var b strings.Builder
	b.Grow(len(cb))
	for _, c := range cb {
		if c < utf8.RuneSelf && (c == '.' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// suffixKey keys the format of a route suffix in a request's context.
type suffixKey struct{}

// routeSuffixes are the suffixes withSuffixes takes off, with their formats.
var routeSuffixes = [...]struct {
	ext string
	f   format
}{{".json", formatJSON}, {".csv", formatCSV}, {".xml", formatXML}}

// withSuffixes lets clients ask for a format with a route suffix,
// /api/services/x/serviceusage.csv, while routes are registered without it:
// for a request whose last path segment ends in .json, .csv or .xml (in any
// case, after at least one other character), it remembers the format for
// negotiate and calls h with the suffix taken off r.URL.Path and RawPath.
func withSuffixes(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, n := pathSuffix(r.URL.Path)
		if n == 0 {
			h.ServeHTTP(w, r)
			return
		}
		u := *r.URL // r.WithContext shares the URL; the caller's must stay as it was
		u.Path = u.Path[:len(u.Path)-n]
		if u.RawPath != "" {
			if g, m := pathSuffix(u.RawPath); m == n && g == f {
				u.RawPath = u.RawPath[:len(u.RawPath)-m]
			} else {
				u.RawPath = "" // an escaped suffix; RawPath is only a hint
			}
		}
		r2 := r.WithContext(context.WithValue(r.Context(), suffixKey{}, f))
		r2.URL = &u
		h.ServeHTTP(w, r2)
	})
}

// pathSuffix returns the format named by the suffix of p's last segment and
// the suffix's length, or 0 when there is none.
func pathSuffix(p string) (format, int) {
	seg := p[strings.LastIndexByte(p, '/')+1:]
	for _, s := range routeSuffixes {
		if len(seg) > len(s.ext) && strings.EqualFold(seg[len(seg)-len(s.ext):], s.ext) {
			return s.f, len(s.ext)
		}
	}
	return formatJSON, 0
}

// respond writes the response DTO v, a struct or a list of them with json
// tags, in the format negotiated for r with HTTP status, which JSONP always
// replaces with 200 because a script tag cannot see a status. op, the
// operation's name (GetServiceUsage), names the CSV attachment and the XML
// root element.
//
// The body is encoded before anything is written. A v that cannot be encoded
// (a channel, a NaN) is a bug in the caller: respond then panics without
// writing, so that the handler wrapper's recovery logs it and answers 500.
func respond(w http.ResponseWriter, r *http.Request, op string, status int, v any) {
	f, cb := negotiate(r)
	var body bytes.Buffer
	var err error
	switch f {
	case formatCSV:
		err = encodeCSV(&body, v)
	case formatXML:
		err = encodeXML(&body, op, v)
	default:
		err = encodeJSON(&body, cb, v)
	}
	if err != nil {
		panic(fmt.Sprintf("ccc: encoding the %s response of %s as %s: %v", reflect.TypeOf(v), op, f, err))
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType())
	if !varies(h, "Accept") {
		h.Add("Vary", "Accept")
	}
	// The body echoes client input (a callback, a rejected value): keep
	// browsers from sniffing it into HTML.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	switch {
	case cb != "":
		h.Set("Content-Type", "application/javascript; charset=utf-8")
		status = http.StatusOK
	case f == formatCSV:
		h.Set("Content-Disposition", `attachment;filename="`+op+`.csv"`)
	}
	w.WriteHeader(status)
	w.Write(body.Bytes())
}

// varies reports whether h's Vary header already names field, which a
// middleware (compression: Accept-Encoding) may have added.
func varies(h http.Header, field string) bool {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), field) {
				return true
			}
		}
	}
	return false
}

// encodeJSON writes v as JSON, wrapped in callback(…) for JSONP. HTML is
// not escaped: the Content-Type says JSON, and ServiceStack does not either.
func encodeJSON(b *bytes.Buffer, callback string, v any) error {
	if callback != "" {
		b.WriteString(callback)
		b.WriteByte('(')
	}
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	if callback != "" {
		b.WriteByte(')')
	}
	return nil
}

// wireField is an encoded field of a DTO, found by encoding/json's rules so
// that CSV and XML write the fields JSON does, under the same names.
type wireField struct {
	name      string // the JSON name: serviceGuid
	wire      string // the PascalCase name of CSV headers and XML elements: ServiceGuid
	index     []int  // for fieldByIndex
	omitZero  bool
	omitEmpty bool
}

// fieldCache maps a struct type to its []wireField.
var fieldCache sync.Map

// typeFields returns the encoded fields of struct type t in encoding/json's
// order: declaration order, with the fields of embedded structs without a
// name in their tag in place of them. Of fields with the same name, the
// shallowest wins, then the one whose name is from its tag; a tie drops
// them all.
func typeFields(t reflect.Type) []wireField {
	if c, ok := fieldCache.Load(t); ok {
		return c.([]wireField)
	}
	type candidate struct {
		wireField
		depth  int
		tagged bool
	}
	var all []candidate
	var walk func(t reflect.Type, index []int, depth int, path []reflect.Type)
	walk = func(t reflect.Type, index []int, depth int, path []reflect.Type) {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(slices.Clone(index), i)
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if sf.Anonymous && name == "" && ft.Kind() == reflect.Struct {
				if !slices.Contains(path, ft) { // type T struct{ *T } would never end
					walk(ft, idx, depth+1, append(path, ft))
				}
				continue
			}
			if !sf.IsExported() {
				continue
			}
			c := candidate{depth: depth, tagged: name != ""}
			if name == "" {
				name = sf.Name
			}
			c.wireField = wireField{name: name, wire: upperFirst(name), index: idx}
			for o := range strings.SplitSeq(opts, ",") {
				c.omitZero = c.omitZero || o == "omitzero"
				c.omitEmpty = c.omitEmpty || o == "omitempty"
			}
			all = append(all, c)
		}
	}
	walk(t, nil, 0, []reflect.Type{t})

	fields := make([]wireField, 0, len(all))
	for i, c := range all {
		win := true
		for j, d := range all {
			if i == j || d.name != c.name {
				continue
			}
			if d.depth < c.depth || d.depth == c.depth && (d.tagged || !c.tagged) {
				win = false
				break
			}
		}
		if win {
			fields = append(fields, c.wireField)
		}
	}
	c, _ := fieldCache.LoadOrStore(t, fields)
	return c.([]wireField)
}

// fieldByIndex returns the field of struct v at index, or false when an
// embedded pointer on the way is nil, which leaves the field out as
// encoding/json does.
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 {
			if v.Kind() == reflect.Pointer {
				if v.IsNil() {
					return reflect.Value{}, false
				}
				v = v.Elem()
			}
		}
		v = v.Field(x)
	}
	return v, true
}

// omitted reports whether field f with value v is left out, as encoding/json
// leaves it out, or writes it as null, which CSV and XML leave out too.
func (f *wireField) omitted(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		if v.IsNil() {
			return true
		}
	}
	return f.omitZero && isZero(v) || f.omitEmpty && isEmpty(v)
}

// isZeroerType is the method omitzero consults before reflect.Value.IsZero.
var isZeroerType = reflect.TypeFor[interface{ IsZero() bool }]()

// isZero reports zero as omitzero does: by the IsZero method if there is one.
func isZero(v reflect.Value) bool {
	if v.CanInterface() && v.Type().Implements(isZeroerType) {
		if v.Kind() == reflect.Pointer && v.IsNil() {
			return true
		}
		return v.Interface().(interface{ IsZero() bool }).IsZero()
	}
	return v.IsZero()
}

// isEmpty reports empty as omitempty does.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// textMarshalerType marks the types written as text, such as Guid and Time.
var textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()

// marshalText returns v's text if its type (or, addressable, its pointer)
// is an encoding.TextMarshaler, as Guid and Time are.
func marshalText(v reflect.Value) (string, bool, error) {
	if v.Kind() == reflect.Pointer && v.IsNil() || !v.CanInterface() {
		return "", false, nil
	}
	var m encoding.TextMarshaler
	switch {
	case v.Type().Implements(textMarshalerType):
		m = v.Interface().(encoding.TextMarshaler)
	case v.CanAddr() && v.Addr().Type().Implements(textMarshalerType):
		m = v.Addr().Interface().(encoding.TextMarshaler)
	default:
		return "", false, nil
	}
	b, err := m.MarshalText()
	return string(b), true, err
}

// scalarText writes a bool, number or string as ServiceStack's text formats
// do; ok is false for other kinds. Floats that JSON cannot hold are errors
// here too.
func scalarText(v reflect.Value) (s string, ok bool, err error) {
	switch v.Kind() {
	case reflect.String:
		return v.String(), true, nil
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), true, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), true, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(v.Uint(), 10), true, nil
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "", true, fmt.Errorf("unsupported value: %v", f)
		}
		return strconv.FormatFloat(f, 'g', -1, v.Type().Bits()), true, nil
	}
	return "", false, nil
}

// indirect follows pointers and interfaces to the value they hold; the
// result is invalid for nil.
func indirect(v reflect.Value) reflect.Value {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	return v
}

// isRecord reports whether values of type t are written as records with
// fields: structs (or pointers to them) that do not write themselves as
// text, as Time does.
func isRecord(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		if t.Implements(textMarshalerType) {
			return false
		}
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct && !t.Implements(textMarshalerType) && !reflect.PointerTo(t).Implements(textMarshalerType)
}

// isList reports whether v is a list: a slice or array other than bytes,
// which encoding/json writes as base64 text.
func isList(v reflect.Value) bool {
	k := v.Kind()
	return (k == reflect.Slice || k == reflect.Array) && v.Type().Elem().Kind() != reflect.Uint8
}

// upperFirst turns a camelCase JSON name into ServiceStack's PascalCase
// property name: serviceGuid → ServiceGuid.
func upperFirst(s string) string {
	c, n := utf8.DecodeRuneInString(s)
	if n == 0 || unicode.IsUpper(c) {
		return s
	}
	return string(unicode.ToUpper(c)) + s[n:]
}
